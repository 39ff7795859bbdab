"""Naturalistic image corruptions, batched in torch.

The ImageNet-C / MNIST-C families (Hendrycks & Dietterich 2019; Mu & Gilmer
2019) that make sense for small images, written for whole batches on any
device: no per-image Python loop, 1 or 3 channels, any size from 8x8 up.
The reference implementation (``imagecorruptions``) runs per image in numpy
and rejects images under 32 px.

Parameters follow ``imagecorruptions`` and grow with the severity (1-5).
Spatial parameters (blur radii, fog scale, elastic displacement) are given
in pixels of a 32 px image and scaled by ``H / 32``, so a 32 px image gets
the reference's values and an 8 px one a quarter of them. Geometric
corruptions (MNIST-C style) draw a random sign/direction per image.

Every function takes images ``x`` in [0, 1] of shape (N, C, H, W), an
integer ``severity`` and a :class:`torch.Generator`, and returns a new
tensor (never a view of ``x``). Additive noises and snow may leave [0, 1]:
:class:`Corruption` clips the result, as it stores it.
"""

import contextlib
import math
import types
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F

from .._inference import batches
from .._param_validation import Interval, StrOptions
from .._random import block_seed, seed_of
from .._sampling import bernoulli_positions, normal, poisson_capped, uniform
from .base import ModificationSource

__all__ = ["CORRUPTIONS", "Corruption", "GaussianNoise", "SEVERITY_PARAMETERS",
           "STRENGTH_TRANSFORMS", "STRENGTH_PARAMETERS"]

#: the parameter of each corruption at severities 1..5 (see each function)
SEVERITY_PARAMETERS = {
    "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],       # noise std
    "shot_noise": [60, 25, 12, 5, 3],                        # photons per unit (lower: noisier)
    "impulse_noise": [0.03, 0.06, 0.09, 0.17, 0.27],         # fraction of salt & pepper pixels
    "speckle_noise": [0.15, 0.2, 0.35, 0.45, 0.6],           # multiplicative noise std
    "gaussian_blur": [1, 2, 3, 4, 6],                        # sigma, px at 32 px
    "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],  # disk radius, alias sigma
    "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],       # radius, sigma (px)
    "zoom_blur": [1.11, 1.16, 1.21, 1.26, 1.31],             # largest zoom factor
    "fog": [(1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],  # strength, decay
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],                  # contrast kept
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],                 # value added (HSV V)
    "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],  # S * a + b
    "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],                  # downsampling factor
    "jpeg_compression": [25, 18, 15, 10, 7],                 # JPEG quality
    "elastic_transform": [0.5, 0.75, 1.0, 1.25, 1.5],        # displacement, px at 8 px scale
    "rotate": [6, 12, 18, 24, 30],                           # degrees, random sign
    "shear": [0.1, 0.15, 0.2, 0.25, 0.3],                    # shear factor, random sign
    "scale": [0.9, 0.8, 0.7, 0.6, 0.5],                      # zoom-out factor
    "translate": [0.05, 0.1, 0.15, 0.2, 0.25],               # shift, fraction of the size
    # (mean, sd, zoom, threshold, blur radius px, blur sigma px, image kept)
    "snow": [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
             (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
             (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)],
    "perspective": [0.1, 0.2, 0.3, 0.4, 0.5],                # corner distortion (0.25 * s)
    "obstruction": [0.16, 0.32, 0.48, 0.64, 0.8],            # square side, fraction (0.4 * s)
}

#: the paper's continuous strength ``s`` (in (0, 2]) -> parameter, per transform
STRENGTH_PARAMETERS = {
    "elastic_transform": "alpha = 35 * s (torchvision's ElasticTransform, sigma 5, at 28 px)",
    "perspective": "distortion_scale = 0.25 * s (torchvision's RandomPerspective)",
    "rotate": "angle uniform in [-60 * s, 60 * s] degrees (torchvision's RandomRotation)",
    "obstruction": "a black square of side 0.4 * s * H px at a random place",
}

#: severities 1-5 of the strength-based transforms are s = 0.4, 0.8, ..., 2.0
SEVERITY_STRENGTHS = (0.4, 0.8, 1.2, 1.6, 2.0)
#: the documented range of ``strength``
STRENGTH_RANGE = (0.0, 2.0)


def _param(name, severity):
    return SEVERITY_PARAMETERS[name][severity - 1]


def _spatial(x):
    """Scale of spatial parameters: 1 at 32 px, H / 32 above, 0.5 below 16 px."""
    return max(x.shape[-2] / 32.0, 0.5)


def _randn(x, g):
    return normal(x.shape, g, device=x.device, dtype=x.dtype)


def _rand(shape, x, g):
    return uniform(shape, g, device=x.device, dtype=x.dtype)


# ------------------------------------------------------------------ noise
def gaussian_noise(x, severity, g):
    """Additive Gaussian noise."""
    # in place on the fresh draw: one pass, no temporaries
    return _randn(x, g).mul_(_param("gaussian_noise", severity)).add_(x)


