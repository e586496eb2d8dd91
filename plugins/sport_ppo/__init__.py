"""PPO and Projected PPO (SPoRt's Experiment 2): trainers ``ppo`` and ``projected-ppo``."""
