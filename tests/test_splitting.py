"""splitting: the cut at the noise site, and the shared front of the noise draws."""

import numpy as np
import pytest
import torch
from torch import nn

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise._inference import stacked_draws
from structnoise.models import PaperCNN
from structnoise.splitting import SharedFront, split_before, split_module

SITE = PaperCNN.NOISE_SITES[2]


def test_split_module_composes_and_shares_the_parameters():
    net = PaperCNN().eval()
    x = torch.rand(3, 1, 28, 28)
    front, back = split_module(net, SITE, probe=x)
    torch.testing.assert_close(back(front(x)), net(x))
    assert front[-1] is net.body.tanh2 and back[0] is net.body.conv3


def test_split_before_puts_the_noisy_layer_first_in_the_back():
    net = PaperCNN().eval()
    shared = split_before(net, [SITE])
    assert isinstance(shared, SharedFront)
    assert shared.front[-1] is net.body.conv2 and shared.back[0] is net.body.tanh2
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(shared(x), net(x))
    # several noisy layers: cut before the first, all of them in the back
    shared = split_before(net, ["body.tanh4", SITE])
    assert shared.back[0] is net.body.tanh2


def test_split_before_gives_none_where_it_cannot_cut():
    net = PaperCNN()
    assert split_before(net, ["body.conv1"]) is None  # nothing before it
    assert split_before(net, []) is None
    assert split_before(net, ["no.such.layer"]) is None
    assert split_before(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), ["1"]) is not None


def _noisy_net(structure):
    X = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    y = np.arange(64) % 10
    noise = StructuredNoiseFitter(structure=structure, random_state=0).fit_covariance(
        np.eye(3136) * 0.5)
    net = NoisyNeuralNetClassifier(PaperCNN, noise={SITE: noise}, noise_ensemble=5,
                                   max_epochs=1, train_split=None, verbose=0).fit(X, y)
    return net, X


@pytest.mark.parametrize("structure", ["full", "diagonal"])
def test_shared_front_draws_are_the_whole_networks_draws(structure):
    """The same draws from the same stream, the same outputs and input gradients."""
    net, X = _noisy_net(structure)
    shared, noise = net.draws_module_, net.noise_modules_[SITE]
    assert isinstance(shared, SharedFront) and net.draws_module_ is shared
    net.module_.eval()
    x = torch.as_tensor(X[:16]).requires_grad_()
    noise.reset_generators()
    out = stacked_draws(shared, x, 4)
    (grad,) = torch.autograd.grad(out.sum(), x)
    noise.reset_generators()
    ref = stacked_draws(net.module_, x, 4)
    (ref_grad,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad, ref_grad)
    # the net's ensemble prediction runs on it, with the same probabilities
    noise.reset_generators()
    proba = net.predict_proba(X)
    noise.reset_generators()
    with torch.no_grad():
        expected = stacked_draws(net.module_, torch.as_tensor(X), 5, mean=True).softmax(1)
    np.testing.assert_allclose(proba, expected.numpy(), rtol=1e-5, atol=1e-6)


class _Opaque(nn.Module):
    """Hides the module it wraps from stacked_draws: the reference, front per copy."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


@pytest.mark.parametrize("rows", [16, 300])
@pytest.mark.parametrize("average", ["loss", "logits"])
def test_eot_of_the_ensemble_runs_its_front_once_with_the_same_draws(rows, average):
    """EOT over the net's noise ensemble (what a source with eot_samples=k given
    the net attacks: its prediction_module_): the ensemble's front once for all
    k copies, and the same outputs and input gradients as the copies each
    running it (the same draws, pass for pass)."""
    from structnoise.sources import EOTModel

    net, X = _noisy_net("diagonal")
    net.module_.eval()
    ensemble, noise = net.prediction_module_, net.noise_modules_[SITE]
    assert isinstance(ensemble.module, SharedFront)
    calls = []
    handle = ensemble.module.front.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    x = torch.as_tensor(np.concatenate([X] * 5)[:rows]).requires_grad_()
    results = []
    for model in (EOTModel(ensemble, 3, average=average),
                  EOTModel(_Opaque(ensemble), 3, average=average)):
        calls.clear()
        noise.reset_generators()
        out = model(x)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        results.append((out, grad, list(calls)))
    handle.remove()
    (out, grad, once), (ref, ref_grad, per_copy) = results
    assert once == [rows] and sum(per_copy) == 3 * rows
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_draws_module_follows_the_installed_noise_and_is_left_out_of_pickles():
    import pickle

    net, _ = _noisy_net("full")
    first = net.draws_module_
    net.set_params(noise={"body.tanh4": StructuredNoiseFitter(random_state=0).fit_covariance(
        np.eye(32))}, noise_layers=["body.tanh4"])
    net.fit_noise(None)
    # one noisy layer: the cut falls just after it
    assert net.draws_module_ is not first
    assert net.draws_module_.front.front[-1] is net.module_.body.tanh4
    loaded = pickle.loads(pickle.dumps(net))
    assert loaded.draws_module_.front.front[-1] is loaded.module_.body.tanh4
    # no noise: the module itself
    plain = NoisyNeuralNetClassifier(PaperCNN, train_split=None).initialize()
    assert plain.draws_module_ is plain.module_


def test_one_noisy_layer_runs_once_per_batch_and_its_noise_per_draw():
    """The cut after the noisy layer: k draws compute the layer once, draw its noise k
    times (the same draws as the whole network's), and the front adds none."""
    net, X = _noisy_net("full")
    net.module_.eval()
    shared, noise = net.draws_module_, net.noise_modules_[SITE]
    layer = net.module_.get_submodule(SITE)
    assert shared.front.front[-1] is layer
    calls = []
    handle = layer.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    x = torch.as_tensor(X[:8])
    noise.reset_generators()
    with torch.no_grad():
        out = stacked_draws(shared, x, 4)
    handle.remove()
    assert calls == [8]
    noise.reset_generators()
    with torch.no_grad():
        torch.testing.assert_close(out, stacked_draws(net.module_, x, 4))
        # the front's output is the layer's, without noise; the control is restored
        assert net.noise_control_.enabled
        with net.noise_disabled():
            clean = net.module_.body[:5](x)
        torch.testing.assert_close(shared.front(x), clean)
        assert net.noise_control_.enabled
        # noise off for the whole net: the draws are the clean network's
        with net.noise_disabled():
            torch.testing.assert_close(shared(x), net.module_(x))


def test_several_noisy_layers_are_cut_before_the_first():
    net, _ = _noisy_net("diagonal")
    net.set_params(noise={SITE: StructuredNoiseFitter(random_state=0).fit_covariance(
        np.eye(3136)), "body.tanh4": StructuredNoiseFitter(random_state=0).fit_covariance(
        np.eye(32))}, noise_layers=[SITE, "body.tanh4"])
    net.fit_noise(None)
    assert net.draws_module_.back[0] is net.module_.body.tanh2


def test_split_after_gives_none_where_it_cannot_cut():
    import contextlib

    from structnoise.splitting import split_after

    opaque = nn.Module()
    assert split_after(opaque, "x", lambda m, i, o: None, contextlib.nullcontext) is None
    assert split_after(PaperCNN(), "no.such", lambda m, i, o: None, contextlib.nullcontext) \
        is None