def shot_noise(x, severity, g):
    """Poisson (photon) noise: ``Poisson(c x) / c`` for ``c`` photons per unit."""
    c = _param("shot_noise", severity)
    # counts above c clip to white anyway, so only min(count, c) is drawn
    return poisson_capped(x.clamp(0, 1).mul_(c), c, g).div_(c)


def impulse_noise(x, severity, g):
    """Salt and pepper noise: each pixel (and channel) independently, with the
    severity's probability, becomes black or white (even odds)."""
    amount = _param("impulse_noise", severity)
    out = x.clone()
    flat = out.view(-1)
    # the hit pixels only (a tenth of them): ~n * amount draws, not n
    hit = bernoulli_positions(flat.numel(), amount, g, x.device)
    white = uniform(hit.shape, g, device=x.device) < 0.5
    flat[hit] = white.to(x.dtype)
    return out


def speckle_noise(x, severity, g):
    """Multiplicative Gaussian noise."""
    noise = _randn(x, g)
    # into the fresh draw: one image-sized buffer, not two
    return torch.addcmul(x, x, noise, value=_param("speckle_noise", severity), out=noise)


# ------------------------------------------------------------------- blur
def _conv_matrix(kernel, size):
    """(size, size) matrix applying a 1-D kernel with replicate borders.

    Blurring along an axis as one matrix product is much faster on CPU than
    a depthwise convolution, and folds the border handling in for free.
    """
    r = kernel.shape[0] // 2
    rows = torch.arange(size, device=kernel.device)[:, None]
    taps = torch.arange(kernel.shape[0], device=kernel.device)[None, :]
    cols = (rows + taps - r).clamp(0, size - 1)
    M = torch.zeros(size, size, dtype=kernel.dtype, device=kernel.device)
    M.scatter_add_(1, cols, kernel.expand(size, -1).contiguous())
    return M


def _separable(x, kh, kw):
    """Apply 1-D kernels along H then W (replicate borders), batched."""
    h, w = x.shape[-2:]
    Mh = _conv_matrix(kh.to(x), h)
    Mw = _conv_matrix(kw.to(x), w)
    return torch.matmul(Mh @ x, Mw.T)


def _disk_halfwidths(radius):
    """Half-width of the disk ``dx^2 + dy^2 <= radius^2`` on each row ``dy = 0..R``."""
    return [int(math.floor(math.sqrt(radius * radius - dy * dy)))
            for dy in range(int(math.floor(radius)) + 1)]


def _disk_blur(x, radius, sigma=0.0):
    """Mean over the disk of ``radius`` px around every pixel, replicate borders;
    with ``sigma``, anti-aliased by a Gaussian: along W before the disk,
    along H after it (each stage with replicate borders).

    Each row of a disk is a run of pixels, so the disk sum is a sum of
    horizontal box sums (differences of one cumulative sum along W, one per
    distinct run length), each shifted vertically: two passes over the
    images per row of the disk, against an FFT per image plane (5x slower
    on 2 cores at radius 6). The Gaussian along W, the replicate padding
    and the cumulative sum are linear along W: one matrix product makes the
    padded cumulative sums. The Gaussian along H and the division by the
    disk's area are another. Together 1.2x faster than the disk by a padded
    copy and cumsum followed by a separable Gaussian. The Gaussian commutes
    with the disk away from the borders (8 px at radius 6, sigma 0.5); at
    the borders, each stage replicates its own input.
    """
    n, c, h, w = x.shape
    widths = _disk_halfwidths(radius)
    R = len(widths) - 1
    planes = x.reshape(n * c, h, w)
    kernel = _gaussian_kernel1d(sigma, x.device) if sigma > 0 else None
    along_w = (torch.eye(w, dtype=x.dtype, device=x.device) if kernel is None
               else _conv_matrix(kernel.to(x), w))                   # (w, w)
    # padded column j = -R - 1 .. w + R - 1 is column clamp(j) of the blurred row
    cols = torch.arange(-R - 1, w + R, device=x.device).clamp_(0, w - 1)
    to_cums = along_w[cols].T.cumsum(1)                               # (w, w + 2R + 1)
    # zero columns up to a multiple of 16: the product runs 1.2x faster at
    # 48 columns than at 45 (2 cores)
    to_cums = F.pad(to_cums, (0, -to_cums.shape[1] % 16))
    cums = (planes.reshape(-1, w) @ to_cums).reshape(n * c, h, -1)

    def box(half):
        # sum over columns col - half .. col + half of every row
        return cums[..., R + 1 + half:R + 1 + half + w] - cums[..., R - half:R - half + w]

    # one box image per distinct run length (rows of a disk share them); the
    # centre row's starts the sum, in its own buffer
    boxes = {}
    out = box(widths[0])
    taps = 2 * widths[0] + 1
    for dy in range(1, R + 1):
        half = widths[dy]
        if half not in boxes:
            boxes[half] = box(half)
        b = boxes[half]
        taps += 2 * (2 * half + 1)
        k = min(dy, h)
        # row i gets box row i + dy and row i - dy, clamped to the image
        out[:, :h - k].add_(b[:, k:])
        out[:, h - k:].add_(b[:, h - 1:h])
        out[:, k:].add_(b[:, :h - k])
        out[:, :k].add_(b[:, :1])
    if kernel is None:
        return out.div_(taps).reshape(n, c, h, w)
    return torch.matmul(_conv_matrix(kernel.to(x), h) / taps, out).reshape(n, c, h, w)


