"""Covariance core speed and memory, each figure a ratio measured in the same run.

* ours (``structnoise.covariance.ledoit_wolf`` / ``oas``) vs scikit-learn's
  ``LedoitWolf().fit`` / ``OAS().fit``, and vs one symmetric product
  ``X.T @ X`` of the same matrix, the faster of scipy's BLAS ``syrk`` and
  numpy's ``np.dot(X.T, X)`` (the floor: the estimate needs that product);
* peak traced memory of the streaming accumulator at n=200000, d=1024 vs the
  size of the data it streams over.

Goals (issue #3): >= 5x faster than LedoitWolf at n=20000, d=2048 float64,
and within 1.5x of one syrk.

Run: ``python benchmarks/perf_covariance.py [--quick]``; writes
``benchmarks/results/perf/covariance.csv``.
"""

import argparse
import os
import sys
import tracemalloc

import numpy as np
from scipy.linalg import blas
from sklearn.covariance import OAS, LedoitWolf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, interleaved, machine, print_table, write_csv  # noqa: E402

from structnoise.covariance import MomentAccumulator, ledoit_wolf, oas  # noqa: E402

SIZES = [(10000, 256), (10000, 1024), (20000, 2048)]
#: pause before each timed call: the sides alternate between numpy's and
#: scipy's OpenBLAS, whose threads spin after a call (see ``interleaved``);
#: without it the summary of an earlier run had Ledoit-Wolf at 0.98x and OAS
#: at 0.52x scikit-learn at 10000 x 256 float32, where each side timed alone
#: was 1.9x and 4.8x
SETTLE = 0.2


def bench_speed(sizes, repeats):
    rows = []
    rng = np.random.default_rng(0)
    for n, d in sizes:
        for dtype in (np.float64, np.float32):
            X = (rng.standard_normal((n, d)) + 0.5).astype(dtype)
            syrk = blas.dsyrk if dtype == np.float64 else blas.ssyrk
            t = interleaved({
                "ours_lw": lambda X=X: ledoit_wolf(X),
                "ours_oas": lambda X=X: oas(X),
                "sklearn_lw": lambda X=X: LedoitWolf(store_precision=False).fit(X),
                "sklearn_oas": lambda X=X: OAS(store_precision=False).fit(X),
                "syrk": lambda X=X, syrk=syrk: syrk(1.0, X.T, trans=0),
                "np_dot": lambda X=X: np.dot(X.T, X),
            }, repeats=repeats, warmup=1, settle=SETTLE)
            # the floor: one symmetric product, the faster of scipy's syrk
            # and numpy's X.T @ X (numpy runs it as syrk with its own BLAS)
            floor = min(t["syrk"], t["np_dot"])
            rows.append({
                "n": n, "d": d, "dtype": np.dtype(dtype).name,
                "ours_lw_s": t["ours_lw"], "sklearn_lw_s": t["sklearn_lw"],
                "speedup_vs_sklearn_lw": t["sklearn_lw"] / t["ours_lw"],
                "ours_oas_s": t["ours_oas"], "sklearn_oas_s": t["sklearn_oas"],
                "speedup_vs_sklearn_oas": t["sklearn_oas"] / t["ours_oas"],
                "syrk_s": t["syrk"], "np_dot_s": t["np_dot"],
                "ours_lw_over_syrk": t["ours_lw"] / floor,
            })
    return rows


def bench_streaming_memory(n, d, batch):
    """Peak traced memory while streaming n rows of width d in batches."""
    rng = np.random.default_rng(0)
    batches = n // batch
    tracemalloc.start()
    acc = MomentAccumulator(d, block_size=batch)
    for _ in range(batches):
        acc.update(rng.standard_normal((batch, d)))  # a batch arrives, is used, dropped
    cov, s = acc.ledoit_wolf()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    data_bytes = n * d * 8
    matrix_bytes = d * d * 8
    return {"n": n, "d": d, "batch": batch, "peak_MiB": peak / 2**20,
            "data_MiB": data_bytes / 2**20, "dxd_matrix_MiB": matrix_bytes / 2**20,
            "peak_over_dxd": peak / matrix_bytes, "peak_over_data": peak / data_bytes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    sizes = [(2000, 128), (4000, 256)] if args.quick else SIZES
    print(f"machine: {machine()}")
    rows = bench_speed(sizes, args.repeats)
    print_table(rows, "Ledoit-Wolf / OAS: ours vs scikit-learn vs one syrk (min of repeats)")
    mem = bench_streaming_memory(*((20000, 256, 2000) if args.quick else (200000, 1024, 4096)))
    print_table([mem], "Streaming accumulator, peak traced memory")
    write_csv(os.path.join(args.out, "covariance.csv"), rows)
    write_csv(os.path.join(args.out, "covariance_memory.csv"), [mem])
    return rows, mem


if __name__ == "__main__":
    main()
