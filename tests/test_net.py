"""NoisyNeuralNetClassifier: training flow, hooks, skorch features, bad input."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import EpochScoring

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsCNN, DigitsMLP
from structnoise.sources import FGSM, GaussianNoise


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:400], y[:400]


def make_net(**kw):
    params = dict(noise=StructuredNoiseFitter(random_state=0), noise_source=FGSM(eps=0.1),
                  noise_layers="body.2", max_epochs=4, lr=0.1, batch_size=64, verbose=0,
                  train_split=None)
    params.update(kw)
    return NoisyNeuralNetClassifier(DigitsMLP, **params)


def test_fit_learns_noise_then_trains_with_it(digits):
    X, y = digits
    torch.manual_seed(0)
    net = make_net().fit(X, y)
    assert set(net.noise_) == {"body.2"}
    fitter = net.noise_["body.2"]
    assert fitter.n_features_in_ == 128 and fitter.n_samples_seen_ == len(X)
    assert len(net.history) == 4
    assert len(net.module_.body[2]._forward_hooks) == 1
    # noise is on: predictions vary between calls; off: they repeat
    p1, p2 = net.predict_proba(X), net.predict_proba(X)
    assert not np.allclose(p1, p2)
    with net.noise_disabled():
        np.testing.assert_allclose(net.predict_proba(X), net.predict_proba(X))


def test_noise_fitted_on_training_split_only(digits):
    X, y = digits
    torch.manual_seed(0)
    net = make_net(train_split=__import__("skorch").dataset.ValidSplit(4, stratified=True))
    net.fit(X, y)
    assert net.noise_["body.2"].n_samples_seen_ == 300  # 3/4 of 400


def test_noise_scale_and_mode_after_fit(digits):
    X, y = digits
    torch.manual_seed(0)
    net = make_net().fit(X, y)
    net.set_params(noise_scale=0.0)
    np.testing.assert_allclose(net.predict_proba(X), net.predict_proba(X))
    net.set_params(noise_scale=2.0, noise_mode="train")
    np.testing.assert_allclose(net.predict_proba(X), net.predict_proba(X))
    net.set_params(noise_mode="eval")
    assert not np.allclose(net.predict_proba(X), net.predict_proba(X))
    net.noise_mode = "train"  # plain assignment takes effect at the next inference
    np.testing.assert_allclose(net.predict_proba(X), net.predict_proba(X))


def test_isotropic_via_routed_params(digits):
    X, y = digits
    torch.manual_seed(0)
    full = make_net().fit(X, y).noise_["body.2"]
    torch.manual_seed(0)
    iso = make_net(noise__structure="isotropic").fit(X, y).noise_["body.2"]
    assert iso.structure == "isotropic"
    assert np.trace(iso.covariance_) == pytest.approx(np.trace(full.covariance_), rel=1e-5)
    assert "noise__structure" in make_net(noise__structure="isotropic").get_params()


def test_prefitted_noise_used_as_is(digits):
    X, y = digits
    fitter = StructuredNoiseFitter(random_state=0).fit(np.random.RandomState(0).randn(50, 128))
    net = NoisyNeuralNetClassifier(DigitsMLP, noise=fitter, noise_layers="body.2", max_epochs=1,
                                   verbose=0, train_split=None).fit(X, y)
    assert net.noise_["body.2"] is fitter


def test_dict_noise_and_several_layers(digits):
    X, y = digits
    net = NoisyNeuralNetClassifier(
        DigitsCNN, noise={"body.1": StructuredNoiseFitter(structure="diagonal"),
                          "body.7": StructuredNoiseFitter()},
        noise_source=GaussianNoise(0.2, random_state=0), max_epochs=2, verbose=0,
        train_split=None).fit(X, y)
    assert net.noise_["body.1"].n_features_in_ == 1024
    assert net.noise_["body.7"].n_features_in_ == 64


def test_plain_network_without_noise(digits):
    X, y = digits
    torch.manual_seed(0)
    net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=10, lr=0.1, batch_size=32,
                                   verbose=0, train_split=None).fit(X, y)
    assert not getattr(net, "noise_", {})
    assert (net.predict(X) == y).mean() > 0.5


def test_pickle_clone_and_reproducibility(digits, tmp_path):
    X, y = digits
    torch.manual_seed(0)
    net = make_net().fit(X, y)
    loaded = pickle.loads(pickle.dumps(net))
    assert len(loaded.module_.body[2]._forward_hooks) == 1
    loaded.set_params(noise_scale=0.0)
    with net.noise_disabled():
        np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-5)
    # same seed: the same stochastic predictions
    a = pickle.loads(pickle.dumps(net)).predict_proba(X)
    b = pickle.loads(pickle.dumps(net)).predict_proba(X)
    np.testing.assert_allclose(a, b)
    cloned = clone(net)
    assert not hasattr(cloned, "noise_") or not cloned.noise_
    # save_params / load_params: the weights round-trip
    net.save_params(f_params=tmp_path / "p.pt")
    other = make_net(noise=None, noise_source=None).initialize()
    other.load_params(f_params=tmp_path / "p.pt")
    with net.noise_disabled():
        np.testing.assert_allclose(other.predict_proba(X), net.predict_proba(X), rtol=1e-5)


def test_warm_start_keeps_noise_and_callbacks_work(digits):
    X, y = digits
    torch.manual_seed(0)
    net = make_net(warm_start=True, callbacks=[("train_acc", EpochScoring(
        "accuracy", on_train=True, name="train_acc"))]).fit(X, y)
    noise = net.noise_["body.2"]
    net.fit(X, y)
    assert net.noise_["body.2"] is noise
    assert len(net.history) == 8 and "train_acc" in net.history[-1]


def test_warmup_as_long_as_training_gives_post_hoc_noise(digits):
    X, y = digits
    net = make_net(noise_warmup_epochs=10, max_epochs=2).fit(X, y)
    assert "body.2" in net.noise_


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw,exc,match", [
    (dict(noise_layers="body.99"), ValueError, "Unknown layer"),
    (dict(noise=None), ValueError, "noise_source is set but noise is None"),
    (dict(noise_scale=-1.0), ValueError, "noise_scale"),
    (dict(noise_mode="sometimes"), ValueError, "noise_mode"),
    (dict(noise_source=None), ValueError, "noise is not fitted and noise_source is None"),
    (dict(noise_layers=None), ValueError, "noise_layers is required"),
    (dict(noise_source="fgsm"), TypeError, "structnoise source"),
])
def test_bad_configuration_before_training(digits, kw, exc, match):
    X, y = digits
    net = make_net(**kw)
    with pytest.raises(exc, match=match):
        net.fit(X, y)
    assert not getattr(net, "history", None) or len(net.history) == 0


def test_noise_width_mismatch(digits):
    X, y = digits
    fitter = StructuredNoiseFitter().fit(np.random.RandomState(0).randn(50, 7))
    with pytest.raises(ValueError, match="width 7.*128 features"):
        make_net(noise=fitter, noise_source=None).fit(X, y)


def test_wrong_input_shape(digits):
    X, y = digits
    with pytest.raises(ValueError, match="does not fit the module"):
        make_net().fit(np.zeros((20, 1, 5, 5), dtype=np.float32), y[:20])


def test_noise_fitted_even_with_callbacks_disabled(digits):
    X, y = digits
    net = make_net(callbacks="disable").fit(X, y)
    assert "body.2" in net.noise_
