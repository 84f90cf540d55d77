#!/usr/bin/python3
"""Dovetail from Python against Python's own tools, in one process.

Prints one JSON object per case with --json, otherwise a table. Every figure
is the median of REPS repetitions, Dovetail and baseline taken alternately.
"""

import asyncio
import concurrent.futures
import json
import statistics
import sys
import threading
import time

import gi

gi.require_version("Dvt", "1")
from gi.repository import Dvt  # noqa: E402

REPS = 5
SCALE = 1.0
for arg in sys.argv[1:]:
    if arg.startswith("--scale="):
        SCALE = float(arg.split("=", 1)[1])
JSON = "--json" in sys.argv


def scaled(n):
    return max(1, int(n * SCALE))


def report(case, unit, higher_is_better, dovetail, baseline_name, baseline, target):
    if higher_is_better:
        speedup = dovetail / baseline if baseline else 0
    else:
        speedup = baseline / dovetail if dovetail else 0
    if JSON:
        print(json.dumps({"case": case, "unit": unit, "dovetail": dovetail,
                          "baseline_name": baseline_name, "baseline": baseline,
                          "speedup": speedup, "target": target}))
    else:
        print(f"{case:34} {dovetail:12.4g} {unit:10} {baseline_name:34} "
              f"{baseline:12.4g}  {speedup:6.2f}x (target {target}x)")


def item(task, cancellable, *data):
    task.return_value(task.get_index() * 2)


def nop(task, cancellable, *data):
    task.return_value(1)


def double(x):
    return x * 2


def bench_map(rt, pool):
    n = scaled(100000)
    d, raw, b = [], [], []
    for _ in range(REPS):
        t0 = time.perf_counter()
        res = rt.map_blocking(double, range(n))
        d.append(n / (time.perf_counter() - t0))
        assert len(res) == n and res[-1] == 2 * (n - 1)

        t0 = time.perf_counter()
        res = Dvt.Runtime.map_blocking(rt, n, item, None, None, None)
        raw.append(n / (time.perf_counter() - t0))
        assert len(res) == n

        t0 = time.perf_counter()
        res = list(pool.map(double, range(n)))
        b.append(n / (time.perf_counter() - t0))
    report("python map_blocking(fn, items) 100k", "items/s", True, statistics.median(d),
           "ThreadPoolExecutor.map", statistics.median(b), 3)
    # Informational: one task per item, through the raw introspected call.
    report("python map_blocking raw form 100k", "items/s", True, statistics.median(raw),
           "ThreadPoolExecutor.map", statistics.median(b), 0)


def bench_round_trip(rt, pool):
    n = scaled(20000)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def coro():
        return 1

    d, raw, tpe, aio = [], [], [], []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(n):
            rt.call_blocking(int)
        d.append((time.perf_counter() - t0) / n * 1e6)

        t0 = time.perf_counter()
        for _ in range(n):
            Dvt.Runtime.to_thread_blocking(rt, nop, None, None, None)
        raw.append((time.perf_counter() - t0) / n * 1e6)

        t0 = time.perf_counter()
        for _ in range(n):
            pool.submit(int).result()
        tpe.append((time.perf_counter() - t0) / n * 1e6)

        t0 = time.perf_counter()
        for _ in range(n):
            asyncio.run_coroutine_threadsafe(coro(), loop).result()
        aio.append((time.perf_counter() - t0) / n * 1e6)

    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
    dm = statistics.median(d)
    report("python call_blocking(int)", "us", False, dm,
           "ThreadPoolExecutor.submit().result", statistics.median(tpe), 1)
    report("python call_blocking(int)", "us", False, dm,
           "run_coroutine_threadsafe().result", statistics.median(aio), 5)
    # Informational: a work function that completes its task itself.
    report("python to_thread_blocking raw form", "us", False, statistics.median(raw),
           "run_coroutine_threadsafe().result", statistics.median(aio), 0)


def main():
    rt = Dvt.Runtime.new(0)
    with concurrent.futures.ThreadPoolExecutor() as pool:
        bench_map(rt, pool)
        bench_round_trip(rt, pool)
    rt.shutdown(True, False)


if __name__ == "__main__":
    main()
