"""The benchmark scripts on tiny configurations: they run, write, resume."""

import os
import sys

import pandas as pd
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)

import paper  # noqa: E402

# tiny runs of the benchmark scripts, and a subprocess: the slow suite
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    frame = paper.main(["--preset", "tiny", "--out", str(out), "--fresh"])
    return out, frame


def test_main_job_writes_tidy_rows_from_the_library(tiny_run):
    from structnoise.evaluation import COLUMNS

    out, frame = tiny_run
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == COLUMNS
    assert set(csv.eval_protocol) == {"paper", "eot"}
    assert set(csv.structure) == {"none", "full", "diagonal", "isotropic"}
    assert len(csv) == len(frame) and csv.accuracy.between(0, 1).all()


def test_report_has_every_claim_per_protocol_and_the_checks(tiny_run):
    from structnoise.evaluation.report import CLAIMS

    out, _ = tiny_run
    report = (out / "report.md").read_text()
    for text in CLAIMS.values():
        assert text in report
    for k in (1, 2, 3):
        section = report.split(f"## Claim {k}:")[1].split("## Claim")[0]
        assert "**paper protocol:" in section and "**eot protocol:" in section
    assert ("| evaluation | Full | Diagonal | Identity | None | full - none | full - identity "
            "| paper (FashionMNIST) |") in report
    assert "## Adequacy: did the networks learn their task?" in report
    assert "## Reductions from the paper's protocol" in report
    checks = pd.read_csv(out / "checks.csv")
    lines = [line for line in report.splitlines() if line.startswith(("- PASS", "- **FLAG"))]
    assert len(lines) == len(checks) > 0
    for fig in ["accuracy_vs_eps.png", "transfer_heatmap.png", "accuracy_vs_strength.png",
                "paired_differences.png"]:
        assert (out / fig).stat().st_size > 0


def test_report_numbers_are_the_means_of_the_rows(tiny_run):
    # the claim-1 table's cells, recomputed by hand from results.csv
    out, _ = tiny_run
    rows = pd.read_csv(out / "results.csv")
    report = (out / "report.md").read_text()
    # claim 1's table under the paper protocol (each claim has one per protocol)
    claim1 = report.split("## Claim 1:")[1].split("## Claim 2:")[0]
    table = claim1.split("**paper protocol:")[1].split(
        "| evaluation | Full | Diagonal | Identity | None |")[1]
    fgsm = next(line for line in table.splitlines() if line.startswith("| FGSM eps 0.1"))
    cells = [c.strip() for c in fgsm.strip("|").split("|")]
    sel = rows[(rows.eval_protocol == "paper") & (rows.eval_family == "FGSM")
               & (rows.eval_strength == 0.1)]
    none = sel[sel.structure == "none"].accuracy.mean()
    full = sel[(sel.structure == "full") & (sel.noise_family == "FGSM")
               & (sel.noise_strength == 0.1) & (sel.trace_scale == 2.0)].accuracy.mean()
    assert cells[1].split(" ")[0] == f"{full:.2f}"
    assert cells[4].split(" ")[0] == f"{none:.2f}"


def test_rerun_of_a_complete_run_trains_nothing(tiny_run, monkeypatch):
    from structnoise.evaluation import experiment

    out, _ = tiny_run
    before = (out / "results.csv").read_text()

    def boom(*args, **kwargs):
        raise AssertionError("a complete run must not train again")

    monkeypatch.setattr(experiment, "_train_base", boom)
    monkeypatch.setattr(experiment, "_run_group", boom)
    paper.main(["--preset", "tiny", "--out", str(out)])
    assert (out / "results.csv").read_text() == before


def test_cli_help_and_module_entry_point(capsys):
    with pytest.raises(SystemExit):
        paper.main(["--help"])
    text = capsys.readouterr().out
    assert "Resumable" in text and "--preset" in text and "--data-dir" in text
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "structnoise.evaluation", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--preset" in proc.stdout


def test_perf_covariance_quick(tmp_path):
    import perf_covariance

    rows, mem = perf_covariance.main(["--quick", "--repeats", "1", "--out", str(tmp_path)])
    assert (tmp_path / "covariance.csv").exists()
    assert all(r["speedup_vs_sklearn_lw"] > 0 for r in rows)
    assert mem["peak_over_data"] < 1.0


def test_benchmarks_pin_the_allocator_and_say_so(monkeypatch):
    # runs agree only under one allocator behaviour: the machine line says which
    import _common

    assert _common.MALLOC in _common.machine()
    assert "pinned" in _common.MALLOC or "glibc" not in _common.MALLOC
    monkeypatch.setenv("STRUCTNOISE_BENCH_MALLOC", "default")
    assert _common.pin_malloc() == "glibc malloc, default thresholds"


