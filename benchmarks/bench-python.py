#!/usr/bin/python3
"""Dovetail from Python against Python's own tools, in one process.

Prints one JSON object per row with --json, otherwise a table. Every figure
is the median of REPS repetitions, Dovetail, baseline and floor taken in
turns, each repetition starting with the next of them. The default run
measures the cases with nothing else running, then beside one and two
CPU-burning processes that the benchmark starts
before each case and kills after it (--busy=N: beside N only); beside
burners every Dovetail row's target is its baseline (1x), and floor
targets do not apply.

Fields of a row: case, busy, unit, dovetail, baseline_name, baseline,
speedup, target (the least speed-up that meets it; 0: none), cpu_us,
baseline_cpu_us, and for rows with a floor floor_name, floor, floor_ratio
(Dovetail's cost in floors) and floor_target (the largest floor_ratio that
meets it; 0: none); met: whether the row meets its targets (null: it has
none).
"""

import asyncio
import concurrent.futures
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time

import gi

gi.require_version("Dvt", "1")
from gi.repository import Dvt  # noqa: E402

REPS = 5
SCALE = 1.0
LEVELS = [0, 1, 2]


def option(name):
    """The value of --name=V or --name V, or None."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}":
            if i + 1 == len(args):
                sys.exit(f"--{name}: a value is needed")
            return args[i + 1]
    return None


if option("scale") is not None:
    SCALE = float(option("scale"))
if option("busy") is not None:
    LEVELS = [int(option("busy"))]
JSON = "--json" in sys.argv
BUSY = 0

# A burner keeps a CPU busy until it is killed or its parent goes away.
BURNER = ("import os\n"
          "parent = os.getppid()\n"
          "while os.getppid() == parent:\n"
          "    for _ in range(100000):\n"
          "        pass\n")


BURNERS_SETTLE = 1.0


class Burners:
    """N CPU-burning processes for the duration of a with-block."""

    def __init__(self, n):
        self.n = n
        self.procs = []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", BURNER]))
        # As in dvt-bench.c: the first second or so after CPU-bound
        # processes start is not what a busy machine is like later.
        if self.n:
            time.sleep(BURNERS_SETTLE)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []
        return False


def scaled(n):
    return max(1, int(n * SCALE))


def target(quiet):
    return 1 if BUSY and quiet else quiet


def floor_target(quiet):
    """Floor targets hold on a quiet machine only."""
    return 0 if BUSY else quiet


def in_turns(rep, *steps):
    """Runs one repetition's measurements, each repetition starting with
    the next one (as dvt-bench.c does): no series always runs right after
    the same other one, whose wake-ups or spinning the scheduler would
    still remember beside burners."""
    for k in range(len(steps)):
        steps[(rep + k) % len(steps)]()


class Series:
    """One side of a case: a figure and the CPU time per item, per repetition."""

    def __init__(self):
        self.values, self.cpu = [], []

    def add(self, value, cpu):
        self.values.append(value)
        self.cpu.append(cpu)

    @property
    def median(self):
        return statistics.median(self.values)

    @property
    def median_cpu(self):
        return statistics.median(self.cpu)


def report(case, unit, higher_is_better, d, baseline_name, b, quiet_target,
           floor_name=None, f=None, quiet_floor_target=0):
    dovetail, baseline = d.median, b.median
    if higher_is_better:
        speedup = dovetail / baseline if baseline else 0
    else:
        speedup = baseline / dovetail if dovetail else 0
    row = {"case": case, "busy": BUSY, "unit": unit, "dovetail": dovetail,
           "baseline_name": baseline_name, "baseline": baseline,
           "speedup": speedup, "target": target(quiet_target),
           "cpu_us": d.median_cpu, "baseline_cpu_us": b.median_cpu}
    met = None if not row["target"] else speedup >= row["target"]
    if floor_name is not None:
        floor = f.median
        # What Dovetail costs in floors: 1 is the floor itself.
        ratio = (floor / dovetail if dovetail else 0) if higher_is_better \
            else (dovetail / floor if floor else 0)
        row.update(floor_name=floor_name, floor=floor, floor_ratio=ratio,
                   floor_target=floor_target(quiet_floor_target))
        if row["floor_target"]:
            met = (met is not False) and 0 < ratio <= row["floor_target"]
    row["met"] = met
    if JSON:
        print(json.dumps(row), flush=True)
    else:
        ratio = f"{row['floor_ratio']:.1f}x" if floor_name else ""
        goal = f"{row['target']:g}x" if row["target"] else "-"
        most = (f"<={row['floor_target']:g}x" if row["floor_target"] else "-") \
            if floor_name else ""
        ok = "" if met is None else "ok" if met else "MISS"
        print(f"{case:38} {BUSY:4} {dovetail:11.4g} {unit:8} {baseline_name:34} "
              f"{baseline:11.4g} {speedup:7.2f}x {goal:>6} "
              f"{d.median_cpu:6.3g}/{b.median_cpu:<6.3g} {ratio:>7} {most:>6} {ok:4} "
              f"{floor_name or ''}", flush=True)


def timed(fn, n, per_second):
    """Runs fn(); returns (items per second or µs per item, CPU µs per item)."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    t, c = time.perf_counter() - t0, time.process_time() - c0
    return (n / t if per_second else t / n * 1e6), c / n * 1e6