def _gaussian_kernel1d(sigma, device):
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).float()


def _gaussian_blur(x, sigma):
    """Gaussian blur with replicate borders (a new tensor: callers may clamp in place)."""
    if sigma <= 0:
        return x.clone()
    k = _gaussian_kernel1d(sigma, x.device)
    return _separable(x, k, k)


def gaussian_blur(x, severity, g):
    """Gaussian blur (sigma in px at 32 px, scaled with the image)."""
    return _gaussian_blur(x, _param("gaussian_blur", severity) * _spatial(x))


def defocus_blur(x, severity, g):
    """Disk (out-of-focus) blur, anti-aliased with a small Gaussian."""
    radius, alias = _param("defocus_blur", severity)
    sigma = alias * _spatial(x)
    return _disk_blur(x, max(radius * _spatial(x), 0.5), sigma if sigma > 0.05 else 0.0)


def _motion_blur(x, radius, sigma, angle):
    """Linear motion blur of each image along its own ``angle`` (radians, (n,))."""
    n, c, h, w = x.shape
    size = 2 * int(math.ceil(radius)) + 1
    t = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
    # one-sided Gaussian weights along the motion direction, as in the reference
    weights = torch.exp(-0.5 * (t.clamp(min=0) / max(sigma, 1e-3)) ** 2) * (t >= 0)
    weights = weights / weights.sum()
    # rasterise each image's line kernel with bilinear splatting: (n, size, size)
    px = size // 2 + t[None, :] * torch.cos(angle)[:, None]
    py = size // 2 - t[None, :] * torch.sin(angle)[:, None]
    grid = torch.arange(size, device=x.device, dtype=x.dtype)
    wx = (1 - (grid[None, None, :] - px[..., None]).abs()).clamp(min=0)   # (n, L, size)
    wy = (1 - (grid[None, None, :] - py[..., None]).abs()).clamp(min=0)
    kernels = torch.einsum("nl,nly,nlx->nyx", weights.expand(n, -1), wy, wx)
    kernels = kernels / kernels.sum((1, 2), keepdim=True)
    # grouped convolution: every (image, channel) plane with its image's kernel
    k = kernels.repeat_interleave(c, 0)[:, None]
    pad = (size // 2, size // 2, size // 2, size // 2)
    xp = F.pad(x.reshape(1, n * c, h, w), pad, mode="replicate")
    return F.conv2d(xp, k, groups=n * c).reshape(n, c, h, w)


def motion_blur(x, severity, g):
    """Linear motion blur at a random angle in [-45, 45] degrees per image."""
    radius, sigma = _param("motion_blur", severity)
    angle = (_rand((x.shape[0],), x, g) * 90 - 45) * math.pi / 180
    return _motion_blur(x, radius * _spatial(x), sigma * _spatial(x), angle)


def _affine(x, theta):
    """Warp each image by its own 2x3 affine matrix (zeros outside)."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _scale_theta(n, s, x):
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1.0 / s
    theta[:, 1, 1] = 1.0 / s
    return theta


def zoom_blur(x, severity, g):
    """Mean of the image zoomed in by factors from 1 up to the given one."""
    top = _param("zoom_blur", severity)
    step = 0.01 if severity <= 2 else (0.02 if severity <= 4 else 0.03)
    zooms = np.arange(1.0, top, step)[1:]
    out = x.clone()
    n = x.shape[0]
    for z in zooms:  # a handful of factors, each a batched warp
        out += F.grid_sample(x, F.affine_grid(_scale_theta(n, z, x), list(x.shape),
                                              align_corners=False),
                             padding_mode="border", align_corners=False)
    return out / (len(zooms) + 1)


# ----------------------------------------------------------------- weather
def _fractal_noise(n, h, w, decay, x, g):
    """Low-frequency noise in [0, 1]: octaves of upsampled uniform noise."""
    size = max(h, w)
    field = torch.zeros(n, 1, h, w, device=x.device, dtype=x.dtype)
    amp, res, total = 1.0, 2, 0.0
    while res <= size:
        coarse = _rand((n, 1, res, res), x, g)
        field += amp * F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        total += amp
        amp /= decay
        res *= 2
    field = field / total
    lo = field.amin((2, 3), keepdim=True)
    hi = field.amax((2, 3), keepdim=True)
    return (field - lo) / (hi - lo + 1e-8)


def fog(x, severity, g):
    """Fog: added low-frequency plasma-like haze, then contrast renormalised."""
    strength, decay = _param("fog", severity)
    n, c, h, w = x.shape
    peak = x.amax((1, 2, 3), keepdim=True)
    haze = _fractal_noise(n, h, w, decay, x, g)
    out = x + strength * haze * 0.4  # the reference's haze averages ~0.4 of its range
    return out * peak / (peak + strength * 0.4)


# ----------------------------------------------------------------- digital
def contrast(x, severity, g):
    """Pull pixels towards each image's per-channel mean."""
    c = _param("contrast", severity)
    means = x.mean((2, 3), keepdim=True)
    return (x - means) * c + means


def brightness(x, severity, g):
    """Raise the HSV value channel (plain addition for grey images)."""
    c = _param("brightness", severity)
    if x.shape[1] != 3:
        return x + c
    v = x.amax(1, keepdim=True)
    v_new = (v + c).clamp(max=1)
    # scaling all channels by V'/V keeps hue and saturation exactly
    return torch.where(v > 0, x * v_new / v.clamp(min=1e-8), v_new.expand_as(x))


def saturate(x, severity, g):
    """Scale the HSV saturation (colour only; grey images are unchanged)."""
    a, b = _param("saturate", severity)
    if x.shape[1] != 3:
        return x.clone()
    v = x.amax(1, keepdim=True)
    mn = x.amin(1, keepdim=True)
    s = torch.where(v > 0, (v - mn) / v.clamp(min=1e-8), torch.zeros_like(v))
    s_new = (s * a + b).clamp(0, 1)
    ratio = torch.where(s > 0, s_new / s.clamp(min=1e-8), torch.zeros_like(s))
    out = v - (v - x) * ratio
    # a grey pixel given saturation b > 0 has no hue: leave it grey, as HSV does
    return torch.where(s > 0, out, x)


def _pixelate_operators(size, small, x):
    """Box-average ``size`` px to ``small`` cells, then nearest upsampling, along one axis.

    Returns the pooling matrix ``(small, size)`` and the cell each output
    pixel copies ``(size,)``. Both come from applying
    ``adaptive_avg_pool1d`` and ``interpolate(mode="nearest")`` to identity
    matrices, so the cells and the nearest indices are exactly torch's.
    """
    pool = F.adaptive_avg_pool1d(torch.eye(size, dtype=x.dtype, device=x.device)[None],
                                 small)[0].T                                   # (small, size)
    up = F.interpolate(torch.eye(small, dtype=x.dtype, device=x.device)[None, None],
                       size=(size, small), mode="nearest")[0, 0]               # (size, small)
    return pool, up.argmax(1)


def pixelate(x, severity, g, out=None):
    """Box downsampling then nearest-neighbour upsampling.

    Both steps are linear along each axis. Along H the image is pooled
    first (a batched product with the small pooling matrix), along W pooled
    and upsampled at once (one product with a (W, W) matrix) on those few
    rows, and the rows are then copied out along H: the full-size image is
    written once, into ``out`` when given (clamped to [0, 1] on the small
    rows first). 4x faster on CPU than pooling then interpolating (1000
    32x32 colour images, 2 cores), and equal to it to float rounding.
    """
    c = _param("pixelate", severity)
    n, ch, h, w = x.shape
    pool_h, up_h = _pixelate_operators(h, max(1, int(h * c)), x)
    pool_w, up_w = _pixelate_operators(w, max(1, int(w * c)), x)
    planes = x.reshape(n * ch, h, w)
    pooled = torch.bmm(pool_h.expand(n * ch, -1, -1), planes)       # (n ch, small_h, w)
    along_w = pool_w[up_w].T                                          # (w, w): pool, copy out
    rows = (pooled.reshape(-1, w) @ along_w).reshape(n * ch, -1, w)   # (n ch, small_h, w)
    if out is None:
        return rows.index_select(1, up_h).reshape(n, ch, h, w)
    torch.index_select(rows.clamp_(0, 1), 1, up_h, out=out.view(n * ch, h, w))
    return out


_JPEG_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]],
    dtype=torch.float32)
