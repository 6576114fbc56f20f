"""The ``vaebench`` command (:mod:`vaebench.cli.app`) and its subcommands."""

from vaebench.cli.app import app, main

__all__ = ["app", "main"]