def item(task, cancellable, *data):
    task.return_value(task.get_index() * 2)


def nop(task, cancellable, *data):
    task.return_value(1)


def double(x):
    return x * 2


def bench_map(rt, pool):
    n = scaled(100000)
    d, raw, b, f = Series(), Series(), Series(), Series()

    def dovetail():
        res = rt.map_blocking(double, range(n))
        assert len(res) == n and res[-1] == 2 * (n - 1)

    def dovetail_raw():
        assert len(Dvt.Runtime.map_blocking(rt, n, item, None, None, None)) == n

    def baseline():
        assert len(list(pool.map(double, range(n)))) == n

    def floor():
        assert len([double(x) for x in range(n)]) == n

    for rep in range(REPS):
        in_turns(rep,
                 lambda: d.add(*timed(dovetail, n, True)),
                 lambda: raw.add(*timed(dovetail_raw, n, True)),
                 lambda: b.add(*timed(baseline, n, True)),
                 lambda: f.add(*timed(floor, n, True)))
    report("python map_blocking(fn, items) 100k", "items/s", True, d,
           "ThreadPoolExecutor.map", b, 3, "list comprehension", f)
    # Informational: one task per item, through the raw introspected call.
    report("python map_blocking raw form 100k", "items/s", True, raw,
           "ThreadPoolExecutor.map", b, 0, "list comprehension", f)
    # No target: the interpreter's own cost of calling fn per item.
    report("floor: python list comprehension 100k", "items/s", True, f,
           "ThreadPoolExecutor.map", b, 0)


def queue_ping_pong(n):
    """Round trips between two Python threads through queue.SimpleQueue."""
    ping, pong = queue.SimpleQueue(), queue.SimpleQueue()

    def echo():
        while (x := ping.get()) is not None:
            pong.put(x)

    thread = threading.Thread(target=echo)
    thread.start()

    def run():
        for i in range(n):
            ping.put(i)
            pong.get()

    result = timed(run, n, False)
    ping.put(None)
    thread.join()
    return result


def bench_round_trip(rt, pool):
    n = scaled(20000)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def coro():
        return 1

    def dovetail():
        for _ in range(n):
            rt.call_blocking(int)

    def dovetail_raw():
        for _ in range(n):
            Dvt.Runtime.to_thread_blocking(rt, nop, None, None, None)

    def executor():
        for _ in range(n):
            pool.submit(int).result()

    def aio():
        for _ in range(n):
            asyncio.run_coroutine_threadsafe(coro(), loop).result()

    d, raw, tpe, a, f = Series(), Series(), Series(), Series(), Series()
    for rep in range(REPS):
        in_turns(rep,
                 lambda: d.add(*timed(dovetail, n, False)),
                 lambda: raw.add(*timed(dovetail_raw, n, False)),
                 lambda: tpe.add(*timed(executor, n, False)),
                 lambda: a.add(*timed(aio, n, False)),
                 lambda: f.add(*queue_ping_pong(n)))

    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
    floor = "SimpleQueue ping-pong"
    # Both rows: within 2 floors on a quiet machine.
    report("python call_blocking(int)", "us", False, d,
           "ThreadPoolExecutor.submit().result", tpe, 1, floor, f, 2)
    report("python call_blocking(int)", "us", False, d,
           "run_coroutine_threadsafe().result", a, 5, floor, f, 2)
    # Informational: a work function that completes its task itself.
    report("python to_thread_blocking raw form", "us", False, raw,
           "run_coroutine_threadsafe().result", a, 0, floor, f)
    # No target: a hand-off between two Python threads, nothing else.
    report("floor: python SimpleQueue ping-pong", "us", False, f,
           "ThreadPoolExecutor.submit().result", tpe, 0)


def numbers(n):
    for i in range(n):
        yield i


