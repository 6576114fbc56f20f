"""An example of a model of your own for vaebench: :class:`custom_model.models.TinyVAE`."""
