"""The retraining's arithmetic rate: the main job's stacked step beside this machine's.

One seed of the main job retrains 11 networks together on their frozen
front (PaperCNN at L=2, d=3136: 4 with full noise, 4 diagonal, 2
isotropic, 1 without; batch 64, Adam). This benchmark runs the stacked
engine's ``train_networks`` on such a stack, counts its floating-point
operations with torch's ``FlopCounterMode`` (matrix products and
convolutions, forward and backward, the full-noise draws' triangular
products included) and divides by its time. Both are taken at two
training-set sizes and differenced, so the fixed cost of a call (the
front's activations, preparing the nets) drops out: what is left is the
cost of a step.

Beside the step's GFLOP/s stands the machine's float32 matrix-multiply
rate, measured here on the shape of the full-noise draws (1024 x 3136 by
3136 x 3136). ``flops / rate`` is the time the step's arithmetic needs at
that rate; the rest of the step goes to what no flop counter sees:
drawing the standard normals (timed here alone, one per feature per row
of every noisy network), the pooling, the activations and the optimizer.

Usage: ``python benchmarks/perf_rate.py [--quick] [--out DIR]``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, interleaved, print_table, write_csv  # noqa: E402
from perf_engine import MAIN_JOB_STACK, main_job_plans, seed_setup  # noqa: E402

BATCH = 64


def _tiled(X, y, n):
    import numpy as np

    reps = -(-n // len(X))
    return np.concatenate([X] * reps)[:n], np.concatenate([y] * reps)[:n]


def _stack():
    """The settings, base network and the main job's 11 networks with their noise."""
    settings, sequential, base, pairs, X, y = seed_setup(1200)
    plans = main_job_plans()
    noises = [sequential.fitted_noise(settings, p, pairs) for p in plans]
    return settings, base, plans, noises, X, y


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                        transposed, _output_padding, _groups, output_mask, out_shape, **_):
    """FLOPs of a convolution's backward, grouped convolutions included.

    Each gradient asked for (input, weight) costs what the forward costs.
    torch's own formula leaves the groups out of the backward and counted the
    stacked step's grouped convolution (one group per network: how ``vmap``
    runs a convolution over stacked weights) 11 times over.
    """
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _counter():
    """torch's FlopCounterMode with :func:`_conv_backward_flop` for the convolutions' backward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten.convolution_backward: _conv_backward_flop})


def _matmul_rate(repeats):
    """Float32 GFLOP/s of one ``(1024, 3136) @ (3136, 3136)`` product (best of ``repeats``)."""
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(1024, 3136, generator=g)
    b = torch.randn(3136, 3136, generator=g)
    best = interleaved({"matmul": lambda: a @ b}, repeats=repeats, min_seconds=1.0)
    return 2 * 1024 * 3136 * 3136 / best["matmul"] / 1e9


def _normals_seconds(networks, repeats):
    """Seconds to draw a step's standard normals as the noise modules draw them.

    One call per network of ``(BATCH, 3136)``: one normal per feature per row
    (for full noise, one per column of its square factor).
    """
    import torch

    g = torch.Generator().manual_seed(0)
    best = interleaved({"normals": lambda: [torch.randn(BATCH, 3136, generator=g)
                                            for _ in range(networks)]},
                       repeats=repeats, min_seconds=1.0)
    return best["normals"]


def rate(sizes=(1280, 5120), repeats=3):
    """The stacked step's GFLOP/s and the machine's matmul GFLOP/s (one row)."""
    from structnoise.evaluation.stacked import StackedTrainer

    settings, base, plans, noises, X0, y0 = _stack()
    stacked = StackedTrainer()
    flops, seconds = {}, {}
    for n in sizes:
        X, y = _tiled(X0, y0, n)

        def train(X=X, y=y):
            stacked.train_networks(settings, plans, base, noises, X, y, order_seed=0)

        with _counter() as counter:
            train()
        flops[n] = counter.get_total_flops()
        seconds[n] = interleaved({"train": train}, repeats=repeats)["train"]
    small, large = sizes
    steps = -(-large // BATCH) - -(-small // BATCH)
    step_flops = (flops[large] - flops[small]) / steps
    step_seconds = (seconds[large] - seconds[small]) / steps
    noisy = sum(count for structure, count in MAIN_JOB_STACK if structure != "none")
    n_normals = noisy * BATCH * 3136
    normals = _normals_seconds(noisy, repeats=max(repeats, 3))
    matmul = _matmul_rate(repeats=max(repeats, 3))
    step_rate = step_flops / step_seconds / 1e9
    return {"networks": len(plans), "step_ms": 1e3 * step_seconds,
            "step_gflop": step_flops / 1e9, "step_gflop_per_s": step_rate,
            "matmul_gflop_per_s": matmul, "step_over_matmul": step_rate / matmul,
            "arithmetic_ms_at_matmul_rate": 1e3 * step_flops / (matmul * 1e9),
            "normals_per_step": n_normals, "normals_ms": 1e3 * normals}


def rate_lines(row):
    """The summary's section on the retraining's arithmetic rate (issue #31)."""
    rest = row["step_ms"] - row["arithmetic_ms_at_matmul_rate"] - row["normals_ms"]
    return ["", "## The retraining's arithmetic rate (issue #31)", "",
            f"The main job's stacked step of one seed ({row['networks']} networks: 4 full, 4 "
            "diagonal, 2 isotropic, 1 without noise; PaperCNN at L=2, batch 64, Adam), "
            "floating-point operations counted by torch's FlopCounterMode, per step "
            "(two training-set sizes, differenced), beside this machine's float32 "
            "matrix-multiply rate (1024 x 3136 by 3136 x 3136).", "",
            "| step | GFLOP per step | step GFLOP/s | machine matmul GFLOP/s | step / matmul "
            "| the step's arithmetic at the matmul rate | its normal draws | the rest |",
            "|---|---|---|---|---|---|---|---|",
            f"| {row['step_ms']:.1f} ms | {row['step_gflop']:.2f} | "
            f"{row['step_gflop_per_s']:.0f} | {row['matmul_gflop_per_s']:.0f} | "
            f"{row['step_over_matmul']:.2f} | {row['arithmetic_ms_at_matmul_rate']:.1f} ms | "
            f"{row['normals_ms']:.1f} ms ({row['normals_per_step'] / 1e6:.1f} M) | "
            f"{rest:.1f} ms |", "",
            "The rest is the pooling, the activations, the optimizer and the stacking; the "
            "normals and the rest are work the flop count does not see."]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    # quick: 2 and 16 steps, so the differenced time stays well above the
    # calls' fixed cost and its noise (about 1 s of front and preparation)
    row = rate((128, 1024), repeats=2) if args.quick else rate()
    write_csv(os.path.join(args.out, "retraining_rate.csv"), [row])
    print_table([row], "The main job's stacked step against this machine's matmul rate")
    return row


if __name__ == "__main__":
    main()
