"""The ``wandb`` logger: every logging event as Weights & Biases runs, one per stage and series."""
