"""Shared helpers of the benchmarks: timing side by side, result files."""

import csv
import ctypes
import gc
import os
import platform
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

#: glibc's mallopt parameters: M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def pin_malloc():
    """Fix glibc malloc's thresholds for this process; return how memory is allocated.

    glibc serves blocks above a *dynamic* threshold with fresh pages from
    the kernel, raises the threshold when such a block is freed, and returns
    heap tops above twice it: whether a tensor of a few MB reuses memory or
    faults in new pages depends on what the process freed before. The same
    disk blur of 256 32x32 colour images took 1.4 ms in one process and
    4.4 ms in the next (2 cores), enough to move any ratio. Fixed
    thresholds (256 MB: tensors are served from the heap and kept there)
    make the runs agree, as preloading jemalloc or tcmalloc does (PyTorch's
    CPU performance tuning guide). Set
    ``STRUCTNOISE_BENCH_MALLOC=default`` to measure glibc's heuristic instead.
    """
    if os.environ.get("STRUCTNOISE_BENCH_MALLOC", "pinned") == "default":
        return "glibc malloc, default thresholds"
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):  # not glibc: its own allocator's behaviour
        return "system malloc"
    return "glibc malloc, thresholds pinned at 256 MB" if ok else "glibc malloc (mallopt refused)"


#: set once, on import, before the benchmarks allocate anything
MALLOC = pin_malloc()


def interleaved(fns, repeats=3, warmup=1, settle=0.0, min_seconds=0.0):
    """Time several functions in alternation; minimum time of each.

    At least ``repeats`` rounds, and more until ``min_seconds`` have passed:
    the minimum of a sub-millisecond call needs hundreds of samples.

    Alternating ours / reference inside one loop means a burst of load from
    another process on the machine hits both sides alike.

    The garbage collector is off from the first timed call to the last (as
    in ``timeit``), and the order of the sides rotates from round to round.
    With it on, a call pays for collecting the cycles the call before it
    left: raw ART's SquareAttack and ours on the same CNN took 0.93 s when
    timed first in each round and 1.10 s when timed second, whichever side
    it was. Collecting between calls instead evicts the caches: ours
    corrupting 1000 images, timed right after a collection, took 1.4x as
    long.

    ``settle`` seconds of sleep precede every timed call. Sides that run in
    different thread pools need it: numpy and scipy each load their own
    OpenBLAS, and torch its OpenMP runtime, whose threads busy-wait for up
    to about 0.1 s after a call. A call timed right after the other
    library's pays for that spinning on 2 cores (measured: scikit-learn's
    LedoitWolf at 10000 x 256 float32 took 23 ms in alternation with scipy's
    BLAS, 15 ms after a 0.2 s pause, 15 ms alone).
    """
    names = list(fns)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in names}
    was_enabled = gc.isenabled()
    gc.disable()
    start, r = time.perf_counter(), 0
    try:
        while r < repeats or time.perf_counter() - start < min_seconds:
            k = r % len(names)
            r += 1
            for name in names[k:] + names[:k]:
                if settle:
                    time.sleep(settle)
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()
    return {name: min(ts) for name, ts in times.items()}


def write_csv(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows, title=None):
    if title:
        print(f"\n{title}")
    cols = list(rows[0])
    width = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.rjust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c]).rjust(width[c]) for c in cols))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def machine():
    import torch

    gpu = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}, numpy {np.__version__}, {gpu}, {MALLOC}")
