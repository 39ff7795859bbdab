"""Run every ``benchmarks/perf_*.py``; write ``results/perf/summary.md`` and ``cost.png``.

Each figure is a ratio to its reference measured in the same run, with the
goal beside it. ``--quick`` runs small sizes (a smoke run, not for goals).
"""

import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_covariance  # noqa: E402
import perf_engine  # noqa: E402
import perf_noise  # noqa: E402
import perf_rate  # noqa: E402
import perf_sources  # noqa: E402
from _common import RESULTS, machine  # noqa: E402


def _verdict(value, goal, higher_is_better):
    if value != value:  # NaN: nothing measured
        return "n/a"
    ok = value >= goal if higher_is_better else value <= goal
    return "met" if ok else "**not met**"


def engine_lines(train, whole, seeds=()):
    """The experiment engine's section: stacked against sequential, same run (issue #21)."""
    lines = ["", "## Experiment engine (issue #21)", "",
             "PaperCNN, noise at body.tanh2 (d=3136), digits at 28x28, batch 64, Adam. "
             "Retraining: N networks of one seed (structures cycling full, diagonal, "
             "isotropic, none), one epoch; sequential trains one skorch net at a time, "
             "stacked trains them together on their frozen front, computed once. "
             "Each side is timed in alternation with the other after one untimed call, "
             "and keeps its best time. Goal: stacked >= 1.5x sequential.", "",
             "| networks stacked | sequential nets/min | stacked nets/min | stacked / sequential "
             "| goal |", "|---|---|---|---|---|"]
    for r in train:
        lines.append(f"| {r['networks']} | {r['sequential_nets_per_min']:.1f} | "
                     f"{r['stacked_nets_per_min']:.1f} | {r['stacked_over_sequential']:.2f}x | "
                     f">= 1.5 ({_verdict(r['stacked_over_sequential'], 1.5, True)}) |")
    if seeds:
        lines += ["", "The seeds' networks (11 a seed, the main job's mix: 4 full, 4 diagonal, "
                  "2 isotropic, 1 without noise), one epoch: a stack per seed, or one stack of "
                  "all (each network on its own seed's front and order; issue #31):", "",
                  "| way | networks | images | seconds | nets/min |", "|---|---|---|---|---|"]
        for r in seeds[:-1]:
            lines.append(f"| {r['way']} | {r['networks']} | {r['images']} | "
                         f"{r['seconds']:.2f} | {r['nets_per_min']:.1f} |")
        lines.append(f"| one stack over a stack per seed | | | | "
                     f"{seeds[-1]['nets_per_min']:.2f}x |")
    lines += ["", "A whole experiment (activation pairs, retraining, evaluation on clean "
              "images, a modification and FGSM under both protocols), each engine:", "",
              "| engine | seconds | networks | nets/min | attack evaluations/min |",
              "|---|---|---|---|---|"]
    for r in whole:
        lines.append(f"| {r['engine']} | {r['seconds']:.2f} | {r['networks']} | "
                     f"{r['nets_per_min']:.2f} | {r['attack_evaluations_per_min']:.2f} |")
    return lines


