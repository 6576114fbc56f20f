"""Sets of runs on top of the executor: suites (:mod:`~vaebench.sets.suite`, grids of models x betas x
seeds) and tuning studies (:mod:`~vaebench.sets.tune`, Optuna)."""
