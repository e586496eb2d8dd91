"""Scenario certification: the ``scenario`` and ``scenario-uniform`` certifiers and the ``certified-eval``
evaluator that checks a task policy against a certificate."""
