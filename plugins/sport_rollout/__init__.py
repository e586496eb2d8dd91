"""The ``rollout`` evaluator: episodes of a policy (or of uniform random actions) and their summary."""
