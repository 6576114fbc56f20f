"""Models behind an optional extra: the package each needs and one sentence when it is missing."""

from __future__ import annotations

import importlib.util

from vaebench.errors import VaebenchError

SCVI_REQUIRES = ("scvi", "pip install 'vaebench[scvi]'")
"""scvi-tools, for the ``scvi`` model: (package, the command that installs it)."""


def installed(package: str) -> bool:
    """Whether ``package`` can be imported, found without importing it (scvi-tools takes seconds to import,
    umap-learn compiles with numba)."""
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # in sys.modules as None: Python's mark of a package that cannot be imported
        return False


def check_installed(model: str, requires: tuple[str, str] | None) -> None:
    """One sentence naming the install command when the package ``model`` needs is missing."""
    if requires is None:
        return
    package, command = requires
    if not installed(package):
        raise VaebenchError(
            f"The model {model!r} needs the Python package {package}, which is not installed; install "
            f"it with: {command}"
        )
