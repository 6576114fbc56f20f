"""The one executor for sets of runs: suites' points, tuning's trials and fresh-seed evaluation.

The layers, each importing only those below it (no cycle):

- :mod:`vaebench.executor.outcomes`: what a task came to (:class:`~vaebench.executor.outcomes.TaskOutcome`);
- :mod:`vaebench.executor.stopping`: SIGTERM and SIGHUP handled as Ctrl-C is, and workers that never
  outlive their parent;
- :mod:`vaebench.executor.local` and :mod:`vaebench.executor.cluster`: the backends, spawned worker
  processes (``--jobs N``) and a Dask cluster (``--cluster``);
- :mod:`vaebench.executor.tasks`: tasks handed one at a time to this process or a backend
  (:func:`~vaebench.executor.tasks.open_tasks`), or a list of them (:func:`~vaebench.executor.tasks.run_tasks`);
- :mod:`vaebench.executor.owners`, :mod:`vaebench.executor.claims` and :mod:`vaebench.executor.ledger`: the
  run ledger, which process runs what (ownership, claims), what a dead one left behind (recovery), and
  stop handling; suites and studies use it through :mod:`~vaebench.executor.ledger`;
- :mod:`vaebench.executor.runs`: which runs are already done (the configuration's hash), running the rest,
  each failure recorded on its run rather than raised.

Import from the submodules; this package imports nothing. :mod:`vaebench.tracking` sits below the executor
and imports nothing from it.
"""
