"""Helpers the sources share: input checks, module introspection, batching.

Private: sources import from here; users subclassing
:class:`~structnoise.sources.ModificationSource` use the public
:func:`~structnoise.sources.validate_images`.
"""

import contextlib
import functools
import itertools
import math
import sys

import numpy as np
import torch
from tqdm.auto import tqdm


def validate_images(X, clip_min=0.0, clip_max=1.0):
    """Check images (N, C, H, W) in range; return them as a float tensor.

    The checks every source makes before any work, with errors that name the
    problem and the expected form.

    Parameters
    ----------
    X : torch.Tensor or array-like of shape (N, C, H, W)
        Images; integer input becomes float32.
    clip_min, clip_max : float, default=0.0, 1.0
        The valid pixel range (a tolerance of 1e-5 of its width is allowed).

    Returns
    -------
    X : torch.Tensor of shape (N, C, H, W)
        Floating point; it may share memory with ``X``, so callers never
        modify it in place.

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise.sources import validate_images
    >>> validate_images(np.zeros((2, 1, 8, 8))).shape
    torch.Size([2, 1, 8, 8])
    """
    if not clip_min < clip_max:
        raise ValueError(f"clip_min must be below clip_max; got [{clip_min}, {clip_max}].")
    if isinstance(X, torch.Tensor):
        Xt = X.detach()
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # pragma: no cover - exotic input
            raise TypeError(
                f"X must be a tensor or array of images; got {type(X).__name__}.") from exc
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"X must hold numbers; got dtype {arr.dtype}.")
        Xt = torch.from_numpy(np.ascontiguousarray(arr))
    if Xt.ndim != 4:
        raise ValueError(
            f"X must be a batch of images of shape (N, C, H, W); got shape {tuple(Xt.shape)}.")
    if not torch.is_floating_point(Xt):
        Xt = Xt.float()
    if Xt.shape[0] == 0:
        raise ValueError("X holds no images (N=0).")
    tol = 1e-5 * max(1.0, abs(clip_max - clip_min))
    if _bits_within(Xt, clip_min, clip_max, tol):
        return Xt
    # one pass for both checks: NaN propagates into the minimum and maximum,
    # and an infinity becomes one of them
    lo, hi = (float(v) for v in torch.aminmax(Xt))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("X contains NaN or infinity.")
    if lo < clip_min - tol or hi > clip_max + tol:
        raise ValueError(
            f"X must lie in [clip_min, clip_max] = [{clip_min}, {clip_max}]; found values in "
            f"[{lo:.4g}, {hi:.4g}]. Scale the images or set clip_min/clip_max.")
    return Xt


#: signed integers of each float's width, to compare floats by their bits
_BITS = {torch.float64: torch.int64, torch.float32: torch.int32,
         torch.float16: torch.int16, torch.bfloat16: torch.int16}


def _bits_within(X, lo, hi, tol=0.0):
    """True when every value of ``X`` is surely finite and in ``[lo - tol, hi + tol]``.

    Non-negative floats order as their bit patterns read as signed
    integers, and an integer minimum and maximum is one pass, 2.3x faster
    than ``aminmax`` on floats (1000 32x32 colour images, 2 cores): a
    negative value (-0.0 included) reads as a negative integer, NaN and the
    infinities above any finite bound. Only the non-negative part of the
    range is checked this way; False means "look closer", not "outside".
    A range with ``lo < 0`` gets no such check (valid values may be
    negative): False at once, without a pass.
    """
    if lo < 0:
        return False
    bounds = _bit_bounds(X.dtype, max(lo - tol, 0.0), hi + tol)
    if bounds is None:
        return False
    low, high = torch.aminmax(X.view(_BITS[X.dtype]))
    return bounds[0] <= int(low) and int(high) <= bounds[1]


@functools.lru_cache(maxsize=64)
def _bit_bounds(dtype, lo, hi):
    """``[lo, hi]`` as the bits of the floats of ``dtype`` inside it (None: no check)."""
    if dtype not in _BITS or hi < lo:
        return None
    bounds = torch.tensor([lo, hi], dtype=torch.float64).to(dtype)
    # bounds rounded into the range, so no value outside it passes
    lo_bits, hi_bits = (int(b) for b in bounds.view(_BITS[dtype]))
    return (lo_bits + (float(bounds[0]) < lo), hi_bits - (float(bounds[1]) > hi))


def validate_labels(y, n_samples, device=None):
    """Integer class labels of length ``n_samples`` as a long tensor (or None).

    Parameters
    ----------
    y : array-like of shape (n_samples,) or None
        Class labels (floats must hold whole numbers).
    n_samples : int
        The number of images they label.
    device : torch.device, default=None
        Where to put them (where they are when None).

    Returns
    -------
    y : torch.Tensor of shape (n_samples,) or None
        dtype ``torch.long``.

    Examples
    --------
    >>> from structnoise.sources import validate_labels
    >>> validate_labels([0, 2, 1], 3)
    tensor([0, 2, 1])
    """
    if y is None:
        return None
    yt = y.detach() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    if yt.ndim != 1 or yt.shape[0] != n_samples:
        raise ValueError(
            f"y must be a 1-D array of {n_samples} labels (one per image); got shape "
            f"{tuple(yt.shape)}.")
    if torch.is_floating_point(yt):
        if not bool((yt == yt.round()).all()):
            raise ValueError("y must hold integer class labels.")
    return yt.long().to(device) if device is not None else yt.long()