def test_interleaved_rotates_the_order_and_times_with_the_collector_off():
    # what each timed call sees, not how long it takes
    import gc

    import _common

    calls, collector = [], []

    def side(name):
        def fn():
            calls.append(name)
            collector.append(gc.isenabled())
        return fn

    t = _common.interleaved({"a": side("a"), "b": side("b"), "c": side("c")},
                            repeats=3, warmup=1)
    assert set(t) == {"a", "b", "c"} and all(v >= 0 for v in t.values())
    # warm-up once each, then rounds abc, bca, cab: every side leads one round
    assert calls == ["a", "b", "c"] + ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert collector[3:] == [False] * 9 and gc.isenabled()


def test_perf_engine_quick_measures_both_engines(tmp_path):
    import perf_engine
    from run_perf import engine_lines

    train, seeds, whole = perf_engine.main(["--quick", "--out", str(tmp_path)])
    assert [r["networks"] for r in train] == [1, 2, 4]
    assert all(r["sequential_s"] > 0 and r["stacked_s"] > 0 for r in train)
    assert [r["way"] for r in seeds] == ["a stack per seed", "one stack",
                                         "one stack / a stack per seed"]
    assert all(r["networks"] == 22 and r["images"] == 128 and r["seconds"] > 0 for r in seeds)
    assert [r["engine"] for r in whole] == ["sequential", "stacked", "stacked / sequential"]
    assert (tmp_path / "engine_retraining.csv").exists()
    assert (tmp_path / "engine_seeds.csv").exists()
    text = "\n".join(engine_lines(train, whole, seeds))
    assert "## Experiment engine" in text and "one stack over a stack per seed" in text


def test_grouped_convolutions_backward_counts_as_its_groups_one_by_one():
    """The counter's backward of a grouped convolution (the stacked step's) equals the
    sum of its groups' own convolutions, counted by torch's formula (no groups)."""
    import perf_rate
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def count(counter, x, w, groups):
        with counter:
            torch.nn.functional.conv2d(x, w, groups=groups).sum().backward()
        return counter.get_total_flops()

    g = torch.Generator().manual_seed(0)
    n, c = 3, 4
    x = torch.randn(5, n * c, 9, 9, generator=g)
    w = torch.randn(n * c, c, 3, 3, generator=g, requires_grad=True)
    grouped = count(perf_rate._counter(), x, w, n)
    separate = sum(count(FlopCounterMode(display=False), x[:, k * c:(k + 1) * c],
                         w[k * c:(k + 1) * c].detach().requires_grad_(), 1) for k in range(n))
    assert grouped == separate
    # ungrouped, with both gradients asked for, it is torch's own count
    x1 = x[:, :c].clone().requires_grad_()
    assert count(perf_rate._counter(), x1, w, 1) == count(FlopCounterMode(display=False), x1, w,
                                                          1)


def test_perf_rate_quick_counts_the_stacked_step_and_the_machine(tmp_path):
    import perf_rate

    row = perf_rate.main(["--quick", "--out", str(tmp_path)])
    assert row["networks"] == 11
    # the step's arithmetic is its convolutions, linear layers and full-noise draws:
    # at least the four full draws' triangular products (64 rows, d = 3136)
    assert row["step_gflop"] > 4 * 64 * 3136 * 3136 / 1e9
    assert row["step_ms"] > 0 and row["matmul_gflop_per_s"] > 0 and row["normals_ms"] > 0
    assert row["step_over_matmul"] == pytest.approx(
        row["step_gflop_per_s"] / row["matmul_gflop_per_s"])
    assert (tmp_path / "retraining_rate.csv").exists()
    assert "## The retraining's arithmetic rate" in "\n".join(perf_rate.rate_lines(row))


@pytest.mark.parametrize("dataset", ["MNIST", "FashionMNIST"])
def test_every_condition_of_the_main_job_has_its_reference(dataset):
    """The adequacy references are keyed by the main job's own condition keys."""
    from structnoise.evaluation import describe_source
    from structnoise.evaluation.paired import condition_key
    from structnoise.evaluation.presets import ADEQUACY_REFERENCES, get_preset

    exp = get_preset("default").experiments["L2"]
    references = ADEQUACY_REFERENCES[dataset]
    expected = {condition_key("none", "none", None)}
    for kind, scales in exp.trace_scales.items():
        expected |= {condition_key("isotropic", "any", t) for t in scales}
        for source in exp.noise_sources:
            if source.kind == kind:
                label = describe_source(source)["label"]
                expected |= {condition_key(s, label, t) for s in ("full", "diagonal")
                             for t in scales}
    # the adequacy preset trains the main job's conditions and two more sources
    assert expected <= set(references)
    assert len(set(references) - expected) == 4
    assert all(0.5 < v <= 1.0 for v in references.values())


@pytest.mark.slow
def test_plan_benchmark_holds_the_estimate_against_a_measured_tiny_run(tmp_path):
    import perf_plan

    rows = perf_plan.main(["--out", str(tmp_path)])
    tiny = {r["what"]: r for r in rows if r["preset"] == "tiny"}
    assert set(tiny) == {"whole run", "retraining", "attacks"}
    assert all(r["estimate_s"] > 0 and r["measured_s"] > 0 for r in tiny.values())
    assert any(r["preset"] == "default" for r in rows)  # the committed main-job runs
    assert (tmp_path / "plan_estimate.csv").exists()
