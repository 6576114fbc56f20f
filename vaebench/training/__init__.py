"""Training: the one mini-batch loop every torch model is trained by (:mod:`~vaebench.training.loop`) and
the facts about the hardware it runs on (:mod:`~vaebench.training.hardware`)."""
