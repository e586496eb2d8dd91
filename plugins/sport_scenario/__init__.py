"""Scenario certification: the ``scenario`` and ``scenario-uniform`` certifiers and the ``certified-eval``
and ``projected-sweep``
evaluator that checks a task policy against a certificate."""
