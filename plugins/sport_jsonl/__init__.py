"""A logger writing every scalar event as one JSON line to ``<run_dir>/metrics.jsonl``."""
