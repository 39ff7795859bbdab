"""Batched torch corruptions: shapes, determinism, severities, reference stats."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from structnoise.sources import CORRUPTIONS, SEVERITY_PARAMETERS, Corruption, GaussianNoise


@pytest.fixture(scope="module")
def digits():
    from structnoise.datasets import load_digits_images

    return torch.from_numpy(load_digits_images()[0][:64])


def test_registry_covers_the_families():
    assert len(CORRUPTIONS) >= 15
    for name in ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                 "gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur", "fog",
                 "contrast", "brightness", "pixelate", "jpeg_compression",
                 "elastic_transform", "rotate", "shear", "scale", "translate", "saturate"]:
        assert name in CORRUPTIONS
        assert len(SEVERITY_PARAMETERS[name]) == 5


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
@pytest.mark.parametrize("shape", [(6, 1, 8, 8), (4, 3, 32, 32), (3, 1, 28, 20)])
def test_shapes_range_determinism(name, shape):
    X = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    X0 = X.clone()
    a = Corruption(name, severity=3, random_state=0).generate(None, X)
    b = Corruption(name, severity=3, random_state=0).generate(None, X)
    assert a.shape == X.shape and a.dtype == X.dtype
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(X, X0)


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - {"saturate"}))
def test_stronger_with_severity(name, digits):
    sizes = [float((Corruption(name, s, random_state=0).generate(None, digits) - digits)
                   .abs().mean()) for s in (1, 3, 5)]
    assert sizes[0] <= sizes[1] * 1.02 and sizes[1] <= sizes[2] * 1.02
    assert sizes[2] > 0.01


def test_float64_and_custom_range():
    X = torch.rand(4, 1, 8, 8, dtype=torch.float64) * 2 - 1
    out = Corruption("contrast", 2, clip_min=-1, clip_max=1).generate(None, X)
    assert out.dtype == torch.float64
    assert out.min() >= -1 and out.max() <= 1
    # contrast pulls towards the mean in the [-1, 1] scale, like in [0, 1]
    ref = Corruption("contrast", 2).generate(None, (X + 1) / 2) * 2 - 1
    torch.testing.assert_close(out, ref)


def test_gaussian_noise_source():
    X = torch.full((2000, 1, 8, 8), 0.5)
    out = GaussianNoise(std=0.1, random_state=0).generate(None, X)
    assert abs(float((out - X).std()) - 0.1) < 0.005
    assert GaussianNoise(std=0.1).kind == "naturalistic"
    assert clone(GaussianNoise(std=0.2)).std == 0.2


# like-for-like transforms: same formula as the reference package at 32 px
LIKE_FOR_LIKE = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                 "gaussian_blur", "defocus_blur", "contrast", "brightness", "saturate",
                 "jpeg_compression", "snow"]


@pytest.mark.parametrize("name", LIKE_FOR_LIKE)
def test_perturbation_size_matches_reference(name, digits):
    ic = pytest.importorskip("imagecorruptions")
    import torch.nn.functional as F

    # 32 px colour images (the reference's minimum size) from upsampled digits
    X = F.interpolate(digits[:32], size=(32, 32), mode="bilinear").repeat(1, 3, 1, 1)
    X = X * 0.8 + 0.1 * torch.rand(32, 3, 1, 1, generator=torch.Generator().manual_seed(0))
    Xu8 = (X.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    Xq = torch.from_numpy(Xu8).permute(0, 3, 1, 2).float() / 255
    np.random.seed(0)  # noqa: NPY002 - the reference package draws from the global RNG
    for severity in range(1, 6):
        ours = float((Corruption(name, severity, random_state=0).generate(None, Xq) - Xq)
                     .abs().mean())
        ref = np.stack([ic.corrupt(im, severity=severity, corruption_name=name)
                        for im in Xu8]).astype(np.float64) / 255
        theirs = float(np.abs(ref - Xu8 / 255.0).mean())
        assert ours == pytest.approx(theirs, rel=0.1), severity


# ------------------------------------------- the paper's modifications
PAPER_TEN = ["brightness", "contrast", "gaussian_noise", "impulse_noise", "motion_blur", "snow",
             "elastic_transform", "perspective", "rotate", "obstruction"]


def test_the_papers_ten_are_there():
    from structnoise.sources import STRENGTH_TRANSFORMS

    assert set(PAPER_TEN) <= set(CORRUPTIONS)
    assert set(STRENGTH_TRANSFORMS) == {"elastic_transform", "perspective", "rotate",
                                        "obstruction"}


@pytest.mark.parametrize("name", ["elastic_transform", "perspective", "rotate", "obstruction"])
def test_strength_grows_the_change(name, digits):
    X = torch.nn.functional.interpolate(digits, size=(28, 28), mode="bilinear")
    sizes = [float((Corruption(name, strength=s, random_state=0).generate(None, X) - X)
                   .abs().mean()) for s in (0.2, 1.0, 2.0)]
    assert 0 < sizes[0] < sizes[1] < sizes[2]
    a = Corruption(name, strength=1.3, random_state=5).generate(None, X)
    assert torch.equal(a, Corruption(name, strength=1.3, random_state=5).generate(None, X))
    assert a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize("name", ["perspective", "obstruction"])
def test_severity_k_is_strength_0_4_k(name, digits):
    for k in (1, 3, 5):
        a = Corruption(name, k, random_state=0).generate(None, digits)
        b = Corruption(name, strength=0.4 * k, random_state=0).generate(None, digits)
        assert torch.equal(a, b)


def test_obstruction_is_one_black_square_of_the_stated_side():
    X = torch.full((50, 1, 28, 28), 0.7)
    out = Corruption("obstruction", strength=1.0, random_state=0).generate(None, X)
    side = round(0.4 * 1.0 * 28)
    black = out[:, 0] == 0
    assert torch.equal(black.sum((1, 2)), torch.full((50,), side * side))
    rows, cols = black.any(2), black.any(1)
    assert torch.equal(rows.sum(1), torch.full((50,), side))
    assert torch.equal(cols.sum(1), torch.full((50,), side))
    # random places: not all at the same position
    assert len({int(r.float().argmax()) for r in rows}) > 5
    assert torch.equal(out[~black[:, None]], X[~black[:, None]])


def test_rotate_strength_angle_range():
    """A single bright pixel off centre moves by at most the stated angle."""
    import math

    X = torch.zeros(400, 1, 29, 29)
    X[:, 0, 14, 24] = 1.0  # 10 px right of the centre
    out = Corruption("rotate", strength=0.5, random_state=0).generate(None, X)
    ys, xs = torch.meshgrid(torch.arange(29.0), torch.arange(29.0), indexing="ij")
    w = out[:, 0] / out[:, 0].sum((1, 2), keepdim=True)
    cy, cx = (w * ys).sum((1, 2)) - 14, (w * xs).sum((1, 2)) - 14
    angles = torch.rad2deg(torch.atan2(-cy, cx)).abs()
    assert float(angles.max()) <= 30 + 2  # 60 * s degrees, bilinear tolerance
    assert float(angles.max()) > 25  # the range is used
    assert math.isclose(float(angles.mean()), 15, abs_tol=3)  # uniform on [0, 30]


def test_perspective_is_identity_at_zero_distortion_and_shrinks_the_image():
    from structnoise.sources.corruptions import perspective_strength

    X = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(perspective_strength(X, 0.0, g), X, atol=1e-5, rtol=0)
    ones = torch.ones(200, 1, 28, 28)
    covered = [float(Corruption("perspective", strength=s, random_state=0)
                     .generate(None, ones).mean()) for s in (0.4, 1.2, 2.0)]
    # corners move inwards by up to 0.25 * s of half the size: the image
    # covers less of the frame as s grows, and never less than (1 - d)^2
    assert 1.0 > covered[0] > covered[1] > covered[2] > (1 - 0.5) ** 2


@pytest.mark.parametrize("kw,match", [
    (dict(name="contrast", strength=1.0), "strength applies to"),
    (dict(name="rotate", strength=0.0), r"strength must be in \(0.0, 2.0\]"),
    (dict(name="rotate", strength=2.5), "strength must be in"),
    (dict(name="obstruction", strength=-1), "strength must be in"),
    (dict(name="rotate", strength="strong"), "strength"),
])
def test_bad_strength(kw, match):
    with pytest.raises(ValueError, match=match):
        Corruption(**kw).generate(None, torch.rand(2, 1, 8, 8))


# ----------------------------------------------------------------- bad input
def test_unknown_name_lists_valid():
    with pytest.raises(ValueError, match="gaussian_noise.*translate|valid names"):
        Corruption("snowstorm").generate(None, torch.rand(2, 1, 8, 8))


@pytest.mark.parametrize("severity", [0, 6])
def test_severity_out_of_range(severity):
    with pytest.raises(ValueError, match="severity"):
        Corruption("contrast", severity).generate(None, torch.rand(2, 1, 8, 8))


def test_bad_images():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        Corruption("contrast").generate(None, torch.rand(8, 8))
    with pytest.raises(ValueError, match="clip"):
        Corruption("contrast").generate(None, torch.rand(2, 1, 8, 8) + 1)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        Corruption("contrast").generate(None, torch.rand(2, 2, 8, 8))
    with pytest.raises(ValueError, match="at least 8x8"):
        Corruption("contrast").generate(None, torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        Corruption("contrast").generate(None, torch.full((2, 1, 8, 8), float("nan")))


# ------------------------------------------- fast paths vs naive references
def _naive_conv_replicate(x, k):
    """Direct sliding-window correlation with replicate borders (slow, obvious)."""
    n, c, h, w = x.shape
    kh, kw = k.shape
    out = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    ii = min(max(i + a - kh // 2, 0), h - 1)
                    jj = min(max(j + b - kw // 2, 0), w - 1)
                    out[..., i, j] += k[a, b] * x[..., ii, jj]
    return out


def _disk(radius):
    size = int(np.ceil(radius))
    t = torch.arange(-size, size + 1, dtype=torch.float64)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= radius ** 2).double()
    return disk / disk.sum()


# radii below one pixel, fractional, and reaching past an 8 px image's edge
@pytest.mark.parametrize("radius", [0.5, 1.5, 3.0, 6.0, 9.0])
def test_disk_blur_matches_naive(radius):
    from structnoise.sources.corruptions import _disk_blur

    x = torch.rand(2, 3, 8, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(_disk_blur(x, radius), _naive_conv_replicate(x, _disk(radius)))


@pytest.mark.parametrize("radius, sigma", [(1.5, 0.5), (6.0, 0.5), (3.0, 1.2)])
def test_anti_aliased_disk_blur_matches_naive_stages(radius, sigma):
    # the documented order: Gaussian along W, disk, Gaussian along H, each
    # stage a direct correlation with replicate borders
    from structnoise.sources.corruptions import _disk_blur, _gaussian_kernel1d

    x = torch.rand(2, 3, 14, 17, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    k = _gaussian_kernel1d(sigma, "cpu").double()
    expected = _naive_conv_replicate(x, k[None, :])
    expected = _naive_conv_replicate(expected, _disk(radius))
    expected = _naive_conv_replicate(expected, k[:, None])
    torch.testing.assert_close(_disk_blur(x, radius, sigma), expected)


def test_separable_blur_matches_naive():
    from structnoise.sources.corruptions import _gaussian_kernel1d, _separable

    x = torch.rand(2, 1, 12, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    k = _gaussian_kernel1d(1.3, "cpu").double()
    torch.testing.assert_close(_separable(x, k, k), _naive_conv_replicate(x, torch.outer(k, k)))


def test_jpeg_dct_is_orthonormal_dct():
    from scipy.fft import dct

    from structnoise.sources.corruptions import _dct_matrix

    D = _dct_matrix("cpu", torch.float64).numpy()
    np.testing.assert_allclose(D, dct(np.eye(8), norm="ortho", axis=0), atol=1e-12)


def test_pixelate_equals_pooling_then_nearest_upsampling():
    # naive reference for the matrix form, on square and non-square images
    import torch.nn.functional as F

    for h, w in [(28, 28), (28, 20), (9, 33)]:
        X = torch.rand(20, 3, h, w, generator=torch.Generator().manual_seed(1))
        for severity in range(1, 6):
            c = SEVERITY_PARAMETERS["pixelate"][severity - 1]
            small = F.adaptive_avg_pool2d(X, (max(1, int(h * c)), max(1, int(w * c))))
            expected = F.interpolate(small, size=(h, w), mode="nearest").clamp(0, 1)
            # one block (a new tensor), and blocks written into the output
            for batch_size in (256, 6):
                got = Corruption("pixelate", severity, batch_size=batch_size).generate(None, X)
                torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def _naive_jpeg(x, quality):
    """Block by block with scipy's DCT, pixel by pixel colour formulas (slow, obvious)."""
    from scipy.fft import dctn, idctn

    from structnoise.sources.corruptions import _JPEG_CHROMA, _JPEG_LUMA, _quant_table

    img = x.double().numpy() * 255
    n, c, h, w = img.shape
    if c == 3:
        r, g, b = img[:, 0], img[:, 1], img[:, 2]
        img = np.stack([0.299 * r + 0.587 * g + 0.114 * b,
                        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
                        128 + 0.5 * r - 0.418688 * g - 0.081312 * b], 1)
    H, W = -(-h // 8) * 8, -(-w // 8) * 8
    img = np.pad(img - 128, ((0, 0), (0, 0), (0, H - h), (0, W - w)), mode="edge")
    out = np.empty_like(img)
    for ch in range(c):
        base = _JPEG_CHROMA if (c == 3 and ch > 0) else _JPEG_LUMA
        q = _quant_table(base, quality, "cpu", torch.float64).numpy()
        for i in range(0, H, 8):
            for j in range(0, W, 8):
                coef = dctn(img[:, ch, i:i + 8, j:j + 8], axes=(1, 2), norm="ortho")
                out[:, ch, i:i + 8, j:j + 8] = idctn(np.round(coef / q) * q, axes=(1, 2),
                                                     norm="ortho")
    rec = out[..., :h, :w] + 128
    if c == 3:
        yy, cb, cr = rec[:, 0], rec[:, 1] - 128, rec[:, 2] - 128
        rec = np.stack([yy + 1.402 * cr, yy - 0.344136 * cb - 0.714136 * cr,
                        yy + 1.772 * cb], 1)
    return torch.from_numpy(np.round(np.clip(rec, 0, 255)) / 255)


@pytest.mark.parametrize("shape", [(3, 3, 32, 32), (2, 1, 28, 20), (2, 3, 13, 17)])
def test_jpeg_matches_blockwise_naive(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    for severity in (1, 3, 5):
        quality = SEVERITY_PARAMETERS["jpeg_compression"][severity - 1]
        ours = Corruption("jpeg_compression", severity).generate(None, x).double()
        diff = (ours - _naive_jpeg(x, quality)).abs()
        # float32 against float64: a value on a rounding tie may land one level off
        assert float(diff.max()) <= 1 / 255 + 1e-6
        assert float((diff > 1e-6).double().mean()) < 1e-3


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_functions_return_new_tensors(name):
    """Corruption clamps the result in place: it must never be a view of the input."""
    from structnoise.sources import CORRUPTIONS as functions

    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for severity in (1, 5):
        y = functions[name](x, severity, torch.Generator().manual_seed(1))
        assert y.shape == x.shape
        assert y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


@pytest.mark.parametrize("params", [dict(severity=True), dict(strength=True, name="rotate")])
def test_boolean_levels_are_refused(params):
    with pytest.raises(ValueError, match="must be a number"):
        Corruption(**params).generate(None, torch.rand(2, 1, 8, 8))
