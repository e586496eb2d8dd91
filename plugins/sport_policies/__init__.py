"""Policy architectures shared by the trainers: the squashed-Gaussian MLP (``gaussian-mlp``)."""

from sport_policies.gaussian import GaussianMLPConfig, GaussianMLPPolicy, squashed_log_prob

__all__ = ["GaussianMLPConfig", "GaussianMLPPolicy", "squashed_log_prob"]
