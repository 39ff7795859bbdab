"""structnoise.evaluation.__main__: every bad flag is an argparse error before any data loads."""

import pytest

import structnoise.datasets
from structnoise.evaluation.__main__ import main
from structnoise.evaluation.presets import NOISE_SITE_LEVELS
from structnoise.models import PaperCNN


@pytest.fixture
def no_data(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("data was loaded before the flags were checked")

    for name in ("load_mnist", "load_fashion_mnist", "load_digits_images"):
        monkeypatch.setattr(structnoise.datasets, name, refuse)


@pytest.mark.parametrize("argv,message", [
    (["--eps", "garbage"], "argument --eps: expected comma-separated positive budgets"),
    (["--preset", "paper", "--eps", "0.1,-1"], "'-1' is not one"),
    (["--preset", "paper", "--seeds", "0"], "argument --seeds: expected a positive integer"),
    (["--preset", "paper", "--n-test", "x"], "argument --n-test: expected a positive integer"),
    (["--device", "gpu"], "argument --device: expected cpu, cuda or cuda:N"),
    (["--preset", "paper", "--layers", "9"], "PaperCNN's noise sites are L = 1, 2, 3, 4, 5"),
    (["--preset", "paper", "--modifications", "rotat"], "'rotat' is not one"),
    (["--preset", "paper", "--trace-scales", "x"], "positive trace scales or 'none'"),
    (["--n-jobs", "0"], "expected a non-zero integer"),
    (["--seeds", "3"], "the default preset is fixed"),
    (["--preset", "tiny", "--data-dir", "."], "--data-dir is not used by --preset tiny"),
    (["--data-dir", "/nonexistent/fashion"], "is not a directory"),
    (["--out", __file__], "is a file; expected a directory"),
])
def test_bad_flags_are_one_line_errors_before_any_data(no_data, capsys, tmp_path, argv,
                                                       message):
    if "--out" not in argv:
        argv = argv + ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("python -m structnoise.evaluation: error:")


def test_the_noise_sites_the_command_line_knows_are_papercnns():
    assert tuple(sorted(PaperCNN.NOISE_SITES)) == NOISE_SITE_LEVELS


def test_plan_prints_counts_and_an_estimate_and_trains_and_writes_nothing(monkeypatch, capsys,
                                                                          tmp_path):
    from structnoise.evaluation import Experiment

    def refuse(*args, **kwargs):
        raise AssertionError("--plan trained")

    monkeypatch.setattr(Experiment, "run", refuse)
    out = tmp_path / "out"
    prices = main(["--preset", "tiny", "--plan", "--out", str(out)])
    text = capsys.readouterr().out
    assert not out.exists()  # no store, no report: nothing to leave half-written
    phases = prices.phase.tolist()
    assert phases[0] == "base networks" and phases[-1] == "total"
    assert {"retraining", "attacks", "activation pairs"} <= set(phases)
    row = prices.set_index("phase")
    assert row.loc["retraining", "count"] == 7 and row.loc["base networks", "count"] == 1
    assert row.loc["total", "seconds"] == pytest.approx(
        prices[prices.phase != "total"].seconds.sum())
    assert "Estimated" in text and "nothing was trained (--plan)" in text


def test_plan_refuses_bad_flags_like_the_run(no_data, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--preset", "paper", "--plan", "--layers", "9"])
    assert info.value.code == 2 and "PaperCNN's noise sites" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["--preset", "tiny", "--dataset", "fashion-mnist"], "--dataset is not used by --preset tiny"),
    (["--dataset", "fashion-mnist", "--data-dir", "."], "give one of the two"),
])
def test_bad_dataset_flags(no_data, capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv + ["--out", str(tmp_path / "out")])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_dataset_fashion_mnist_reads_the_data_home(monkeypatch, capsys, tmp_path):
    from test_datasets import _fashion_dir

    home = tmp_path / "home"
    (home / "fashion_mnist").mkdir(parents=True)
    _fashion_dir(home / "fashion_mnist")  # present: nothing is downloaded
    monkeypatch.setenv("STRUCTNOISE_DATA", str(home))
    main(["--dataset", "fashion-mnist", "--plan", "--out", str(tmp_path / "out")])
    assert capsys.readouterr().out.startswith("default: FashionMNIST, 6 training")
