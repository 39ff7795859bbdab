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
from structnoise.sources import FGSM, Corruption, GaussianNoise


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


def test_noise_routing_is_skorch_prefix_routing(digits):
    # "noise" is one of skorch's prefixes: routed keys validate, a missing
    # double underscore gets skorch's own hint, and our noise_* parameters stay
    # plain attributes through set_params on a fitted net
    X, y = digits
    assert "noise" in NoisyNeuralNetClassifier.prefixes_
    with pytest.raises(ValueError, match="noise__structure"):
        make_net(noise_structure="isotropic").initialize()
    net = make_net(noise__structure="diagonal").fit(X, y)
    net.set_params(noise_scale=0.5, noise__structure="isotropic")
    assert net.noise_scale == 0.5 and net.noise_control_.scale == 0.5
    assert net.fit(X, y).noise_["body.2"].structure == "isotropic"


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
    with pytest.raises(ValueError, match="layer 'body.2' has width 7.*128 features"):
        make_net(noise=fitter, noise_source=None).fit(X, y)
    # with the paper's retraining the width is checked before training
    net = make_net(noise=fitter, noise_source=None, noise_retrain="after")
    with pytest.raises(ValueError, match="width 7.*128 features"):
        net.fit(X, y)
    assert len(net.history) == 0


def test_wrong_input_shape(digits):
    X, y = digits
    # the probe before the paper's retraining names the problem
    with pytest.raises(ValueError, match="does not fit the module"):
        make_net(noise_retrain="after").fit(np.zeros((20, 1, 5, 5), dtype=np.float32), y[:20])
    # so does the forward pass every fit makes before its first step
    net = make_net()
    with pytest.raises(ValueError, match="does not fit the module"):
        net.fit(np.zeros((20, 1, 5, 5), dtype=np.float32), y[:20])
    assert len(net.history_) == 0


def test_noise_fitted_even_with_callbacks_disabled(digits):
    X, y = digits
    net = make_net(callbacks="disable").fit(X, y)
    assert "body.2" in net.noise_


# ------------------------------------------- the paper's retraining and ensemble
def _paper_net(**kw):
    from structnoise.models import PaperCNN

    params = dict(noise=StructuredNoiseFitter(shrinkage=None, trace_scale=2.0, random_state=0),
                  noise_source=GaussianNoise(0.3, random_state=0),
                  noise_layers=PaperCNN.NOISE_SITES[2], noise_retrain="after",
                  noise_warmup_epochs=1, max_epochs=2, batch_size=32, verbose=0,
                  train_split=None, optimizer=torch.optim.Adam, lr=1e-3)
    params.update(kw)
    module = params.pop("module", PaperCNN)
    return NoisyNeuralNetClassifier(module, **params)


@pytest.fixture(scope="module")
def images28():
    rng = np.random.RandomState(0)
    return rng.rand(64, 1, 28, 28).astype(np.float32), rng.randint(0, 10, 64)


def _snapshot(net):
    return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


@pytest.mark.slow
def test_retrain_after_freezes_up_to_the_noisy_layer_and_reinitialises_the_rest(images28):
    X, y = images28
    torch.manual_seed(0)
    net = _paper_net(max_epochs=1, noise_warmup_epochs=1)
    net.fit(X, y)  # the phase starts at the end of the only epoch
    assert net.noise_phase_started_
    assert net.noise_frozen_ == ["body.conv1.weight", "body.conv1.bias",
                                 "body.conv2.weight", "body.conv2.bias"]
    assert net.noise_reinitialized_ == ["body.conv3", "body.fc1", "body.fc2", "head"]
    trainable = {n for n, p in net.module_.named_parameters() if p.requires_grad}
    assert trainable == {f"{m}.{p}" for m in net.noise_reinitialized_ for p in ("weight", "bias")}
    # the optimizer only sees the trainable parameters
    in_optimizer = {id(p) for group in net.optimizer_.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in net.module_.parameters() if p.requires_grad}
    # training on: the frozen layers do not move, the later ones do
    before = _snapshot(net)
    net.partial_fit(X, y)
    after = _snapshot(net)
    for name in before:
        moved = not torch.equal(before[name], after[name])
        assert moved == (name not in net.noise_frozen_), name


