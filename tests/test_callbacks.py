"""LearnNoise: the noise phase starts when its ``at`` says, through skorch's callbacks."""

import pytest
from skorch.callbacks import Callback

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.callbacks import LearnNoise
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.sources import GaussianNoise


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:240], y[:240]


class _Started(Callback):
    """Records, at each epoch end, whether the noise phase had started."""

    def initialize(self):
        self.started = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.started.append(net.noise_phase_started_)


def _net(**kw):
    return NoisyNeuralNetClassifier(
        DigitsMLP, noise=StructuredNoiseFitter(random_state=0),
        noise_source=GaussianNoise(0.2, random_state=0), noise_layers="body.2",
        max_epochs=3, lr=0.1, train_split=None, verbose=0, **kw)


def test_the_net_adds_one_learn_noise_by_default(digits):
    net = _net().initialize()
    learners = [name for name, cb in net.callbacks_ if isinstance(cb, LearnNoise)]
    assert learners == ["learn_noise"]


@pytest.mark.parametrize("at,expected", [(0, [True] * 3), (1, [True] * 3),
                                         (2, [False, True, True]), (5, [False] * 3)])
def test_phase_starts_after_at_epochs(digits, at, expected):
    recorder = _Started()
    net = _net(callbacks=[("started", recorder)], callbacks__learn_noise__at=at)
    net.fit(*digits)
    assert recorder.started == expected
    # a warm-up longer than training still ends with the noise (post hoc)
    assert net.noise_phase_started_ and set(net.noise_) == {"body.2"}


def test_at_none_follows_noise_warmup_epochs(digits):
    recorder = _Started()
    _net(callbacks=[("started", recorder)], noise_warmup_epochs=2).fit(*digits)
    assert recorder.started == [False, True, True]


def test_disabled_callbacks_run_the_same_code(digits):
    net = _net(callbacks="disable", noise_warmup_epochs=0).fit(*digits)
    assert net.noise_phase_started_ and net.noise_["body.2"].n_samples_seen_ == 240


def test_bad_at_is_refused_before_training(digits):
    with pytest.raises(ValueError, match="at=...\\) must be an integer >= 0"):
        _net(callbacks__learn_noise__at=-1).fit(*digits)