def bench_channel(rt):
    """A generator run on another thread, consumed item by item: through
    Runtime.produce() from a thread, against asyncio.to_thread(next, gen)
    from an asyncio loop (the way asyncio code streams a blocking
    generator). Informational: the issue's target (20x) is for `async for`
    over a channel (bench_channel_async)."""
    n = scaled(20000)
    expected = n * (n - 1) // 2

    def dovetail():
        assert sum(rt.produce(numbers, n, capacity=64)) == expected

    async def drain(gen):
        total = 0
        done = object()
        while (x := await asyncio.to_thread(next, gen, done)) is not done:
            total += x
        return total

    def baseline():
        assert asyncio.run(drain(numbers(n))) == expected

    def floor():
        assert sum(numbers(n)) == expected

    d, b, f = Series(), Series(), Series()
    for rep in range(REPS):
        in_turns(rep,
                 lambda: d.add(*timed(dovetail, n, True)),
                 lambda: b.add(*timed(baseline, n, True)),
                 lambda: f.add(*timed(floor, n, True)))
    report("python produce(gen) 20k from a thread", "items/s", True, d,
           "asyncio.to_thread(next, gen)", b, 0, "generator in one thread", f)


def bench_channel_async(rt):
    """The issue's case: a generator run on another thread, consumed from
    an asyncio loop: `async for` over Runtime.produce() (1M items), against
    asyncio.to_thread(next, gen) (20k items: a rate, and the baseline is
    too slow for 1M). Target 20x."""
    n = scaled(1000000)
    n_base = scaled(20000)
    loop = asyncio.new_event_loop()

    async def dovetail():
        total = 0
        async for x in rt.produce(numbers, n, capacity=1024):
            total += x
        assert total == n * (n - 1) // 2

    async def drain(gen):
        total = 0
        done = object()
        while (x := await asyncio.to_thread(next, gen, done)) is not done:
            total += x
        assert total == n_base * (n_base - 1) // 2

    async def floor():
        total = 0
        for x in numbers(n):
            total += x
        assert total == n * (n - 1) // 2

    d, b, f = Series(), Series(), Series()
    for rep in range(REPS):
        in_turns(rep,
                 lambda: d.add(*timed(
                     lambda: loop.run_until_complete(dovetail()), n, True)),
                 lambda: b.add(*timed(
                     lambda: loop.run_until_complete(drain(numbers(n_base))), n_base, True)),
                 lambda: f.add(*timed(
                     lambda: loop.run_until_complete(floor()), n, True)))
    loop.close()
    report("python async for produce(gen) 1M", "items/s", True, d,
           "asyncio.to_thread(next, gen)", b, 20, "generator in one thread", f)

def bench_asyncio(rt):
    """await of 10 000 runtime.call() from asyncio, all at once (gathered)
    and one after another, against asyncio.to_thread."""
    n = scaled(10000)
    n_seq = scaled(2000)
    loop = asyncio.new_event_loop()

    async def gathered(call):
        values = await asyncio.gather(*(call(int, i) for i in range(n)))
        assert values[-1] == n - 1

    async def one_by_one(call):
        for i in range(n_seq):
            await call(int, i)

    d, b, ds, bs = Series(), Series(), Series(), Series()
    for rep in range(REPS):
        in_turns(rep,
                 lambda: d.add(*timed(
                     lambda: loop.run_until_complete(gathered(rt.call)), n, False)),
                 lambda: b.add(*timed(
                     lambda: loop.run_until_complete(gathered(asyncio.to_thread)), n, False)),
                 lambda: ds.add(*timed(
                     lambda: loop.run_until_complete(one_by_one(rt.call)), n_seq, False)),
                 lambda: bs.add(*timed(
                     lambda: loop.run_until_complete(one_by_one(asyncio.to_thread)),
                     n_seq, False)))
    loop.close()
    report("python await rt.call(int) x10k gather", "us", False, d,
           "await asyncio.to_thread(int)", b, 3)
    # Informational: each call awaited before the next starts.
    report("python await rt.call(int) one by one", "us", False, ds,
           "await asyncio.to_thread(int)", bs, 0)


def main():
    global BUSY

    # Burners are killed on the way out of every case, SIGTERM included.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if not JSON:
        print(f"{'case':38} {'busy':>4} {'dovetail':>11} {'unit':8} {'baseline':34} "
              f"{'baseline':>11} {'speed-up':>8} {'target':>6} {'cpu us/item':13} "
              f"{'x floor':>7} {'max':>6} {'met':4} floor")
    for level in LEVELS:
        BUSY = level
        rt = Dvt.Runtime.new(0)
        with concurrent.futures.ThreadPoolExecutor() as pool:
            with Burners(level):
                bench_map(rt, pool)
            with Burners(level):
                bench_round_trip(rt, pool)
            with Burners(level):
                bench_channel(rt)
                bench_channel_async(rt)
                bench_asyncio(rt)
        rt.shutdown(True, False)


if __name__ == "__main__":
    main()
