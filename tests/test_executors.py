"""The process executor: an interrupted map stops its running tasks instead of waiting for them."""

from __future__ import annotations

import time

from sport_executors.executors import ProcessConfig, ProcessExecutor


def test_leaving_a_map_early_stops_the_tasks_still_running():
    executor = ProcessExecutor(ProcessConfig(workers=2))
    start = time.perf_counter()
    results = executor.map(time.sleep, [0.01, 120.0])
    assert next(results) is None  # the short task; the long one is running in the other worker
    results.close()  # what an exception in the consumer (e.g. Ctrl-C, SIGTERM) does to the generator
    executor.close()
    assert time.perf_counter() - start < 60
    assert list(executor.map(abs, [-1, -2])) in ([1, 2], [2, 1])  # a fresh pool serves the next map
    executor.close()
