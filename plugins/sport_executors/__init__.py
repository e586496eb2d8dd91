"""Built-in executors: ``inline`` (in this process) and ``process`` (a pool of local worker processes)."""