def summary_lines(cov_rows, mem, wrappers, eot, corr, noise, sites, quick=False):
    """The summary's markdown: every ratio with its goal and verdict."""
    lines = [f"# Performance summary ({'quick smoke run' if quick else 'full run'})", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}.", "",
             "Every figure is a ratio measured side by side in this run (minimum over "
             "repeats, interleaved; the covariance sides pause 0.2 s before each timed "
             "call, see `_common.interleaved`). `cost.png` plots cost against size.", "",
             "## Covariance (issues #3, #13)", "",
             "| n | d | dtype | ours vs sklearn LedoitWolf | ours vs sklearn OAS "
             "| ours LW / one X.T @ X |",
             "|---|---|---|---|---|---|"]
    for r in cov_rows:
        lines.append(f"| {r['n']} | {r['d']} | {r['dtype']} | {r['speedup_vs_sklearn_lw']:.2f}x "
                     f"faster | {r['speedup_vs_sklearn_oas']:.2f}x | "
                     f"{r['ours_lw_over_syrk']:.2f}x |")
    goal_row = next((r for r in cov_rows if (r["n"], r["d"], r["dtype"]) ==
                     (20000, 2048, "float64")), None)
    if goal_row:
        lines += ["", f"Goal at n=20000, d=2048, float64: >= 5x faster than LedoitWolf: "
                  f"{goal_row['speedup_vs_sklearn_lw']:.2f}x "
                  f"({_verdict(goal_row['speedup_vs_sklearn_lw'], 5, True)}); within 1.5x of "
                  f"one X.T @ X: {goal_row['ours_lw_over_syrk']:.2f}x "
                  f"({_verdict(goal_row['ours_lw_over_syrk'], 1.5, False)})."]
    lines += ["", f"Streaming n={mem['n']}, d={mem['d']}: peak traced memory "
              f"{mem['peak_MiB']:.0f} MiB = {mem['peak_over_dxd']:.1f}x the d x d matrix, "
              f"{100 * mem['peak_over_data']:.1f}% of the data streamed.",
              "", "## Fixed overhead of the attack wrappers (issues #4, #13)", "",
              "Ours with `batch_size=n` (one batch, as the raw call) against the raw library "
              "(advertorch; ART for AutoPGD and Square) on the same model, images, labels "
              "and seed; the last column is ours at the default `batch_size=256`.", "",
              "| attack | model, images | ours / raw | goal | ours at default batching / raw |",
              "|---|---|---|---|---|"]
    for r in wrappers:
        default = r["ours_default_batching_s"]
        shown = "" if default != default else f"{default / r['reference_s']:.2f}x"
        lines.append(f"| {r['attack']} | {r['model']}, {r['n_images']} | "
                     f"{r['overhead_ratio']:.2f}x | <= 1.05 "
                     f"({_verdict(r['overhead_ratio'], 1.05, False)}) | {shown} |")
    lines += ["", "## EOT cost at the paper's site (issue #13)", "",
              f"LinfPGD, 5 iterations, {eot[0]['n_images']} images, PaperCNN with noise at "
              "body.tanh2 (d=3136); time of k draws per gradient / time of one. Goal: <= k.",
              "", "| structure | " + " | ".join(f"k={r['eot_samples']}" for r in eot
                                                 if r["structure"] == eot[0]["structure"]) + " |",
              "|---|" + "---|" * sum(r["structure"] == eot[0]["structure"] for r in eot)]
    for structure in dict.fromkeys(r["structure"] for r in eot):
        cells = [f"{r['ratio_to_k1']:.2f}x ({_verdict(r['ratio_to_k1'], r['eot_samples'], False)})"
                 for r in eot if r["structure"] == structure]
        lines.append(f"| {structure} | " + " | ".join(cells) + " |")
    lines += ["", "## Corruptions (issues #4, #13)", "",
              "Severity 3, 1000 32x32 colour images (the reference, `imagecorruptions`, "
              "per image on 100). The first row changes nothing: it is what every "
              "corruption pays here besides its own work (input checks, the output, "
              "its check). For the noise corruptions, the bound is the speedup if "
              "nothing but their random draws cost (our fastest samplers, "
              "`structnoise._sampling`: one number per pixel), timed in the same run.", "",
              "| corruption | ours img/s | reference img/s | speedup | goal "
              "| bound (draws alone) |", "|---|---|---|---|---|---|"]
    for r in corr:
        ref = r["reference_img_per_s"]
        bound = r.get("bound_by_draws", float("nan"))
        bound = "" if bound != bound else f"{bound:.1f}x"
        if ref != ref:
            lines.append(f"| {r['corruption']} | {r['ours_img_per_s']:.0f} | n/a | "
                         "n/a (no reference) | | |")
        else:
            lines.append(f"| {r['corruption']} | {r['ours_img_per_s']:.0f} | {ref:.0f} | "
                         f"{r['speedup']:.1f}x | >= 10 ({_verdict(r['speedup'], 10, True)}) | "
                         f"{bound} |")
    lines += ["", "## Noise overhead per training step (issue #5)", "",
              "| structure | step / noise-free step | goal |", "|---|---|---|"]
    for r in noise:
        if r["structure"] == "none":
            continue
        goal = 1.25 if r["structure"] == "full" else 1.10
        lines.append(f"| {r['structure']} (d={r['width']}, {r['device']}) | "
                     f"{r['ratio_to_no_noise']:.2f}x | <= {goal} "
                     f"({_verdict(r['ratio_to_no_noise'], goal, False)}) |")
    lines += ["", "## Noise at wide sites (issues #10, #13)", "",
              "Batch 64, Adam; trace-scaled (t = 2) noise fitted on synthetic deltas with a "
              "power-law spectrum; lowrank keeps 99% of the variance (rank chosen by the "
              "fitter). Fit time is the fitter's `fit` on 2000 deltas. The floor is "
              "the step ratio if the noise cost nothing but its random draws (torch's "
              "generator; for full and low-rank noise, also the product with the "
              "factor), "
              "timed in the same run: no implementation with this generator on this "
              "device gets below it.", "",
              "| d | structure | rank | step / noise-free step | goal | floor (draws alone) "
              "| fit s | low-rank rel. Frobenius error |", "|---|---|---|---|---|---|---|---|"]
    for r in sites:
        if r["structure"] == "none":
            continue
        err = r["lowrank_rel_frobenius_error"]
        floor = r.get("draw_floor", float("nan"))
        lines.append(f"| {r['width']} | {r['structure']} ({r['device']}) | {r['rank']} | "
                     f"{r['ratio_to_no_noise']:.2f}x | <= {r['goal']} "
                     f"({_verdict(r['ratio_to_no_noise'], r['goal'], False)}) | "
                     f"{'' if floor != floor else f'{floor:.2f}x'} | "
                     f"{r['fit_s']:.2f} | {'' if err != err else f'{err:.2e}'} |")
    return lines