@pytest.mark.slow
def test_retrain_after_reinitialises_with_reset_parameters(images28, monkeypatch):
    X, y = images28
    torch.manual_seed(0)
    net = _paper_net(max_epochs=1, noise_warmup_epochs=1)
    states = []
    real = NoisyNeuralNetClassifier._freeze_and_reinitialize

    def spy(self):
        states.append(_snapshot(self))
        real(self)
        states.append(_snapshot(self))

    monkeypatch.setattr(NoisyNeuralNetClassifier, "_freeze_and_reinitialize", spy)
    net.fit(X, y)
    before, after = states
    for name in before:
        layer = name.rsplit(".", 1)[0]
        assert torch.equal(before[name], after[name]) == (layer not in net.noise_reinitialized_)
    # reset_parameters' bound for fc1 (kaiming uniform, fan_in 400)
    assert float(after["body.fc1.weight"].abs().max()) <= 1 / np.sqrt(400) + 1e-6


@pytest.mark.slow
def test_no_noise_baseline_gets_the_same_freeze_and_reinit(images28):
    X, y = images28
    torch.manual_seed(0)
    noisy = _paper_net().fit(X, y)
    torch.manual_seed(0)
    none = _paper_net(noise=None, noise_source=None).fit(X, y)
    assert not getattr(none, "noise_", None)
    assert none.noise_frozen_ == noisy.noise_frozen_
    assert none.noise_reinitialized_ == noisy.noise_reinitialized_
    with pytest.raises(ValueError, match="noise_layers"):
        _paper_net(noise=None, noise_source=None, noise_layers=None).fit(X, y)


def test_retrain_after_follows_execution_order_not_registration():
    class Reordered(torch.nn.Module):
        def __init__(self):
            super().__init__()
            # registered head first, but it runs last
            self.head = torch.nn.Linear(16, 3)
            self.late = torch.nn.Linear(16, 16)
            self.early = torch.nn.Linear(8, 16)
            self.act = torch.nn.Tanh()

        def forward(self, x):
            return self.head(torch.tanh(self.late(self.act(self.early(x)))))

    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 8).astype(np.float32), rng.randint(0, 3, 40)
    noise = StructuredNoiseFitter(random_state=0).fit(rng.randn(30, 16))
    net = NoisyNeuralNetClassifier(Reordered, noise=noise, noise_layers="act",
                                   noise_retrain="after", max_epochs=1, verbose=0,
                                   train_split=None).fit(X, y)
    assert net.noise_frozen_ == ["early.weight", "early.bias"]
    assert net.noise_reinitialized_ == ["late", "head"]


def test_retrain_after_needs_a_layer_after(digits):
    X, y = digits
    fitter = StructuredNoiseFitter().fit(np.random.RandomState(0).randn(50, 10))
    net = NoisyNeuralNetClassifier(DigitsMLP, noise=fitter, noise_layers="head",
                                   noise_retrain="after", max_epochs=1, verbose=0,
                                   train_split=None)
    with pytest.raises(ValueError, match="nothing to retrain.*'head'"):
        net.fit(X, y)
    assert len(net.history) == 0


@pytest.mark.slow
def test_fresh_fit_undoes_the_freeze(images28):
    X, y = images28
    torch.manual_seed(0)
    from structnoise.models import PaperCNN

    module = PaperCNN()
    net = _paper_net(module=module).fit(X, y)
    assert not module.body.conv1.weight.requires_grad
    net.set_params(noise_retrain="all").fit(X, y)
    assert all(p.requires_grad for p in module.parameters())


def test_ensemble_prediction_is_the_mean_of_single_draw_logits(digits):
    X, y = digits
    torch.manual_seed(0)
    net = make_net(noise_ensemble=5, batch_size=400).fit(X, y)
    Xt = torch.as_tensor(X)
    (hook,) = net.module_.body[2]._forward_hooks.values()
    # the ensemble's logits, drawn from a fresh generator
    hook.noise.reset_generators()
    net.set_params(predict_nonlinearity=None)
    ensemble = torch.as_tensor(net.predict_proba(X))
    # k single-draw passes from the same generator state: the stacked pass
    # draws the k copies' noise in one call, so replay it the same way
    hook.noise.reset_generators()
    net.module_.eval()
    with torch.no_grad():
        single = net.module_(Xt.repeat(5, 1, 1, 1)).reshape(5, len(X), -1)
    torch.testing.assert_close(ensemble, single.mean(0))
    # the draws differ: the ensemble is not one draw repeated
    assert not torch.allclose(single[0], single[1])
    # fewer errors than a single draw on average (the ensemble averages noise out)
    acc_ensemble = (ensemble.argmax(1).numpy() == y).mean()
    acc_single = np.mean([(s.argmax(1).numpy() == y).mean() for s in single])
    assert acc_ensemble >= acc_single - 0.02


