"""Properties every source keeps, over sizes, channels and clip ranges (issue #12).

Output finite, inside the clip range, within eps where there is one, the
input untouched, and the same images for any ``batch_size`` under a fixed
``random_state``.
"""

import numpy as np
import pytest
import torch

from structnoise.sources import (
    CORRUPTIONS,
    DDN,
    FAB,
    FGSM,
    L1PGD,
    L2PGD,
    AutoPGD,
    CarliniWagnerL2,
    Corruption,
    GaussianNoise,
    LinfPGD,
    LinfSPSA,
    MomentumIterative,
    SpatialTransform,
    SquareAttack,
)

ATTACKS = {
    "FGSM": (lambda: FGSM(eps=0.1), ("inf", 0.1)),
    "LinfPGD": (lambda: LinfPGD(eps=0.1, nb_iter=3, eps_iter=0.05), ("inf", 0.1)),
    "L2PGD": (lambda: L2PGD(eps=0.5, nb_iter=3, eps_iter=0.2), ("2", 0.5)),
    "L1PGD": (lambda: L1PGD(eps=2.0, nb_iter=3, eps_iter=0.5), ("1", 2.0)),
    "MomentumIterative": (lambda: MomentumIterative(eps=0.1, nb_iter=3), ("inf", 0.1)),
    "MomentumIterativeL2": (lambda: MomentumIterative(eps=0.5, nb_iter=3, ord=2), ("2", 0.5)),
    "CarliniWagnerL2": (lambda: CarliniWagnerL2(binary_search_steps=1, max_iterations=5),
                        None),
    "DDN": (lambda: DDN(nb_iter=5), None),
    "FAB": (lambda: FAB(n_iter=3), None),
    "LinfSPSA": (lambda: LinfSPSA(eps=0.1, nb_sample=8, max_batch_size=8), ("inf", 0.1)),
    "SpatialTransform": (lambda: SpatialTransform(max_iterations=3), None),
    "AutoPGD": (lambda: AutoPGD(eps=0.1, max_iter=3, nb_random_init=1), ("inf", 0.1)),
    "SquareAttack": (lambda: SquareAttack(eps=0.1, max_iter=5), ("inf", 0.1)),
}
SHAPES = [(5, 1, 8, 8), (3, 3, 28, 28), (2, 3, 32, 32)]
CLIPS = [(0.0, 1.0), (-1.0, 1.0)]


def _model(shape):
    torch.manual_seed(0)
    c, h, w = shape[1:]
    return torch.nn.Sequential(torch.nn.Conv2d(c, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(4 * (h // 2) * (w // 2), 10)).eval()


def _images(shape, clip):
    lo, hi = clip
    return lo + (hi - lo) * torch.rand(shape, generator=torch.Generator().manual_seed(1))


def _norm(delta, p):
    flat = delta.flatten(1)
    if p == "inf":
        return flat.abs().amax(1)
    return flat.norm(p=float(p), dim=1)


def _check(out, X, X0, clip, budget):
    assert out.shape == X.shape and torch.isfinite(out).all()
    assert float(out.min()) >= clip[0] - 1e-6 and float(out.max()) <= clip[1] + 1e-6
    assert torch.equal(X, X0)
    if budget is not None:
        p, eps = budget
        assert float(_norm(out - X, p).max()) <= eps * (1 + 1e-4) + 1e-5


@pytest.mark.parametrize("clip", CLIPS, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_properties(name, shape, clip):
    make, budget = ATTACKS[name]
    X = _images(shape, clip)
    X0 = X.clone()
    y = torch.arange(shape[0]) % 10
    model = _model(shape)
    attack = make().set_params(clip_min=clip[0], clip_max=clip[1], random_state=0,
                               batch_size=2)
    out = attack.generate(model, X, y)
    _check(out, X, X0, clip, budget)
    whole = make().set_params(clip_min=clip[0], clip_max=clip[1], random_state=0,
                              batch_size=64).generate(model, X, y)
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("clip", CLIPS, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(CORRUPTIONS) + ["GaussianNoise"])
def test_corruption_properties(name, shape, clip):
    X = _images(shape, clip)
    X0 = X.clone()
    make = (lambda **kw: GaussianNoise(0.1, **kw)) if name == "GaussianNoise" else \
        (lambda **kw: Corruption(name, 3, **kw))
    out = make(random_state=0, clip_min=clip[0], clip_max=clip[1], batch_size=2) \
        .generate(None, X)
    _check(out, X, X0, clip, None)
    whole = make(random_state=0, clip_min=clip[0], clip_max=clip[1], batch_size=1024) \
        .generate(None, X)
    assert torch.equal(out, whole)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("clip", CLIPS, ids=str)
@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_blocks_written_into_the_output_equal_a_single_block(name, clip, dtype):
    """Past one seed block, each block is stored straight into the output."""
    X = _images((300, 1, 8, 8), clip).to(dtype)
    X0 = X.clone()
    src = Corruption(name, 3, random_state=1, clip_min=clip[0], clip_max=clip[1])
    out = src.generate(None, X)
    assert out.dtype == dtype and torch.equal(X, X0)
    assert torch.equal(out[:256], src.generate(None, X[:256]))  # block 0: the same seed
    assert out.min() >= clip[0] and out.max() <= clip[1]


def test_many_images_across_seed_blocks_do_not_depend_on_batch_size():
    X = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a = Corruption("gaussian_noise", 3, random_state=3, batch_size=7).generate(None, X)
    b = Corruption("gaussian_noise", 3, random_state=3, batch_size=300).generate(None, X)
    assert torch.equal(a, b)
    # the blocks differ from each other: not one noise pattern repeated
    assert not torch.equal(a[:256][:44] - X[:44], a[256:] - X[256:])
    model = _model((1, 1, 8, 8))
    y = np.arange(300) % 10
    p1 = LinfPGD(eps=0.1, nb_iter=2, random_state=0, batch_size=13).generate(model, X, y)
    p2 = LinfPGD(eps=0.1, nb_iter=2, random_state=0, batch_size=300).generate(model, X, y)
    assert torch.equal(p1, p2)
