"""How good is ``--plan``'s estimate? It against measured times, same machine.

The tiny preset is estimated, then run, in this process: estimate / measured
for the whole run and for its retraining and attacks (from the rows' own
seconds). The main job is estimated here and held against the committed
measurements of it (``benchmarks/measured/``), whose notes say how they
differ from this run: machine load, and the attacks the preset had then.

Usage: ``python benchmarks/perf_plan.py [--skip-tiny] [--out DIR]``.
"""

import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, print_table, write_csv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
#: committed runs of the main job: (folder, how that run differs from this estimate)
MEASURED_MAIN_JOB = [
    ("measured/2026-12-04-cpu-main-job-levers/after",
     "fresh clone's tox -e bench of the same configuration, same code, the cores quiet"),
    ("measured/2026-12-04-cpu-main-job-cost/quiet",
     "fresh clone's tox -e bench, the cores quiet, before each draw was cut after the "
     "noisy layer (slower attacks under EOT)"),
    ("measured/2026-12-04-cpu-worst-case/main-job",
     "same configuration; the 2 cores were shared with test runs (slower)"),
    ("measured/2026-12-03-cpu/main-job",
     "fresh clone's tox -e bench before APGD-DLR joined the attacks (the estimate has them)"),
]


def _estimate(preset):
    from structnoise.evaluation.__main__ import _price

    data = preset.load_data()
    t0 = time.perf_counter()
    prices = _price(preset, *data)
    return data, prices, time.perf_counter() - t0


def _phase(prices, phase):
    return float(prices.loc[prices.phase == phase, "seconds"].sum())


def tiny():
    """Estimate the tiny preset, run it, compare (rows for the table)."""
    from structnoise.evaluation import time_table
    from structnoise.evaluation.presets import get_preset

    preset = get_preset("tiny")
    data, prices, plan_seconds = _estimate(preset)
    exp = preset.experiments["L2"]
    with tempfile.TemporaryDirectory() as store:
        exp.set_params(store=store, verbose=0)
        t0 = time.perf_counter()
        rows = exp.run(*data)
        measured = time.perf_counter() - t0
    times = time_table(rows)
    retraining = float(times.loc[times.phase == "retraining", "seconds"].sum())
    attacks = float(times.loc[times.protocol != "all", "seconds"].sum())
    out = []
    for what, est, got in (("whole run", _phase(prices, "total"), measured),
                           ("retraining", _phase(prices, "retraining"), retraining),
                           ("attacks", _phase(prices, "attacks"), attacks)):
        out.append({"preset": "tiny", "what": what, "estimate_s": est, "measured_s": got,
                    "estimate_over_measured": est / got if got else float("nan"),
                    "note": f"measured in this run; --plan took {plan_seconds:.1f} s"})
    return out


def main_job():
    """Estimate the main job; hold it against its committed measurements."""
    from structnoise.evaluation.presets import get_preset

    _, prices, plan_seconds = _estimate(get_preset("default"))
    out = []
    for folder, note in MEASURED_MAIN_JOB:
        report = os.path.join(HERE, folder, "report.md")
        if not os.path.exists(report):
            continue
        with open(report) as fh:
            found = re.search(r"rows, (\d+) s for the part computed in this run", fh.read())
        if not found:
            continue
        got = float(found.group(1))
        est = _phase(prices, "total")
        out.append({"preset": "default", "what": f"whole run vs {folder.split('/')[1]}",
                    "estimate_s": est, "measured_s": got, "estimate_over_measured": est / got,
                    "note": f"{note}; --plan took {plan_seconds:.1f} s"})
    return out


def main(argv=None):
    """Run the comparison; returns its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tiny", action="store_true", help="only the main job")
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    rows = ([] if args.skip_tiny else tiny()) + main_job()
    print_table(rows, "--plan's estimate against measured times (same machine)")
    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "plan_estimate.csv"), rows)
    return rows


if __name__ == "__main__":
    main()
