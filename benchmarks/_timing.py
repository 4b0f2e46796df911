"""Timing helper shared by the benchmarks: the median of repeated runs, in seconds."""

import statistics
import time


def median_seconds(fn, repeats=7, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
