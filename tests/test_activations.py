import numpy as np
import pytest
import torch
from sklearn.base import clone

from structnoise import ActivationPairs
from structnoise.activations import capture_activations, check_layers
from structnoise.models import DigitsCNN, DigitsMLP
from structnoise.sources import FGSM, GaussianNoise


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(20, 1, 8, 8, generator=g), torch.randint(0, 10, (20,), generator=g)


def test_pairs_match_manual_forward(images):
    X, y = images
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    source = GaussianNoise(0.1, random_state=0)
    pairs = ActivationPairs(model, "body.2", source).fit_transform(X, y)
    assert pairs.shape == (20, 2, 128) and pairs.dtype == np.float32
    modified = source.generate(model, X, y)
    with torch.no_grad():
        clean = model.body[:3](X).numpy()
        mod = model.body[:3](modified).numpy()
    np.testing.assert_allclose(pairs[:, 0], clean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pairs[:, 1], mod, rtol=1e-5, atol=1e-6)


def test_several_layers_and_maps(images):
    X, y = images
    out = ActivationPairs(DigitsCNN(), ["body.1", "body.7"], FGSM(eps=0.1),
                          batch_size=7).fit_transform(X, y)
    assert set(out) == {"body.1", "body.7"}
    assert out["body.1"].shape == (20, 2, 16 * 8 * 8)
    assert out["body.7"].shape == (20, 2, 64)


def test_rows_aligned_under_slicing(images):
    X, y = images
    model = DigitsMLP().eval()
    ap = ActivationPairs(model, "body.4", FGSM(eps=0.1))
    full = ap.fit_transform(X, y)
    part = ap.fit_transform(X[5:12], y[5:12])
    np.testing.assert_allclose(part, full[5:12], rtol=1e-5, atol=1e-6)


def test_transform_uses_predictions(images):
    X, _ = images
    model = DigitsMLP().eval()
    ap = ActivationPairs(model, "body.4", FGSM(eps=0.1)).fit(X)
    pred = model(X).argmax(1)
    expected = ActivationPairs(model, "body.4", FGSM(eps=0.1)).fit_transform(X, pred)
    np.testing.assert_allclose(ap.transform(X), expected, rtol=1e-5, atol=1e-6)


def test_clone_keeps_a_module_fitted(images):
    X, y = images
    model = DigitsMLP()
    ap = clone(ActivationPairs(model, "body.2", GaussianNoise(0.1, random_state=0)))
    assert ap.fit_transform(X, y).shape == (20, 2, 128)


def test_unknown_layer_lists_names(images):
    X, y = images
    with pytest.raises(ValueError, match=r"Unknown layer.*'body.2'"):
        ActivationPairs(DigitsMLP(), "body.99", FGSM()).fit(X, y)


def test_bad_source_and_batch_size(images):
    X, y = images
    with pytest.raises(TypeError, match="structnoise source"):
        ActivationPairs(DigitsMLP(), "body.2", "fgsm").fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        ActivationPairs(DigitsMLP(), "body.2", FGSM(), batch_size=0).fit(X, y)


def test_capture_removes_hooks():
    model = DigitsMLP()
    with capture_activations(model, ["body.2"]) as store:
        model(torch.zeros(3, 1, 8, 8))
    assert store["body.2"][0].shape == (3, 128)
    assert not model.body[2]._forward_hooks
    assert list(check_layers(model, ["body.2", "head"])) == ["body.2", "head"]


def test_source_needing_labels_in_transform(images):
    X, y = images
    ap = ActivationPairs(DigitsMLP(), "body.2", FGSM(targeted=True)).fit(X, y)
    with pytest.raises(ValueError, match="needs the target labels"):
        ap.transform(X)