def plot_costs(cov_rows, eot, sites, path):
    """One figure, three panels: cost against the size of the work."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for dtype, marker in (("float64", "o"), ("float32", "s")):
        rows = [r for r in cov_rows if r["dtype"] == dtype]
        work = [r["n"] * r["d"] ** 2 for r in rows]
        for key, label in (("ours_lw_s", "ours LW"), ("sklearn_lw_s", "sklearn LW"),
                           ("syrk_s", "one syrk")):
            ax.loglog(work, [r[key] for r in rows], marker=marker, label=f"{label} {dtype}")
    ax.set(xlabel="n * d^2", ylabel="seconds", title="Covariance: cost vs n and d")
    ax.legend(fontsize=7)
    ax = axes[1]
    ks = sorted({r["eot_samples"] for r in eot})
    for structure in dict.fromkeys(r["structure"] for r in eot):
        ax.plot(ks, [r["ratio_to_k1"] for r in eot if r["structure"] == structure], "o-",
                label=structure)
    ax.plot(ks, ks, "k--", label="k (goal)")
    ax.set(xscale="log", yscale="log", xlabel="EOT draws k", ylabel="time / time at k=1",
           title="EOT at the paper's site (d=3136)")
    ax.legend(fontsize=8)
    ax = axes[2]
    widths = sorted({r["width"] for r in sites})
    for structure in dict.fromkeys(r["structure"] for r in sites if r["structure"] != "none"):
        ax.plot(widths, [next(r["ratio_to_no_noise"] for r in sites
                              if r["width"] == w and r["structure"] == structure)
                         for w in widths], "o-", label=structure)
    for goal in (1.5, 1.15, 1.05):
        ax.axhline(goal, color="grey", lw=0.6, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="noise width d",
           ylabel="step / noise-free step", title="Training step with noise")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    extra = ["--quick"] if args.quick else []
    extra += ["--out", args.out]
    cov_rows, mem = perf_covariance.main(extra)
    wrappers, eot, corr = perf_sources.main(extra)
    noise, sites = perf_noise.main(extra)
    train, seeds, whole = perf_engine.main(extra)
    step_rate = perf_rate.main(extra)
    lines = summary_lines(cov_rows, mem, wrappers, eot, corr, noise, sites, quick=args.quick)
    lines += engine_lines(train, whole, seeds)
    lines += perf_rate.rate_lines(step_rate)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "summary.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    plot_costs(cov_rows, eot, sites, os.path.join(args.out, "cost.png"))
    print(f"\nwrote {path} and cost.png")


if __name__ == "__main__":
    main()
