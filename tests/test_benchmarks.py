"""The benchmark scripts on tiny configurations: they run, write, resume."""

import os
import sys

import pandas as pd
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)

import paper  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    frame = paper.main(["--preset", "tiny", "--out", str(out), "--fresh"])
    return out, frame


def test_writes_csv_with_exact_columns(tiny_run):
    out, frame = tiny_run
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == paper.COLUMNS
    assert set(csv.eval_kind) == {"clean", "adversarial", "naturalistic"}
    assert set(csv.structure) == {"none", "full", "isotropic"}
    # every network is evaluated on every source of its plan, once
    assert not csv.duplicated(["seed", "noise_source", "structure", "eval_source"]).any()
    # noisy networks are attacked with EOT, deterministic ones without
    adv = csv[(csv.eval_kind == "adversarial") & ~csv.eval_source.str.contains("no-EOT")]
    assert (adv[adv.structure != "none"].eot_samples > 1).all()
    assert (adv[adv.structure == "none"].eot_samples == 1).all()
    assert csv.accuracy.between(0, 1).all()


def test_report_states_each_claim(tiny_run):
    out, _ = tiny_run
    report = (out / "report.md").read_text()
    for text in paper.CLAIMS.values():
        assert text in report
    assert report.count("**Verdict:") == 4
    assert "Checks that the robustness is real" in report
    for fig in ["transfer_matrix.png", "accuracy_vs_budget.png", "accuracy_vs_severity.png"]:
        assert (out / fig).stat().st_size > 0


def test_resume_recomputes_nothing(tiny_run, monkeypatch):
    out, _ = tiny_run
    before = (out / "results.csv").read_text()

    def boom(*args, **kwargs):
        raise AssertionError("a complete run must not train again")

    monkeypatch.setattr(paper, "train_clean", boom)
    monkeypatch.setattr(paper, "finetune", boom)
    paper.main(["--preset", "tiny", "--out", str(out)])
    assert (out / "results.csv").read_text() == before


def test_interrupted_run_keeps_rows_and_resumes(tiny_run, tmp_path):
    out, _ = tiny_run
    full = pd.read_csv(out / "results.csv")
    partial = full.iloc[: len(full) // 2]
    partial.to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "cache").mkdir()
    for f in (out / "cache").iterdir():
        (tmp_path / "cache" / f.name).write_bytes(f.read_bytes())
    paper.main(["--preset", "tiny", "--out", str(tmp_path)])
    resumed = pd.read_csv(tmp_path / "results.csv")
    assert len(resumed) == len(full)
    pd.testing.assert_frame_equal(resumed.iloc[: len(partial)], partial)


def test_cli_help(capsys):
    with pytest.raises(SystemExit):
        paper.main(["--help"])
    assert "resumable" in capsys.readouterr().out


def test_perf_covariance_quick(tmp_path):
    import perf_covariance

    rows, mem = perf_covariance.main(["--quick", "--repeats", "1", "--out", str(tmp_path)])
    assert (tmp_path / "covariance.csv").exists()
    assert all(r["speedup_vs_sklearn_lw"] > 0 for r in rows)
    assert mem["peak_over_data"] < 1.0
