"""Noise-injection overhead per training step, measured side by side.

A training step (forward, backward, SGD update, batch of 128) of a CNN whose
hidden layer is 1024 wide (``MNISTCNN(hidden=1024)`` on 28x28 inputs), with
no noise, with full-covariance noise at that layer and with low-rank
(rank 32) noise, interleaved in one run.

Goals (issue #5): full <= 1.25x and low rank <= 1.10x of the noise-free step.

Wide sites (issues #10 and #13): a training step (batch 64, Adam, as the
authors) with trace-scaled (t = 2) noise at d = 3136 (``PaperCNN``'s
``body.tanh2``, the paper's L = 2) and d = 12544 (``MNISTCNN``'s
``body.4``), for full, automatic low-rank (99% of the variance), diagonal
and isotropic noise, against the noise-free step, interleaved in the same
run; with each noise's fit time and the low-rank covariance's relative
Frobenius distance from the full one. The deltas are synthetic, with a
power-law spectrum (:func:`synthetic_deltas`).
Goals (issue #13): full <= 1.5x, auto-lowrank <= 1.15x, diagonal and
isotropic <= 1.05x.

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


#: the widths of issue #13: PaperCNN's L=2 site and MNISTCNN's second conv block
SITES = {3136: (PaperCNN, "body.tanh2"), 12544: (MNISTCNN, "body.4")}
STRUCTURES = ("full", "lowrank", "diagonal", "isotropic")


def synthetic_deltas(d, n=2000, n_directions=1000, seed=0):
    """Deltas with a power-law spectrum: variance ``i**-2`` along direction ``i``.

    Activation spectra of trained networks decay as a power law (Stringer et
    al., 2019); the directions are random (near-orthogonal in high
    dimension), plus a small isotropic part so that every unit varies.
    Float32, as activations are.
    """
    rng = np.random.default_rng(seed)
    m = min(n_directions, d)
    z = rng.standard_normal((n, m), dtype=np.float32) / np.arange(1, m + 1, dtype=np.float32)
    directions = rng.standard_normal((m, d), dtype=np.float32) / np.float32(np.sqrt(d))
    return z @ directions + np.float32(1e-3) * rng.standard_normal((n, d), dtype=np.float32)


def fit_site_noise(d, fraction=0.99):
    """The four noises of one width, fitted as the paper does (t = 2, +1e-4), timed."""
    import time

    deltas = synthetic_deltas(d)
    fitted, seconds = {}, {}
    for structure in STRUCTURES:
        t0 = time.perf_counter()
        fitted[structure] = StructuredNoiseFitter(
            structure=structure, rank=fraction if structure == "lowrank" else None,
            shrinkage=None, reg_covar=1e-4, trace_scale=2.0, random_state=0).fit(deltas)
        seconds[structure] = time.perf_counter() - t0
    return fitted, seconds


def lowrank_error(full, lowrank):
    """Relative Frobenius distance of the low-rank noise covariance from the full one."""
    C = full.covariance_
    diff = lowrank.covariance_
    diff -= C
    return float(np.linalg.norm(diff) / np.linalg.norm(C))


def make_site_step(d, fitter, device, batch=64):
    """One Adam step (batch 64, as the authors) of the width-``d`` site's network."""
    torch.manual_seed(0)
    cls, site = SITES[d]
    model = cls().to(device)
    if fitter is not None:
        model.get_submodule(site).register_forward_hook(
            NoiseHook(fitter.to_torch(device=device), _NoiseControl(1.0)))
    return _steps(model, torch.optim.Adam(model.parameters(), lr=1e-3), batch, device)


def make_draws(d, fitter, device, batch=64):
    """The noise's random draws alone, for the 5 steps of :func:`_steps`.

    Every noisy step must draw these numbers (and, for full and low-rank
    noise, multiply them by the factor); their time over the noise-free
    step's is the floor of the step ratio with torch's generator on this
    device.
    """
    module = fitter.to_torch(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    factor = module.factor
    widths = [factor.shape[1] if factor.ndim == 2 else d] + \
        ([d] if module.diag_std is not None else [])

    def draws(k=5):
        for _ in range(k):
            parts = [torch.randn(batch, w, generator=g, device=device) for w in widths]
            if factor.ndim == 2:
                parts[0] @ factor.T  # full and low-rank noise: the product too
        if device.type == "cuda":
            torch.cuda.synchronize()
    return draws


def bench_sites(device, repeats, widths=(3136, 12544)):
    rows = []
    for d in widths:
        fitted, fit_s = fit_site_noise(d)
        error = lowrank_error(fitted["full"], fitted["lowrank"])
        fns = {"none": make_site_step(d, None, device)}
        fns.update({s: make_site_step(d, fitted[s], device) for s in STRUCTURES})
        fns.update({("draws", s): make_draws(d, fitted[s], device) for s in STRUCTURES})
        t = interleaved(fns, repeats=repeats)
        goals = {"full": 1.5, "lowrank": 1.15, "diagonal": 1.05, "isotropic": 1.05}
        for s in ("none",) + STRUCTURES:
            rows.append({
                "width": d, "structure": s, "device": str(device),
                "rank": fitted[s].rank_ if s == "lowrank" else "",
                "seconds_per_step": t[s] / 5, "ratio_to_no_noise": t[s] / t["none"],
                "goal": goals.get(s, ""),
                "draw_floor": (1 + t[("draws", s)] / t["none"]) if s != "none" else 1.0,
                "fit_s": fit_s.get(s, float("nan")),
                "lowrank_rel_frobenius_error": error if s == "lowrank" else float("nan")})
        del fitted, fns
    return rows


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
    site_rows = bench_sites(device, args.repeats, (3136,) if args.quick else (3136, 12544))
    print_table(site_rows, "Training step with noise at a d-wide site (batch 64, Adam), "
                           "auto-lowrank = 99% of the variance")
    write_csv(os.path.join(args.out, "noise_sites.csv"), site_rows)
    return rows, site_rows


if __name__ == "__main__":
    main()