def resolve_module(model):
    """The torch module behind ``model`` (a module or a fitted skorch net).

    A net that predicts with an ensemble of noise draws exposes it as
    ``prediction_module_``: attacks target what the net predicts with.
    """
    if isinstance(model, torch.nn.Module):
        return model
    module = getattr(model, "prediction_module_", None)
    if not isinstance(module, torch.nn.Module):
        module = getattr(model, "module_", None)
    if isinstance(module, torch.nn.Module):
        return module
    if hasattr(model, "module") and hasattr(model, "initialize"):
        raise ValueError(
            f"{type(model).__name__} is not initialized: fit it (or call initialize()) "
            "before generating attacks against it.")
    raise TypeError(
        "model must be a torch.nn.Module or a fitted skorch net; got "
        f"{type(model).__name__}.")


def module_device(module):
    """Device of the module's first parameter or buffer (CPU if it has none)."""
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def module_dtype(module):
    """Floating dtype of the module's parameters (float32 if it has none)."""
    return next((p.dtype for p in module.parameters()), torch.float32)


@contextlib.contextmanager
def attack_mode(module):
    """Eval mode and frozen parameters during an attack; restored after.

    Freezing keeps the attack's backward passes from accumulating gradients
    in the network's parameters.
    """
    # each submodule's own mode, restored as it was (a network in eval mode
    # with one submodule training stays so); nothing to switch, and no
    # per-module attribute writes, for the usual network already in eval mode
    modes = [(m, m.training) for m in module.modules()]
    training = any(mode for _, mode in modes)
    if training:
        module.eval()
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p in trainable:
            p.requires_grad_(True)
        if training:
            for m, mode in modes:
                m.training = mode


def progress(iterable, *, total=None, verbose=1, desc=None):
    """tqdm progress, off when ``verbose=0`` or stderr is not a terminal."""
    disable = not verbose or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False)


def batches(n_samples, batch_size):
    """Slices covering ``range(n_samples)`` in steps of ``batch_size``."""
    return [slice(i, min(i + batch_size, n_samples)) for i in range(0, n_samples, batch_size)]


def check_logits(out, n_samples):
    """The model output must be (N, n_classes) logits."""
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n_samples:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"The model must return logits of shape (N, n_classes); for {n_samples} "
            f"images it returned {shape}.")
    return out


def check_targeted(source, y):
    """A targeted attack needs its targets: y=None would target the model's own predictions."""
    if getattr(source, "targeted", False) and y is None:
        raise ValueError(
            f"{type(source).__name__}(targeted=True) needs the target labels y; y=None "
            "would make the model's own predictions the targets.")


def attack_labels(module, X, y, *, eot_samples, batch_size, device, dtype):
    """``(labels, n_classes)`` for an attack: ``y`` checked against the outputs, or predictions.

    With ``y=None`` the labels are the model's predictions (mean logits over
    ``eot_samples`` draws), so no true label leaks into the attack.
    """
    with torch.no_grad():
        n_classes = check_logits(module(X[:1].to(device, dtype)), 1).shape[1]
    if y is None:
        return predict_logits(module, X.to(dtype), batch_size=batch_size,
                              eot_samples=eot_samples, device=device).argmax(1), n_classes
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(
            f"y holds labels outside [0, {n_classes - 1}] for a model with {n_classes} "
            "outputs.")
    return y, n_classes


#: rows per stacked pass on a CPU. Measured on 2 cores (PaperCNN, input
#: gradient of LinfPGD with isotropic noise at its 3136-wide site, batch 64):
#: one pass over 32 stacked draws (2048 rows) costs 37x one draw, passes of
#: 256 rows 21x; beyond a few hundred rows the conv activations leave the
#: cache and the cost per row grows. A GPU gains from the widest pass.
_CPU_ROWS_PER_PASS = 256


def stacked_draws(module, x, k, *, mean=False):
    """``k`` noise draws of ``module`` on the batch ``x``, as stacked copies.

    Returns the ``k * N`` outputs, draw-major (or their mean over the draws,
    of shape ``(N, ...)``, with ``mean=True``). On a CPU the copies run in
    passes of about ``_CPU_ROWS_PER_PASS`` rows; on a GPU in one pass.
    Autograd sees the same graph either way (one gradient through all draws).
    """
    k = int(k)
    if k == 1:
        return module(x)
    n = x.shape[0]
    reps = [1] * (x.ndim - 1)
    per_pass = k if x.device.type != "cpu" else max(1, min(k, _CPU_ROWS_PER_PASS // max(n, 1)))
    outs = [module(x.repeat(min(per_pass, k - i), *reps)) for i in range(0, k, per_pass)]
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    if mean:
        return out.reshape(k, n, *out.shape[1:]).mean(0)
    return out


@torch.no_grad()
def predict_logits(module, X, *, batch_size=256, eot_samples=1, device=None):
    """Logits of ``module`` on ``X`` in batches (mean over ``eot_samples`` draws)."""
    device = device or module_device(module)
    outs = []
    for sl in batches(X.shape[0], batch_size):
        xb = X[sl].to(device)
        outs.append(check_logits(stacked_draws(module, xb, eot_samples, mean=True),
                                 xb.shape[0]))
    return torch.cat(outs)
