"""ART attacks (AutoPGD, Square): same output as raw ART, EOT, bad input; the
paper's PGD and FGM expressed with LinfPGD and FGSM."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from structnoise.sources import FGSM, AutoPGD, LinfPGD, SquareAttack
from structnoise.sources.art_attacks import art_classifier

art_evasion = pytest.importorskip("art.attacks.evasion")


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(),
                                torch.nn.Flatten(), torch.nn.Linear(256, 10))
    g = torch.Generator().manual_seed(1)
    X = torch.rand(40, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (40,), generator=g)
    return model, X, y


def _raw(attack_cls, model, X, y, seed, **kwargs):
    clf = art_classifier(model, tuple(X.shape[1:]), 10)
    np.random.seed(seed)  # noqa: NPY002 - ART draws from numpy's global generator
    return torch.from_numpy(attack_cls(clf, verbose=False, **kwargs).generate(
        X.numpy(), y=y.numpy()))


@pytest.mark.parametrize("ours,art_name", [
    (AutoPGD(eps=0.1, max_iter=10, nb_random_init=2, random_state=3),
     "AutoProjectedGradientDescent"),
    (AutoPGD(eps=0.5, norm=2, max_iter=5, nb_random_init=1, random_state=4),
     "AutoProjectedGradientDescent"),
    (SquareAttack(eps=0.1, max_iter=30, random_state=3), "SquareAttack"),
])
def test_same_output_as_raw_art(model_and_data, ours, art_name):
    model, X, y = model_and_data
    X0 = X.clone()
    out = ours.generate(model, X, y)
    raw = _raw(getattr(art_evasion, art_name), model, X, y, ours.random_state,
               batch_size=ours.batch_size, **ours._art_kwargs())
    torch.testing.assert_close(out, raw, rtol=0, atol=1e-7)
    assert torch.equal(X, X0)
    # the attack works: accuracy drops
    clean = (model(X).argmax(1) == y).float().mean()
    assert (model(out).argmax(1) == y).float().mean() <= clean


@pytest.mark.parametrize("eps", [0.02, 0.1, 0.2])
def test_paper_pgd_is_linfpgd_without_random_start(model_and_data, eps):
    """ART's PGD defaults (step 0.1 whatever eps, no random start) = our LinfPGD."""
    model, X, y = model_and_data
    ours = LinfPGD(eps=eps, nb_iter=20, eps_iter=0.1, rand_init=False).generate(model, X, y)
    raw = _raw(art_evasion.ProjectedGradientDescent, model, X, y, 0, eps=eps, eps_step=0.1,
               max_iter=20, num_random_init=0)
    torch.testing.assert_close(ours, raw, rtol=0, atol=1e-6)


@pytest.mark.parametrize("eps", [0.02, 0.2])
def test_paper_fgm_is_fgsm(model_and_data, eps):
    model, X, y = model_and_data
    ours = FGSM(eps=eps).generate(model, X, y)
    clf = art_classifier(model, (1, 8, 8), 10)
    raw = torch.from_numpy(art_evasion.FastGradientMethod(clf, eps=eps).generate(
        X.numpy(), y=y.numpy()))
    torch.testing.assert_close(ours, raw, rtol=0, atol=1e-6)


def test_same_seed_same_images_and_numpy_state_restored(model_and_data):
    model, X, y = model_and_data
    np.random.seed(123)  # noqa: NPY002
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    a = SquareAttack(eps=0.1, max_iter=10, random_state=0).generate(model, X, y)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    b = SquareAttack(eps=0.1, max_iter=10, random_state=0).generate(model, X, y)
    assert torch.equal(a, b)


class _Noisy(torch.nn.Module):
    """A net with hidden Gaussian noise: each forward pass is one draw."""

    def __init__(self, base, std):
        super().__init__()
        self.base, self.std = base, std

    def forward(self, x):
        h = self.base[:2](x)
        return self.base[2:](h + self.std * torch.randn_like(h))


@pytest.mark.parametrize("cls", [AutoPGD, SquareAttack])
def test_eot_on_a_stochastic_net_stays_in_the_ball(model_and_data, cls):
    model, X, y = model_and_data
    noisy = _Noisy(model, 0.5)
    kw = dict(nb_random_init=1) if cls is AutoPGD else {}
    out = cls(eps=0.05, max_iter=5, eot_samples=4, random_state=0, **kw).generate(noisy, X, y)
    assert float((out - X).abs().max()) <= 0.05 + 1e-6
    assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()


def test_custom_clip_range(model_and_data):
    model, X, y = model_and_data
    Xs = X * 2 - 1
    out = AutoPGD(eps=0.2, max_iter=5, nb_random_init=1, clip_min=-1, clip_max=1,
                  random_state=0).generate(model, Xs, y)
    assert out.min() >= -1 and out.max() <= 1
    assert float((out - Xs).abs().max()) <= 0.2 + 1e-6


def test_clone_and_params():
    a = AutoPGD(eps=0.2, max_iter=50, eot_samples=8)
    b = clone(a)
    assert b.get_params() == a.get_params() and b.kind == "adversarial"
    assert SquareAttack().get_params()["p_init"] == 0.8


@pytest.mark.parametrize("source,match", [
    (AutoPGD(eps=-0.1), "eps"),
    (AutoPGD(eps=0.0), "eps"),
    (SquareAttack(eps=-1.0), "eps"),
    (AutoPGD(norm=3), "norms"),
    (AutoPGD(norm="l0"), "norms"),
    (SquareAttack(norm=1), "norms"),
    (AutoPGD(max_iter=0), "max_iter"),
    (SquareAttack(p_init=1.5), "p_init"),
])
def test_bad_parameters_before_any_work(model_and_data, source, match):
    model, X, y = model_and_data
    with pytest.raises(ValueError, match=match):
        source.generate(model, X, y)


def test_targeted_needs_labels(model_and_data):
    model, X, _ = model_and_data
    with pytest.raises(ValueError, match="targeted=True"):
        AutoPGD(targeted=True).generate(model, X)


def test_labels_out_of_range(model_and_data):
    model, X, _ = model_and_data
    with pytest.raises(ValueError, match="outside"):
        AutoPGD(max_iter=2).generate(model, X, np.full(len(X), 10))
