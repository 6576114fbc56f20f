"""``python -m vaebench`` is the ``vaebench`` command."""

from vaebench.cli import app

app(prog_name="vaebench")
