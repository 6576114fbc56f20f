"""The one executor for sets of runs: suites, tuning's fresh-seed evaluation, and anything later.

- :mod:`vaebench.executor.runs`: which runs are already done (the configuration's hash), running the rest,
  each failure recorded on its run rather than raised;
- :mod:`vaebench.executor.local`: the worker processes of ``--jobs N``;
- :mod:`vaebench.executor.stopping`: SIGTERM and SIGHUP handled as Ctrl-C is, and workers that never
  outlive their parent.

Import from the submodules; this package imports nothing, so that :mod:`vaebench.tracking` can use
:mod:`~vaebench.executor.stopping` without a cycle.
"""
