"""Modification sources: the common base, input checks and EOT.

A *source* turns clean images into modified ones: an adversarial attack (it
needs the model) or a naturalistic corruption (it does not). Every source is
a scikit-learn estimator (parameters in ``__init__``, so ``clone``,
``get_params`` and grid search work) with
``generate(model, X, y=None) -> torch.Tensor``.
"""

import contextlib
import math
import sys
import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

__all__ = ["ModificationSource", "EOTModel", "EOTLoss", "resolve_module", "predict_logits"]


class ModificationSource(BaseEstimator):
    """Base class of all sources.

    Subclasses set ``kind`` ("adversarial" or "naturalistic") and implement
    :meth:`generate`. They validate their parameters with
    ``_parameter_constraints`` like any scikit-learn estimator.

    Examples
    --------
    >>> from structnoise.sources import GaussianNoise
    >>> GaussianNoise(std=0.1).kind
    'naturalistic'
    """

    kind = "naturalistic"

    def generate(self, model, X, y=None):
        """Return modified copies of the images ``X``.

        Subclasses implement ``_generate``; this method checks what it
        returns, in one place for every source: a non-finite image (an attack
        dividing by a zero perturbation, say) falls back to its clean image,
        and values outside ``[clip_min, clip_max]`` are clipped, each with a
        warning when more than rounding is at stake.

        Parameters
        ----------
        model : torch.nn.Module, fitted skorch net or None
            The network (attacks need it; corruptions ignore it).
        X : torch.Tensor or ndarray of shape (N, C, H, W)
            Images in ``[clip_min, clip_max]``.
        y : array-like of shape (N,), default=None
            Labels (attacks use the model's predictions when None).

        Returns
        -------
        X_mod : torch.Tensor of shape (N, C, H, W)
            Same device and dtype as ``X`` (a CPU tensor for numpy input).
        """
        out = self._generate(model, X, y)
        return _checked_output(self, out, X)

    def _generate(self, model, X, y=None):
        raise NotImplementedError(
            f"{type(self).__name__} must implement _generate(model, X, y).")

    @property
    def label(self):
        """A short readable name, e.g. ``LinfPGD(eps=0.1)``."""
        return _short_repr(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.kind == "adversarial" or tags.non_deterministic
        return tags


def _checked_output(source, out, X):
    """Finite images inside the clip range, whatever the source did."""
    if not isinstance(out, torch.Tensor):
        return out
    lo = float(getattr(source, "clip_min", 0.0))
    hi = float(getattr(source, "clip_max", 1.0))
    finite = torch.isfinite(out.flatten(1)).all(1)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        clean = X.detach() if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
        clean = clean.to(out.device, out.dtype).clamp(lo, hi)
        out = torch.where(finite.reshape(-1, *([1] * (out.ndim - 1))), out, clean)
        warnings.warn(
            f"{type(source).__name__} returned {bad} image(s) with NaN or infinite values; "
            "they are replaced by their clean images (the attack did not move them).",
            RuntimeWarning, stacklevel=3)
    lo_out, hi_out = (float(v) for v in torch.aminmax(out))
    if lo_out < lo or hi_out > hi:
        tol = 1e-5 * max(1.0, hi - lo)
        if lo_out < lo - tol or hi_out > hi + tol:
            warnings.warn(
                f"{type(source).__name__} returned values in [{lo_out:.4g}, {hi_out:.4g}], "
                f"outside [clip_min, clip_max] = [{lo}, {hi}]; they are clipped.",
                RuntimeWarning, stacklevel=3)
        out = out.clamp(lo, hi)
    return out


def _short_repr(est):
    params = est.get_params(deep=False)
    defaults = type(est)().get_params(deep=False) if _default_constructible(est) else {}
    shown = [f"{k}={v!r}" for k, v in params.items()
             if k not in ("batch_size", "verbose", "random_state", "device")
             and (k not in defaults or defaults[k] != v or k in ("eps", "name", "severity", "std"))]
    return f"{type(est).__name__}({', '.join(shown)})"


def _default_constructible(est):
    try:
        type(est)()
        return True
    except TypeError:
        return False


# --------------------------------------------------------------------------
# input validation (cheap, before any heavy work)
# --------------------------------------------------------------------------
def validate_images(X, clip_min=0.0, clip_max=1.0):
    """Check images (N, C, H, W) in range; return them as a float tensor.

    The tensor may share memory with ``X``: callers never modify it in place.
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
    # one pass for both checks: NaN propagates into the minimum and maximum,
    # and an infinity becomes one of them
    lo, hi = (float(v) for v in torch.aminmax(Xt))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("X contains NaN or infinity.")
    tol = 1e-5 * max(1.0, abs(clip_max - clip_min))
    if lo < clip_min - tol or hi > clip_max + tol:
        raise ValueError(
            f"X must lie in [clip_min, clip_max] = [{clip_min}, {clip_max}]; found values in "
            f"[{lo:.4g}, {hi:.4g}]. Scale the images or set clip_min/clip_max.")
    return Xt


def validate_labels(y, n_samples, device=None):
    """Integer class labels of length ``n_samples`` as a long tensor (or None)."""
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
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def module_dtype(module):
    """Floating dtype of the module's parameters (float32 if it has none)."""
    return next((p.dtype for p in module.parameters()), torch.float32)


@contextlib.contextmanager
def attack_mode(module):
    """Eval mode and frozen parameters during an attack; restored after.

    Freezing keeps the attack's backward passes from accumulating gradients
    in the network's parameters.
    """
    was_training = module.training
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        module.train(was_training)


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


class EOTModel(torch.nn.Module):
    """Expectation over transformation for a stochastic network.

    One forward pass over ``eot_samples`` stacked copies of the batch, so
    each copy gets fresh noise.

    Parameters
    ----------
    module : torch.nn.Module
        The (stochastic) network.
    eot_samples : int
        Number of noise draws ``k``.
    average : {"loss", "logits"}, default="loss"
        "loss": return all ``k * N`` outputs; with :class:`EOTLoss` the
        gradient is then the mean of the ``k`` single-draw loss gradients
        (the EOT of Athalye et al., 2018). "logits": return the mean of the
        ``k`` logits, for attacks that use the outputs beyond a loss.

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import EOTModel
    >>> eot = EOTModel(torch.nn.Linear(4, 3), eot_samples=5, average="logits")
    >>> eot(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, module, eot_samples, average="loss"):
        super().__init__()
        self.module = module
        self.eot_samples = int(eot_samples)
        self.average = average

    def forward(self, x):
        k = self.eot_samples
        if k == 1:
            return self.module(x)
        out = self.module(x.repeat(k, *([1] * (x.ndim - 1))))
        if self.average == "logits":
            return out.reshape(k, x.shape[0], *out.shape[1:]).mean(0)
        return out


class EOTLoss(torch.nn.Module):
    """Cross-entropy averaged over the ``k`` stacked outputs of :class:`EOTModel`.

    Parameters
    ----------
    eot_samples : int
        Number of noise draws ``k``.
    reduction : {"sum", "mean", "none"}, default="sum"
        Reduction over the images (advertorch's attacks use "sum").

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import EOTLoss
    >>> loss = EOTLoss(eot_samples=2)
    >>> float(loss(torch.zeros(4, 3), torch.tensor([0, 1]))) > 0
    True
    """

    def __init__(self, eot_samples, reduction="sum"):
        super().__init__()
        self.eot_samples = int(eot_samples)
        self.reduction = reduction

    def forward(self, outputs, y):
        k = self.eot_samples
        per = torch.nn.functional.cross_entropy(outputs, y.repeat(k), reduction="none")
        per = per.reshape(k, -1).mean(0)
        if self.reduction == "sum":
            return per.sum()
        if self.reduction == "mean":
            return per.mean()
        return per


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


@torch.no_grad()
def predict_logits(module, X, *, batch_size=256, eot_samples=1, device=None):
    """Logits of ``module`` on ``X`` in batches (mean over ``eot_samples`` draws)."""
    device = device or module_device(module)
    eot = EOTModel(module, eot_samples, average="logits")
    outs = []
    for sl in batches(X.shape[0], batch_size):
        xb = X[sl].to(device)
        outs.append(check_logits(eot(xb), xb.shape[0]))
    return torch.cat(outs)


def _check_nonneg(name, value):
    if not isinstance(value, Real) or value < 0:
        raise ValueError(f"{name} must be a non-negative number; got {value!r}.")
