"""Run every ``benchmarks/perf_*.py`` and write ``results/perf/summary.md``.

Each figure is a ratio to its reference measured in the same run, with the
goal beside it. ``--quick`` runs small sizes (a smoke run, not for goals).
"""

import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_covariance  # noqa: E402
import perf_noise  # noqa: E402
import perf_sources  # noqa: E402
from _common import RESULTS, machine  # noqa: E402


def _verdict(value, goal, higher_is_better):
    ok = value >= goal if higher_is_better else value <= goal
    return "met" if ok else "**not met**"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    extra = ["--quick"] if args.quick else []
    extra += ["--out", args.out]
    cov_rows, mem = perf_covariance.main(extra)
    wrappers, eot, corr = perf_sources.main(extra)
    noise, paper_site = perf_noise.main(extra)

    lines = [f"# Performance summary ({'quick smoke run' if args.quick else 'full run'})", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}.", "",
             "Every figure is a ratio measured side by side in this run (minimum over "
             "repeats, interleaved).", "",
             "## Covariance (issue #3)", "",
             "| n | d | dtype | vs sklearn LedoitWolf | vs sklearn OAS "
             "| ours LW / one X.T @ X (syrk) |",
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
                  f"one syrk: {goal_row['ours_lw_over_syrk']:.2f}x "
                  f"({_verdict(goal_row['ours_lw_over_syrk'], 1.5, False)})."]
    lines += ["", f"Streaming n={mem['n']}, d={mem['d']}: peak traced memory "
              f"{mem['peak_MiB']:.0f} MiB = {mem['peak_over_dxd']:.1f}x the d x d matrix, "
              f"{100 * mem['peak_over_data']:.1f}% of the data streamed.",
              "", "## Sources (issue #4)", "",
              "| attack | ours / raw library (advertorch; ART for AutoPGD, Square) | goal |",
              "|---|---|---|"]
    for r in wrappers:
        lines.append(f"| {r['attack']} | {r['overhead_ratio']:.2f}x | <= 1.05 "
                     f"({_verdict(r['overhead_ratio'], 1.05, False)}) |")
    lines += ["", "EOT cost (LinfPGD): " + ", ".join(
        f"k={r['eot_samples']}: {r['ratio_to_k1']:.1f}x" for r in eot) + " of k=1.", "",
        "| corruption | ours img/s | reference img/s | speedup (goal >= 10) |",
        "|---|---|---|---|"]
    for r in corr:
        ref = "n/a" if r["reference_img_per_s"] != r["reference_img_per_s"] else \
            f"{r['reference_img_per_s']:.0f}"
        sp = "n/a (no reference)" if ref == "n/a" else \
            f"{r['speedup']:.1f}x ({_verdict(r['speedup'], 10, True)})"
        lines.append(f"| {r['corruption']} | {r['ours_img_per_s']:.0f} | {ref} | {sp} |")
    lines += ["", "## Noise overhead per training step (issue #5)", "",
              "| structure | step / noise-free step | goal |", "|---|---|---|"]
    for r in noise:
        if r["structure"] == "none":
            continue
        goal = 1.25 if r["structure"] == "full" else 1.10
        lines.append(f"| {r['structure']} (d={r['width']}, {r['device']}) | "
                     f"{r['ratio_to_no_noise']:.2f}x | <= {goal} "
                     f"({_verdict(r['ratio_to_no_noise'], goal, False)}) |")
    lines += ["", "## Noise at the paper's site (issue #10)", "",
              "PaperCNN, noise at body.tanh2 (16x14x14 = 3136), trace_scale=2, batch 64, Adam.",
              "", "| structure | step / noise-free step |", "|---|---|"]
    for r in paper_site:
        if r["structure"] != "none":
            lines.append(f"| {r['structure']} ({r['device']}) | "
                         f"{r['ratio_to_no_noise']:.2f}x |")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "summary.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
