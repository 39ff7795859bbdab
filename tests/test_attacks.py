"""Attack wrappers: equality with raw advertorch, EOT, labels, bad input."""

import pytest
import torch
from sklearn.base import clone

from structnoise.sources import (
    DDN,
    FAB,
    FGSM,
    L1PGD,
    L2PGD,
    CarliniWagnerL2,
    EOTLoss,
    EOTModel,
    LinfPGD,
    LinfSPSA,
    MomentumIterative,
    SpatialTransform,
)
from structnoise.sources._advertorch import import_advertorch


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10))


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(24, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (24,), generator=g)
    return X, y


class NoisyNet(torch.nn.Module):
    """Hidden Gaussian noise drawn from a pre-drawn bank, row by row.

    Consuming the bank in order makes one stacked forward pass and k single
    passes see exactly the same noise, so EOT can be checked exactly.
    """

    def __init__(self, std=1.0, bank_rows=100_000):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32))
        self.head = torch.nn.Linear(32, 10)
        self.bank = torch.randn(bank_rows, 32, generator=torch.Generator().manual_seed(1)) * std
        self.pos = 0

    def forward(self, x):
        h = self.body(x)
        noise = self.bank[self.pos:self.pos + h.shape[0]]
        self.pos = (self.pos + h.shape[0]) % (self.bank.shape[0] - 2 * h.shape[0])
        return self.head(torch.relu(h + noise))


ALL = [FGSM(eps=0.1), LinfPGD(eps=0.1, nb_iter=3, eps_iter=0.05), L2PGD(eps=0.5, nb_iter=3),
       L1PGD(eps=2.0, nb_iter=3), MomentumIterative(eps=0.1, nb_iter=3),
       CarliniWagnerL2(binary_search_steps=1, max_iterations=5), DDN(nb_iter=3),
       FAB(n_iter=3), LinfSPSA(eps=0.1, nb_sample=8, max_batch_size=8),
       SpatialTransform(max_iterations=3)]


@pytest.mark.parametrize("attack", ALL, ids=lambda a: type(a).__name__)
def test_every_attack_runs_and_is_an_estimator(attack, data):
    X, y = data
    X0 = X.clone()
    out = attack.set_params(random_state=0).generate(_model(), X, y)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert torch.equal(X, X0), "the input must not be modified"
    assert out.min() >= 0 and out.max() <= 1
    assert clone(attack).get_params() == attack.get_params()
    assert attack.kind == "adversarial"


@pytest.mark.parametrize("ours,theirs,kwargs", [
    (LinfPGD, "LinfPGDAttack", dict(eps=0.1, nb_iter=5, eps_iter=0.03, rand_init=True)),
    (FGSM, "GradientSignAttack", dict(eps=0.1)),
    (L2PGD, "L2PGDAttack", dict(eps=0.8, nb_iter=4, eps_iter=0.3, rand_init=True)),
])
def test_same_as_raw_advertorch(ours, theirs, kwargs, data):
    X, y = data
    model = _model().eval()
    got = ours(**kwargs, random_state=3).generate(model, X, y)
    torch.manual_seed(3)
    attack = getattr(import_advertorch(), theirs)(model, **kwargs)
    expected = attack.perturb(X, y)
    torch.testing.assert_close(got, expected)


def test_numpy_input_and_skorch_like_model(data):
    X, y = data

    class Net:  # what the wrapper reads from a fitted skorch net
        module_ = _model()

    out = FGSM(eps=0.1).generate(Net(), X.numpy(), y.numpy())
    assert isinstance(out, torch.Tensor) and out.shape == X.shape


def test_y_none_uses_predictions(data):
    X, _ = data
    model = _model().eval()
    pred = model(X).argmax(1)
    a = LinfPGD(eps=0.1, nb_iter=3, random_state=0).generate(model, X)
    b = LinfPGD(eps=0.1, nb_iter=3, random_state=0).generate(model, X, pred)
    torch.testing.assert_close(a, b)


def test_attack_lowers_accuracy(data):
    X, _ = data
    model = _model().eval()
    y = model(X).argmax(1)
    adv = LinfPGD(eps=0.3, nb_iter=20, eps_iter=0.05, random_state=0).generate(model, X, y)
    assert (model(adv).argmax(1) == y).float().mean() < 0.5


def test_model_left_as_found(data):
    X, y = data
    model = _model().train()
    FGSM(eps=0.1).generate(model, X, y)
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_eot_gradient_is_mean_of_single_draw_gradients(data):
    X, y = data
    k = 4
    net = NoisyNet()
    x = X.clone().requires_grad_(True)
    loss = EOTLoss(k)(EOTModel(net, k)(x), y)
    (g_eot,) = torch.autograd.grad(loss, x)
    net.pos = 0
    singles = []
    for _ in range(k):
        xi = X.clone().requires_grad_(True)
        li = torch.nn.functional.cross_entropy(net(xi), y, reduction="sum")
        singles.append(torch.autograd.grad(li, xi)[0])
    torch.testing.assert_close(g_eot, torch.stack(singles).mean(0))


def test_eot_pgd_at_least_as_strong_on_noisy_net():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(200, 1, 8, 8, generator=g)
    net = NoisyNet(std=3.0)
    # make the clean task learnable: labels from the noise-free network
    with torch.no_grad():
        y = net.head(torch.relu(net.body(X))).argmax(1)

    def accuracy(adv):
        with torch.no_grad():
            return float((EOTModel(net, 16, "logits")(adv).argmax(1) == y).float().mean())

    kw = dict(eps=0.05, nb_iter=10, eps_iter=0.01, random_state=0)
    plain = accuracy(LinfPGD(**kw).generate(net, X, y))
    eot = accuracy(LinfPGD(**kw, eot_samples=8).generate(net, X, y))
    assert eot <= plain + 0.02


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("attack,match", [
    (FGSM(eps=-0.1), "eps"),
    (LinfPGD(nb_iter=-1), "nb_iter"),
    (LinfPGD(eot_samples=0), "eot_samples"),
    (FGSM(clip_min=1.0, clip_max=0.0), "clip_min"),
])
def test_bad_parameters(attack, match, data):
    X, y = data
    with pytest.raises(ValueError, match=match):
        attack.generate(_model(), X, y)


def test_bad_inputs(data):
    X, y = data
    model = _model()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        FGSM().generate(model, X[:, 0], y)
    with pytest.raises(ValueError, match=r"\[clip_min, clip_max\]"):
        FGSM().generate(model, X * 2, y)
    with pytest.raises(ValueError, match="24 labels"):
        FGSM().generate(model, X, y[:5])
    with pytest.raises(ValueError, match="outside"):
        FGSM().generate(model, X, y + 10)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        FGSM().generate("not a model", X, y)
    with pytest.raises(ValueError, match="needs the target labels"):
        LinfPGD(targeted=True).generate(model, X)
    # a model that returns images, not (N, n_classes) logits
    with pytest.raises(ValueError, match=r"\(N, n_classes\)"):
        FGSM().generate(torch.nn.Identity(), X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_cpu_images(data):  # pragma: no cover - no GPU in CI
    X, y = data
    out = LinfPGD(eps=0.1, nb_iter=3).generate(_model().cuda(), X, y)
    assert out.device.type == "cpu"
