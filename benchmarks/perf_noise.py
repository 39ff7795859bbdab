"""Noise-injection overhead per training step, measured side by side.

A training step (forward, backward, SGD update, batch of 128) of a CNN whose
hidden layer is 1024 wide (``MNISTCNN(hidden=1024)`` on 28x28 inputs), with
no noise, with full-covariance noise at that layer and with low-rank
(rank 32) noise, interleaved in one run.

Goals (issue #5): full <= 1.25x and low rank <= 1.10x of the noise-free step.

The paper's site (issue #10): a training step (batch 64, Adam, as the
authors) of ``PaperCNN`` with trace-scaled (t = 2) noise at ``body.tanh2``
(16x14x14 = 3136 wide), for full, diagonal and isotropic noise, against the
noise-free step, interleaved in the same run.

Run: ``python benchmarks/perf_noise.py [--quick] [--device cuda]``; writes
``benchmarks/results/perf/noise.csv``.
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, interleaved, machine, print_table, write_csv  # noqa: E402

from structnoise import StructuredNoiseFitter  # noqa: E402
from structnoise.models import MNISTCNN, PaperCNN  # noqa: E402
from structnoise.net import NoiseHook, _NoiseControl  # noqa: E402


def make_step(structure, device, batch, width, rank=32):
    torch.manual_seed(0)
    model = MNISTCNN(hidden=width).to(device)
    if structure != "none":
        rng = np.random.default_rng(0)
        deltas = rng.standard_normal((2 * width, width)) @ rng.standard_normal((width, width))
        fitter = StructuredNoiseFitter(structure=structure, rank=rank, random_state=0)
        fitter.fit(deltas / np.sqrt(width))
        model.body[8].register_forward_hook(
            NoiseHook(fitter.to_torch(device=device), _NoiseControl(1.0)))
    return _steps(model, torch.optim.SGD(model.parameters(), lr=0.01), batch, device)


def _steps(model, opt, batch, device):
    """A function running 5 training steps on one random batch of 28x28 images."""
    X = torch.rand(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def steps(k=5):
        for _ in range(k):
            opt.zero_grad()
            loss_fn(model(X), y).backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return steps


def make_paper_step(structure, device, batch=64, n_deltas=4000):
    """One Adam step of PaperCNN with trace-scaled noise at its L=2 site."""
    torch.manual_seed(0)
    model = PaperCNN().to(device)
    if structure != "none":
        rng = np.random.default_rng(0)
        d, k = 3136, 64
        # correlated deltas: a low-dimensional part plus independent noise
        deltas = rng.standard_normal((n_deltas, k)) @ rng.standard_normal((k, d)) + \
            rng.standard_normal((n_deltas, d))
        fitter = StructuredNoiseFitter(structure=structure, shrinkage=None, trace_scale=2.0,
                                       random_state=0).fit(deltas)
        model.body.tanh2.register_forward_hook(
            NoiseHook(fitter.to_torch(device=device), _NoiseControl(1.0)))
    return _steps(model, torch.optim.Adam(model.parameters(), lr=1e-3), batch, device)


def bench_paper_site(device, repeats):
    fns = {s: make_paper_step(s, device) for s in ("none", "full", "diagonal", "isotropic")}
    t = interleaved(fns, repeats=repeats)
    return [{"structure": s, "width": 3136, "device": str(device),
             "seconds_per_step": t[s] / 5, "ratio_to_no_noise": t[s] / t["none"]}
            for s in fns]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    width = 256 if args.quick else 1024
    print(f"machine: {machine()}; device {device}")
    fns = {s: make_step(s, device, 128, width) for s in ("none", "full", "lowrank")}
    t = interleaved(fns, repeats=args.repeats)
    rows = [{"structure": s, "width": width, "device": str(device),
             "seconds_per_step": t[s] / 5, "ratio_to_no_noise": t[s] / t["none"],
             "goal": {"none": "", "full": "<= 1.25", "lowrank": "<= 1.10"}[s]}
            for s in fns]
    print_table(rows, "Training step with noise vs without (batch 128)")
    write_csv(os.path.join(args.out, "noise.csv"), rows)
    paper_rows = bench_paper_site(device, args.repeats)
    print_table(paper_rows, "PaperCNN step with noise at body.tanh2 (d=3136, batch 64, Adam)")
    write_csv(os.path.join(args.out, "noise_paper_site.csv"), paper_rows)
    return rows, paper_rows


if __name__ == "__main__":
    main()