_JPEG_CHROMA = torch.full((8, 8), 99.0)
_JPEG_CHROMA[:4, :4] = torch.tensor([[17, 18, 24, 47], [18, 21, 26, 66],
                                     [24, 26, 56, 99], [47, 66, 99, 99]], dtype=torch.float32)


def _dct_matrix(device, dtype):
    k = torch.arange(8, dtype=torch.float64)
    m = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m.to(device=device, dtype=dtype)


def _quant_table(base, quality, device, dtype):
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    q = torch.floor((base * scale + 50) / 100).clamp(1, 255)
    return q.to(device=device, dtype=dtype)


#: RGB (0-255) -> YCbCr (JFIF), and back
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                              [-0.168736, -0.331264, 0.5],
                              [0.5, -0.418688, -0.081312]], dtype=torch.float64)
_YCBCR_TO_RGB = torch.tensor([[1.0, 0.0, 1.402],
                              [1.0, -0.344136, -0.714136],
                              [1.0, 1.772, 0.0]], dtype=torch.float64)


def jpeg_compression(x, severity, g):
    """JPEG round trip (8x8 DCT, standard tables, no chroma subsampling).

    Every step is a matrix product on whole images: the colour transforms
    over the channels, and the 8x8 block DCT as ``B_H @ plane @ B_W.T`` with
    block-diagonal ``B = I kron D``, so no 8x8 tiles are ever gathered (4x
    the arithmetic of per-block products, but in shapes GEMM runs fast,
    without the transposed copies).
    """
    quality = _param("jpeg_compression", severity)
    n, c, h, w = x.shape
    # two image-sized buffers, written in turn by every product (out=): fresh
    # memory per step costs more than the arithmetic at these sizes
    if c == 3:  # level-shifted YCbCr: Y - 128, Cb, Cr
        y = torch.matmul(_RGB_TO_YCBCR.to(x) * 255.0, x.reshape(n, 3, h * w)).reshape(n, 3, h, w)
        y[:, 0] -= 128
    else:
        y = x * 255.0 - 128
    ph, pw = (-h) % 8, (-w) % 8
    if ph or pw:
        y = F.pad(y, (0, pw, 0, ph), mode="replicate")
    H, W = y.shape[-2:]
    D = _dct_matrix(x.device, x.dtype)
    BH = torch.block_diag(*[D] * (H // 8))
    BW = BH if W == H else torch.block_diag(*[D] * (W // 8))
    other = torch.empty_like(y)
    coef = torch.matmul(torch.matmul(BH, y, out=other), BW.T, out=y)
    tables = [_JPEG_LUMA] + [_JPEG_CHROMA] * (c - 1) if c == 3 else [_JPEG_LUMA] * c
    q = torch.stack([_quant_table(t, quality, x.device, x.dtype) for t in tables])
    q = q.repeat(1, H // 8, W // 8)                        # (c, H, W): each block's table
    coef.div_(q).round_().mul_(q)
    rec = torch.matmul(torch.matmul(BH.T, coef, out=other), BW, out=coef)[..., :h, :w]
    if c == 3:
        rgb = other[..., :h, :w] if (ph or pw) else other
        rec = torch.matmul(_YCBCR_TO_RGB.to(x), rec.reshape(n, 3, h * w),
                           out=rgb.reshape(n, 3, h * w)).reshape(n, 3, h, w)
    return rec.add_(128).clamp_(0, 255).round_().div_(255.0)


def _displace(x, field_px):
    """Sample each pixel from where ``field_px`` (n, 2, H, W; x then y, in px) points."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # displacement in pixels -> normalised grid units (2 / size per pixel)
    offset = field_px.permute(0, 2, 3, 1) * torch.tensor([2.0 / w, 2.0 / h],
                                                         device=x.device, dtype=x.dtype)
    return F.grid_sample(x, grid + offset, padding_mode="zeros", align_corners=False)


def elastic_strength(x, s, g):
    """torchvision-style elastic warp with ``alpha = 35 * s`` (sigma 5 px at 28 px).

    A uniform [-1, 1] field per axis, Gaussian-smoothed, displaces each pixel
    by ``field * alpha / 2`` px (torchvision's normalised-grid convention);
    alpha and sigma scale with ``H / 28``.
    """
    n, c, h, w = x.shape
    size_scale = h / 28.0
    alpha, sigma = 35.0 * s * size_scale, 5.0 * size_scale
    field = _gaussian_blur(_rand((n, 2, h, w), x, g) * 2 - 1, sigma)
    return _displace(x, field * (alpha / 2))


def elastic_transform(x, severity, g):
    """Smooth random displacement field (MNIST-C style)."""
    n, c, h, w = x.shape
    disp_px = _param("elastic_transform", severity) * h / 8.0
    sigma = max(h / 8.0, 1.0)
    field = normal((n, 2, h, w), g, device=x.device, dtype=x.dtype)
    field = _gaussian_blur(field, sigma)
    field = field / field.flatten(1).std(1).clamp(min=1e-8)[:, None, None, None]
    return _displace(x, field * disp_px)


def _grey(x):
    """Luma of RGB images (ITU-R 601, as OpenCV); grey images as they are."""
    if x.shape[1] != 3:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def snow(x, severity, g):
    """Snow: a thresholded, zoomed, motion-blurred flake layer over a whitened image.

    The reference's recipe (``imagecorruptions.snow``) for whole batches:
    Gaussian flakes, centre zoom, threshold, motion blur at an angle in
    [-135, -45] degrees, rounded to 8 bits, added with its 180-degree
    rotation to ``k * x + (1 - k) * max(x, 1.5 * grey + 0.5)``.
    """
    loc, sd, zoom, threshold, radius, sigma, kept = _param("snow", severity)
    n, c, h, w = x.shape
    layer = normal((n, 1, h, w), g, device=x.device, dtype=x.dtype).mul_(sd).add_(loc)
    ch, cw = int(math.ceil(h / zoom)), int(math.ceil(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    layer = F.interpolate(layer[..., top:top + ch, left:left + cw], size=(h, w),
                          mode="bilinear", align_corners=False)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    angle = (_rand((n,), x, g) * 90 - 135) * math.pi / 180
    layer = _motion_blur(layer, radius * _spatial(x), sigma * _spatial(x), angle)
    layer = torch.round(layer * 255) / 255
    whitened = kept * x + (1 - kept) * torch.maximum(x, _grey(x) * 1.5 + 0.5)
    return whitened + layer + torch.flip(layer, (-2, -1))


# --------------------------------------------------------------- geometric
def _random_sign(n, x, g):
    return torch.where(_rand((n,), x, g) < 0.5, -1.0, 1.0).to(x.dtype)


def _rotation(x, a):
    """Rotate each image by its own angle ``a`` (radians, shape (n,))."""
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a), torch.cos(a)
    return _affine(x, theta)


def rotate(x, severity, g):
    """Rotation by the given angle, random sign per image."""
    n = x.shape[0]
    return _rotation(x, _param("rotate", severity) * math.pi / 180 * _random_sign(n, x, g))


def rotate_strength(x, s, g):
    """Rotation by an angle uniform in [-60 * s, 60 * s] degrees per image."""
    return _rotation(x, (_rand((x.shape[0],), x, g) * 2 - 1) * 60.0 * s * math.pi / 180)


def perspective_strength(x, s, g):
    """Random perspective with ``distortion_scale = 0.25 * s`` (torchvision's recipe).

    Each corner moves inwards by up to ``distortion_scale`` of half the
    size; the image is warped so that its corners land there (zeros
    outside). One homography per image, solved in a batch.
    """
    n, c, h, w = x.shape
    d = min(0.25 * s, 1.0)
    half_w, half_h = (w - 1) / 2.0, (h - 1) / 2.0
    u = uniform((n, 4, 2), g, device=x.device, dtype=torch.float64)
    corners = torch.tensor([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]],
                           dtype=torch.float64, device=x.device)
    inward = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=torch.float64,
                          device=x.device)
    ends = corners + inward * u * torch.tensor([d * half_w, d * half_h], dtype=torch.float64,
                                               device=x.device)
    # homography mapping output (end) points to input (start) points
    ex, ey = ends[..., 0], ends[..., 1]
    sx, sy = corners[:, 0].expand(n, 4), corners[:, 1].expand(n, 4)
    zeros, ones = torch.zeros_like(ex), torch.ones_like(ex)
    rows_x = torch.stack([ex, ey, ones, zeros, zeros, zeros, -ex * sx, -ey * sx], -1)
    rows_y = torch.stack([zeros, zeros, zeros, ex, ey, ones, -ex * sy, -ey * sy], -1)
    A = torch.cat([rows_x, rows_y], 1)
    b = torch.cat([sx, sy], 1)
    coef = torch.linalg.solve(A, b)                                   # (n, 8)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64, device=x.device),
                            torch.arange(w, dtype=torch.float64, device=x.device),
                            indexing="ij")
    a_, b_, c_, d_, e_, f_, g_, h_ = (coef[:, i, None, None] for i in range(8))
    den = g_ * xs + h_ * ys + 1
    src_x = (a_ * xs + b_ * ys + c_) / den
    src_y = (d_ * xs + e_ * ys + f_) / den
    grid = torch.stack([2 * src_x / max(w - 1, 1) - 1, 2 * src_y / max(h - 1, 1) - 1], -1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=True)


def obstruction_strength(x, s, g):
    """A black square of side ``round(0.4 * s * H)`` px at a random place per image."""
    n, c, h, w = x.shape
    side = int(min(max(round(0.4 * s * h), 1), h, w))
    top = (_rand((n,), x, g) * (h - side + 1)).floor().clamp(max=h - side)
    left = (_rand((n,), x, g) * (w - side + 1)).floor().clamp(max=w - side)
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[None, :, None]
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < top[:, None, None] + side)
              & (cols >= left[:, None, None]) & (cols < left[:, None, None] + side))
    return x * (~inside)[:, None].to(x.dtype)


def perspective(x, severity, g):
    """Random perspective, severity k = strength 0.4 * k."""
    return perspective_strength(x, SEVERITY_STRENGTHS[severity - 1], g)


def obstruction(x, severity, g):
    """Black square occluder, severity k = strength 0.4 * k."""
    return obstruction_strength(x, SEVERITY_STRENGTHS[severity - 1], g)


def shear(x, severity, g):
    """Horizontal shear, random sign per image."""
    n = x.shape[0]
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).repeat(n, 1, 1)
    theta[:, 0, 1] = _param("shear", severity) * _random_sign(n, x, g)
    return _affine(x, theta)


def scale(x, severity, g):
    """Zoom out about the centre (the digit shrinks)."""
    return _affine(x, _scale_theta(x.shape[0], _param("scale", severity), x))


def translate(x, severity, g):
    """Shift by a fraction of the size in a random direction per image."""
    n = x.shape[0]
    angle = _rand((n,), x, g) * 2 * math.pi
    shift = 2 * _param("translate", severity)  # grid units span 2
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).repeat(n, 1, 1)
    theta[:, 0, 2] = shift * torch.cos(angle)
    theta[:, 1, 2] = shift * torch.sin(angle)
    return _affine(x, theta)


#: name -> batched corruption function ``f(x, severity, generator)``
CORRUPTIONS = {f.__name__: f for f in (
    gaussian_noise, shot_noise, impulse_noise, speckle_noise,
    gaussian_blur, defocus_blur, motion_blur, zoom_blur,
    fog,
    contrast, brightness, saturate, pixelate, jpeg_compression, elastic_transform,
    rotate, shear, scale, translate,
    snow, perspective, obstruction,
)}

#: name -> batched transform ``f(x, strength, generator)`` at the paper's strength
STRENGTH_TRANSFORMS = {
    "elastic_transform": elastic_strength,
    "perspective": perspective_strength,
    "rotate": rotate_strength,
    "obstruction": obstruction_strength,
}


#: corruptions that take ``out=`` and write their images there, clamped
_CLAMPED_INTO_OUT = {"pixelate"}


def _generator(seed, device):
    """A torch.Generator on ``device`` seeded with ``seed`` (a fresh seed when None)."""
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


#: images per separately seeded block when a random_state is given
_SEED_BLOCK = 256


_IMAGE_SOURCE_CONSTRAINTS = {
    "random_state": ["random_state"],
    "clip_min": [Real],
    "clip_max": [Real],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "verbose": ["verbose"],
}


class _ImageSource(ModificationSource):
    """Shared body: validate, rescale to [0, 1], apply in batches, map back."""

    def _apply(self, x01, g, out=None):
        """The modified images (new tensors, values in [0, 1] once clamped).

        With ``out`` (the block's place in the output, same dtype), an
        implementation may instead write them there already clamped and
        return ``out``: one pass over the images fewer.
        """
        raise NotImplementedError

    def _check_images(self, X):
        if X.shape[1] not in (1, 3):
            raise ValueError(f"Images must have 1 or 3 channels; got {X.shape[1]}.")
        if min(X.shape[-2:]) < 8:
            raise ValueError(f"Images must be at least 8x8; got {tuple(X.shape[-2:])}.")

    @contextlib.contextmanager
    def _prepare(self, model, X, y):
        """The images' range and the randomness; the model is ignored.

        With a random_state, fixed blocks of images each get a generator
        seeded from it and their position (the same images whatever
        batch_size); without one, one generator runs through all batches.
        """
        lo, span = float(self.clip_min), float(self.clip_max - self.clip_min)
        seed = seed_of(self.random_state)
        with torch.no_grad():
            yield types.SimpleNamespace(
                lo=lo, span=span, unit=lo == 0.0 and span == 1.0, seed=seed,
                generator=None if seed is not None else _generator(None, X.device),
                dtype=X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float32)

    def _blocks(self, n_samples, state):
        return batches(n_samples, _SEED_BLOCK if state.seed is not None else self.batch_size)

    _writes_into_output = True

    def _generate_batch(self, state, X, y, *, index, rows, out=None):
        g = state.generator or _generator(block_seed(state.seed, index), X.device)
        x01 = X.to(state.dtype)
        if not state.unit:  # the usual [0, 1] range needs no rescaling
            x01 = (x01 - state.lo) / state.span
        if out is not None and out.dtype != x01.dtype:
            out = None  # another dtype: the template casts and stores the block
        mod = self._apply(x01, g, out=out)
        if out is None:
            # the corruption functions return new tensors, never views of
            # the input, so clamping in place leaves X untouched
            out = mod.clamp_(0, 1)
        elif mod is not out:
            torch.clamp(mod, 0, 1, out=out)  # clamp and store in one pass
        return out if state.unit else out.mul_(state.span).add_(state.lo)


class Corruption(_ImageSource):
    """A naturalistic corruption from :data:`CORRUPTIONS` at a severity.

    Parameters
    ----------
    name : str, default="gaussian_noise"
        One of ``CORRUPTIONS`` (see :data:`SEVERITY_PARAMETERS` for what each
        severity means).
    severity : int, default=3
        1 (mild) to 5 (strong).
    strength : float in (0, 2] or None, default=None
        The paper's continuous strength ``s`` for the transforms of
        :data:`STRENGTH_TRANSFORMS` (elastic_transform: ``alpha = 35 s``;
        perspective: distortion ``0.25 s``; rotate: angle uniform in
        ``[-60 s, 60 s]`` degrees; obstruction: a black square of side
        ``0.4 s H``). When given it replaces ``severity``. For perspective
        and obstruction, severity ``k`` is strength ``0.4 k``.
    random_state : int, RandomState or None, default=None
        Seeds the corruption's randomness (same seed, same output).
    clip_min, clip_max : float, default=0.0, 1.0
        Valid pixel range.
    batch_size : int, default=1024
        Images processed at once without a ``random_state``; with one, blocks
        of 256 images are each seeded from it and their position, so the
        result does not depend on the batching.
    verbose : int, default=0
        Show a progress bar (on a terminal).

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import Corruption, CORRUPTIONS
    >>> len(CORRUPTIONS) >= 15
    True
    >>> X = torch.rand(5, 1, 8, 8)
    >>> Corruption("gaussian_blur", severity=2).generate(None, X).shape
    torch.Size([5, 1, 8, 8])
    """

    def describe(self):
        """The corruption's name as family; its strength, or else its severity.

        Returns
        -------
        description : dict
            ``family``, ``kind``, ``strength``, ``strength_unit``
            (``"strength"`` or ``"severity"``).
        """
        if self.strength is not None:
            return {"family": self.name, "kind": self.kind, "strength": float(self.strength),
                    "strength_unit": "strength"}
        return {"family": self.name, "kind": self.kind, "strength": float(self.severity),
                "strength_unit": "severity"}

    _parameter_constraints = {
        "name": [StrOptions(set(CORRUPTIONS))],
        "severity": [Interval(Integral, 1, 5, closed="both")],
        "strength": [Real, None],
        **_IMAGE_SOURCE_CONSTRAINTS,
    }

    def __init__(self, name="gaussian_noise", severity=3, *, strength=None, random_state=None,
                 clip_min=0.0, clip_max=1.0, batch_size=1024, verbose=0):
        self.name = name
        self.severity = severity
        self.strength = strength
        self.random_state = random_state
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.verbose = verbose

    def _validate_params(self):
        if isinstance(self.name, str) and self.name not in CORRUPTIONS:
            raise ValueError(
                f"Unknown corruption {self.name!r}; valid names are: "
                f"{', '.join(sorted(CORRUPTIONS))}.")
        for param in ("severity", "strength"):
            if isinstance(getattr(self, param), bool):  # an Integral to Python, not a level
                raise ValueError(f"{param} must be a number (severity an integer 1-5); got "
                                 f"{getattr(self, param)!r}.")
        super()._validate_params()
        if self.strength is not None:
            if self.name not in STRENGTH_TRANSFORMS:
                raise ValueError(
                    f"strength applies to {', '.join(sorted(STRENGTH_TRANSFORMS))} only; "
                    f"{self.name!r} takes severity 1-5 (leave strength=None).")
            lo, hi = STRENGTH_RANGE
            s = float(self.strength)
            if not (lo < s <= hi):
                raise ValueError(
                    f"strength must be in ({lo}, {hi}] (the paper's s, 0.2-2.0); got "
                    f"{self.strength!r}.")

    def _apply(self, x01, g, out=None):
        if self.strength is not None:
            return STRENGTH_TRANSFORMS[self.name](x01, float(self.strength), g)
        if out is not None and self.name in _CLAMPED_INTO_OUT:
            return CORRUPTIONS[self.name](x01, int(self.severity), g, out=out)
        return CORRUPTIONS[self.name](x01, int(self.severity), g)


class GaussianNoise(_ImageSource):
    """Plain additive Gaussian pixel noise ``X + std * N(0, 1)``, clipped.

    Parameters
    ----------
    std : float, default=0.1
        Standard deviation, in units of the pixel range.
    random_state : int, RandomState or None, default=None
        Seeds the noise.
    clip_min, clip_max : float, default=0.0, 1.0
        Valid pixel range.
    batch_size : int, default=1024
        Images processed at once without a ``random_state``; with one, blocks
        of 256 images are each seeded from it and their position, so the
        result does not depend on the batching.
    verbose : int, default=0
        Show a progress bar (on a terminal).

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import GaussianNoise
    >>> X = torch.full((2, 1, 8, 8), 0.5)
    >>> out = GaussianNoise(std=0.1, random_state=0).generate(None, X)
    >>> bool(out.min() >= 0 and out.max() <= 1)
    True
    """

    strength_param = "std"

    _parameter_constraints = {
        "std": [Interval(Real, 0, None, closed="left")],
        **_IMAGE_SOURCE_CONSTRAINTS,
    }

    def __init__(self, std=0.1, *, random_state=None, clip_min=0.0, clip_max=1.0,
                 batch_size=1024, verbose=0):
        self.std = std
        self.random_state = random_state
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.verbose = verbose

    def _apply(self, x01, g, out=None):
        span = float(self.clip_max - self.clip_min)
        return _randn(x01, g).mul_(self.std / span).add_(x01)