def test_a_noise_scale_assigned_directly_reaches_the_ensemble_prediction(digits):
    """net.noise_scale = v takes effect as set_params does (the draws bypass infer)."""
    X, y = digits
    torch.manual_seed(0)
    net = make_net(noise_ensemble=3).fit(X, y)
    module = net.noise_modules_["body.2"]
    net.noise_scale = 50.0
    module.reset_generators()
    assigned = net.predict_proba(X[:50])
    assert net.noise_control_.scale == 50.0
    net.set_params(noise_scale=50.0)
    module.reset_generators()
    np.testing.assert_allclose(assigned, net.predict_proba(X[:50]))


def test_attacks_target_the_ensemble(digits):
    from structnoise._inference import resolve_module
    from structnoise.sources import EOTModel

    X, y = digits
    torch.manual_seed(0)
    net = make_net(noise_ensemble=4).fit(X, y)
    module = resolve_module(net)
    assert isinstance(module, EOTModel) and module.eot_samples == 4
    # the net's module, cut before its noise so that the draws share the front
    assert module.module is net.draws_module_
    assert {id(p) for p in module.module.parameters()} == {id(p) for p in net.module_.parameters()}
    with net.noise_disabled():
        assert resolve_module(net) is net.module_
    net.set_params(noise_ensemble=1)
    assert resolve_module(net) is net.module_


@pytest.mark.parametrize("kw,match", [
    (dict(noise_retrain="before"), "noise_retrain"),
    (dict(noise_ensemble=0), "noise_ensemble"),
    (dict(noise_ensemble=2.5), "noise_ensemble"),
    (dict(noise_ensemble=True), "noise_ensemble"),
])
def test_bad_retrain_and_ensemble(digits, kw, match):
    X, y = digits
    net = make_net(**kw)
    with pytest.raises(ValueError, match=match):
        net.fit(X, y)
    assert not getattr(net, "history", None) or len(net.history) == 0


def test_trace_scale_routed_to_the_fitters(digits):
    X, y = digits
    torch.manual_seed(0)
    net = make_net(noise__trace_scale=2.0, noise__structure="diagonal").fit(X, y)
    fitter = net.noise_["body.2"]
    assert fitter.trace_scale == 2.0 and fitter.structure == "diagonal"
    assert np.trace(fitter.covariance_) == pytest.approx(2.0 * 128, rel=1e-6)


# ------------------------------------------- bad input, refused before any step
def _labels_as(kind, y):
    return {"out of range": y + 5, "floats": y + 0.5, "strings": y.astype(str)}[kind]


@pytest.mark.parametrize("case,error,match", [
    ("images 0-255", ValueError, r"noise_source FGSM\(eps=0.1\).*\[0, 255\]"),
    ("wrong shape", ValueError, "does not fit the module"),
    ("float64 images", TypeError, "float64 but the module's parameters are torch.float32"),
    ("misspelled corruption", ValueError, "noise_source=Corruption.*Unknown corruption 'rotat'"),
    ("negative eps", ValueError, r"noise_source=FGSM\(eps=-0.1\) is not valid"),
    ("bad train_source", ValueError, "train_source=.*is not valid"),
    ("labels out of range", ValueError, "labels from 5 to 14, but the module has 10 outputs"),
    ("labels floats", TypeError, "y holds float64 values"),
    ("labels strings", TypeError, "y holds <U"),
])
def test_bad_input_is_refused_before_any_training_step(digits, case, error, match):
    X, y = digits
    net = make_net()
    if case == "images 0-255":
        X = X * 255
    elif case == "wrong shape":
        X = np.ascontiguousarray(X[:, :, :4])
    elif case == "float64 images":
        X = X.astype(np.float64)
    elif case == "misspelled corruption":
        net.set_params(noise_source=Corruption("rotat", 2))
    elif case == "negative eps":
        net.set_params(noise_source=FGSM(eps=-0.1))
    elif case == "bad train_source":
        net.set_params(train_source=Corruption("blurr", 2), train_source_ratio=0.5)
    else:
        y = _labels_as(case.removeprefix("labels "), y)
    with pytest.raises(error, match=match):
        net.fit(X, y)
    assert len(net.history_) == 0  # not one epoch ran


def test_predicting_on_nan_images_is_refused(digits):
    X, y = digits
    net = make_net(noise=None, noise_source=None, noise_layers=None, max_epochs=1).fit(X, y)
    X_nan = X[:4].copy()
    X_nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="1 non-finite value.*meaningless classes"):
        net.predict(X_nan)
