"""structnoise.evaluation.progress: a line per finished step on stderr, none with verbose=0."""

import re

from evaluation_helpers import make_experiment

from structnoise.evaluation.progress import ProgressLog

LINE = re.compile(r"^\[ *\d+\.\d s\] ")


def test_lines_carry_the_elapsed_time_first():
    log = ProgressLog(start=100.0)
    assert log.line("seed 0: retrained 11 networks (6 epochs)", now=112.34) == \
        "[  12.3 s] seed 0: retrained 11 networks (6 epochs)"


def test_an_experiment_writes_its_steps_to_stderr_only(digits_data, capsys):
    exp = make_experiment(structures=("none", "full"), noise_epochs=3, verbose=1)
    exp.run(*digits_data)
    out, err = capsys.readouterr()
    assert not out  # stdout holds the caller's results table, never progress
    lines = [line for line in err.splitlines() if LINE.match(line)]
    text = "\n".join(lines)
    assert "seed 0: base network trained" in text
    assert "networks planned over 1 seed(s)" in text
    evaluated = [line for line in lines if "evaluated" in line]
    assert len(evaluated) == len(exp.plan_)  # one line per network's evaluation
    if exp.engine_ == "stacked":
        epochs = [line for line in lines if ": epoch " in line]
        assert len(epochs) == 3 and "left" in epochs[0] and "left" not in epochs[-1]
    else:
        assert sum("retrained" in line for line in lines) == len(exp.plan_)


def test_verbose_0_is_silent(digits_data, capsys):
    make_experiment(structures=("none",), verbose=0).run(*digits_data)
    out, err = capsys.readouterr()
    assert not out and not any(LINE.match(line) for line in err.splitlines())


def test_the_stacked_engine_writes_each_epoch_with_the_time_left(capsys):
    import torch

    from structnoise import NoisyNeuralNetClassifier
    from structnoise.evaluation import Experiment
    from structnoise.evaluation.presets import _digits28
    from structnoise.models import PaperCNN
    from structnoise.sources import GaussianNoise

    net = NoisyNeuralNetClassifier(PaperCNN, optimizer=torch.optim.Adam, lr=1e-3, batch_size=64,
                                   train_split=None, noise_ensemble=2, verbose=0)
    exp = Experiment(net, "body.tanh2", [GaussianNoise(0.3)], [GaussianNoise(0.3)],
                     structures=("none", "isotropic"), protocols=("paper",), seeds=(0,),
                     base_epochs=1, noise_epochs=3, engine="stacked", verbose=1)
    exp.run(*_digits28(200, 20)())
    err = capsys.readouterr().err
    epochs = [line for line in err.splitlines() if LINE.match(line) and ": epoch " in line]
    assert [line.split("epoch ")[1][:3] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert "s left" in epochs[0] and "left" not in epochs[-1]
    assert "seed 0: retrained 2 networks (3 epoch(s))" in err
