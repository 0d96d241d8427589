#!/usr/bin/env python3
"""measure.py NAME RUNS CMD...: best wall time and peak RSS of CMD over RUNS runs."""
import os
import resource
import subprocess
import sys
import time

name, runs, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
best, peak = float("inf"), 0
for _ in range(runs):
    start = time.perf_counter()
    pid = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    best = min(best, elapsed)
    peak = max(peak, usage.ru_maxrss)
print(f"{name:<10} best {best * 1000:7.1f} ms   peak {peak / 1024:6.1f} MiB   exit {os.waitstatus_to_exitcode(status)}")
