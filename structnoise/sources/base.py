"""The base class of modification sources.

A *source* turns clean images into modified ones: an adversarial attack (it
needs the model) or a naturalistic corruption (it does not). Every source is
a scikit-learn estimator (parameters in ``__init__``, so ``clone``,
``get_params`` and grid search work) with
``generate(model, X, y=None) -> torch.Tensor``.
"""

import math
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator

__all__ = ["ModificationSource"]


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
    # one pass over the output: NaN propagates into the minimum and maximum,
    # and an infinity becomes one of them; only then look image by image
    lo_out, hi_out = (float(v) for v in torch.aminmax(out))
    if not (math.isfinite(lo_out) and math.isfinite(hi_out)):
        finite = torch.isfinite(out.flatten(1)).all(1)
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
