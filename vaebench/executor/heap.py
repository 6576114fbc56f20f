"""The objects a vaebench process imports, kept out of the garbage collector's way.

A run imports torch, MLflow, scikit-learn, matplotlib and pandas: some 400,000 objects tracked by the
collector (modules, classes, functions, bound C++ methods) that live as long as the process. Python's
cyclic garbage collector walks every one of them at each full collection, and again when the interpreter
shuts down, where it found nothing to free and took some 2 s of every process's exit
(``benchmarks/process_exit.py``). :func:`gc.freeze` moves the objects that exist when it is called into a
permanent generation that collections skip; what is made afterwards is collected as before. It is called
once the modules of a command or of a worker process are imported, before any data is read, and acts once
per process: a process that runs several commands (a notebook, a test session) does not freeze the garbage
of the earlier ones.
"""

from __future__ import annotations

import gc


def freeze_imported_objects() -> None:
    """Exempt every object alive now (the imported modules') from the cyclic garbage collector, unless
    this process has frozen objects already."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
