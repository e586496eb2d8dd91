"""The ``tensorboard`` logger: every logging event as TensorBoard event files under ``<run_dir>/tb/<stage>``."""
