"""An example third-party sport plugin: a CSV logger, installed through the ``sport`` entry-point group."""
