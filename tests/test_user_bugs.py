"""Bugs found by running other projects' test suites through structnoise (issue #12).

Each test failed before its fix.
"""

import warnings
from functools import partial

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsCNN, DigitsMLP
from structnoise.sources import FAB, LinfSPSA, MomentumIterative, SpatialTransform


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def fitted_noise():
    return StructuredNoiseFitter(random_state=0).fit(np.random.RandomState(0).randn(200, 128))


# 1. clone keeps a pre-fitted noise the scikit-learn way
def test_frozen_estimator_noise_survives_clone(digits, fitted_noise):
    from sklearn.frozen import FrozenEstimator

    X, y = digits
    net = NoisyNeuralNetClassifier(DigitsMLP, noise=FrozenEstimator(fitted_noise),
                                   noise_layers="body.2", max_epochs=2, lr=0.1,
                                   train_split=None, verbose=0)
    fitted = clone(net).fit(X, y)
    assert fitted.noise_["body.2"] is fitted_noise
    scores = cross_val_score(net, X, y, cv=2)
    assert len(scores) == 2 and np.all((scores >= 0) & (scores <= 1))


def test_plain_fitted_noise_after_clone_says_what_to_do(digits, fitted_noise):
    X, y = digits
    net = NoisyNeuralNetClassifier(DigitsMLP, noise=fitted_noise, noise_layers="body.2",
                                   max_epochs=1, verbose=0, train_split=None)
    with pytest.raises(ValueError, match="FrozenEstimator"):
        clone(net).fit(X, y)


# 2. the early shape check uses skorch's own dataset handling and the fit params
class KeywordMLP(DigitsMLP):
    def forward(self, x, scale=None):
        assert scale is not None, "the fit param must reach forward"
        return super().forward(x * scale)


def test_probe_passes_fit_params(digits, fitted_noise):
    X, y = digits
    net = NoisyNeuralNetClassifier(KeywordMLP, noise=fitted_noise, noise_layers="body.2",
                                   max_epochs=1, verbose=0, train_split=None)
    net.fit(X, y, scale=torch.tensor(1.0))
    assert "body.2" in net.noise_


def test_probe_keeps_skorch_datasets_and_errors(digits, fitted_noise):
    from skorch.dataset import Dataset

    X, y = digits
    net = NoisyNeuralNetClassifier(DigitsMLP, noise=fitted_noise, noise_layers="body.2",
                                   max_epochs=1, verbose=0, train_split=None,
                                   dataset=partial(Dataset, length=len(X)))
    net.fit(X, y)  # the probe no longer slices X to two rows
    bad = NoisyNeuralNetClassifier(DigitsMLP, noise=fitted_noise, noise_layers="body.2",
                                   max_epochs=1, verbose=0, train_split=None)
    with pytest.raises(ValueError) as info:
        bad.fit(X, y[:10])  # skorch's own message about X and y lengths
    assert "does not fit the module" not in str(info.value)


# 3. torch.compile prefixes names with _orig_mod.: the user's names still work
@pytest.mark.slow
def test_compiled_module_keeps_layer_names(digits, fitted_noise):
    X, y = digits
    net = NoisyNeuralNetClassifier(DigitsMLP, noise=fitted_noise, noise_layers="body.2",
                                   compile=True, compile__backend="eager", max_epochs=1,
                                   verbose=0, train_split=None).fit(X, y)
    assert "body.2" in net.noise_
    p1, p2 = net.predict_proba(X[:20]), net.predict_proba(X[:20])
    assert not np.allclose(p1, p2)  # the noise hook runs inside the compiled module


# 4. attacks that assume [0, 1] run there and map back
def _model(n_in=64):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n_in, 10)).eval()


@pytest.mark.parametrize("source", [FAB(n_iter=5, clip_min=-1.0, clip_max=1.0),
                                    SpatialTransform(max_iterations=3, clip_min=-1.0,
                                                     clip_max=1.0)])
def test_unit_range_attacks_respect_other_clip_ranges(source):
    X = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # nothing to repair
        out = source.generate(_model(), X, torch.arange(8) % 10)
    assert float(out.min()) >= -1 and float(out.max()) <= 1
    # negative pixels are not pushed to >= 0
    assert float(out.min()) < -0.5


# 5. no source returns NaN or leaves its range: checked in one place
class _ZeroGrad(torch.nn.Module):
    """Flat logits almost everywhere: zero gradients (momentum L2 divides by them)."""

    def forward(self, x):
        return torch.round(x.flatten(1)[:, :10] * 0.0 + 1.0)


def test_momentum_l2_never_returns_nan():
    X = torch.rand(4, 1, 8, 8)
    with pytest.warns(RuntimeWarning, match="NaN"):
        out = MomentumIterative(eps=0.5, nb_iter=2, ord=2).generate(_ZeroGrad(), X,
                                                                    torch.zeros(4).long())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, X)


def test_every_source_output_is_checked_in_the_base_class():
    from structnoise.sources import ModificationSource

    class Broken(ModificationSource):
        def __init__(self, clip_min=0.0, clip_max=1.0):
            self.clip_min = clip_min
            self.clip_max = clip_max

        def _generate_batch(self, state, X, y, *, index, rows):
            out = X.clone() + 5.0
            out[0] = float("nan")
            return out

    X = torch.rand(3, 1, 8, 8)
    with pytest.warns(RuntimeWarning):
        out = Broken().generate(None, X)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out[0], X[0])


# 6. SPSA does not depend on batching
def test_spsa_independent_of_batch_size():
    model = _model()
    X = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(40) % 10
    kw = dict(eps=0.1, nb_sample=8, max_batch_size=8, random_state=0)
    a = LinfSPSA(batch_size=7, **kw).generate(model, X, y)
    b = LinfSPSA(batch_size=40, **kw).generate(model, X, y)
    assert torch.equal(a, b)


def test_digits_cnn_conv_pool_momentum_l2_finite():
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    X = torch.zeros(4, 1, 8, 8)  # flat images: max-pool gradients vanish
    out = MomentumIterative(eps=0.5, nb_iter=3, ord=2).generate(model, X, torch.zeros(4).long())
    assert torch.isfinite(out).all()
