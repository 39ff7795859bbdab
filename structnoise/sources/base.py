"""The base class of modification sources.

A *source* turns clean images into modified ones: an adversarial attack (it
needs the model) or a naturalistic corruption (it does not). Every source is
a scikit-learn estimator (parameters in ``__init__``, so ``clone``,
``get_params`` and grid search work) with
``generate(model, X, y=None) -> torch.Tensor``.
"""

import contextlib
import functools
import math
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator

from .._inference import batches, progress
from .._validation import bits_within, validate_images, validate_labels

__all__ = ["ModificationSource"]


class ModificationSource(BaseEstimator):
    """Base class of all sources: one ``generate`` for every source.

    :meth:`generate` is the template (imbalanced-learn's ``fit_resample`` ->
    ``_fit_resample``): it validates the parameters, the images and the
    labels before any work, enters the subclass's :meth:`_prepare` context
    (model mode, seeding, the attack built once), runs
    :meth:`_generate_batch` over the blocks of :meth:`_blocks` with a
    progress bar, and checks the output. Subclasses set ``kind``
    ("adversarial" or "naturalistic"), validate their parameters with
    ``_parameter_constraints`` like any scikit-learn estimator, and
    implement :meth:`_generate_batch` (and, as needed, the other hooks).

    Examples
    --------
    >>> from structnoise.sources import GaussianNoise
    >>> GaussianNoise(std=0.1).kind
    'naturalistic'
    """

    kind = "naturalistic"
    #: the parameter that holds the source's strength (see :meth:`describe`)
    strength_param = None
    #: scikit-learn's parameter validation (subclasses add their parameters)
    _parameter_constraints: dict = {}
    #: True when :meth:`_generate_batch` accepts ``out=``, a view of the final
    #: output for its block: writing there (and returning it) saves a copy
    #: of every block
    _writes_into_output = False

    def generate(self, model, X, y=None):
        """Return modified copies of the images ``X``.

        What the subclass returns is checked here, in one place for every
        source: a non-finite image (an attack dividing by a zero
        perturbation, say) falls back to its clean image, and values outside
        ``[clip_min, clip_max]`` are clipped, each with a warning when more
        than rounding is at stake.

        Parameters
        ----------
        model : torch.nn.Module, fitted skorch net or None
            The network (attacks need it; corruptions ignore it).
        X : torch.Tensor or ndarray of shape (N, C, H, W)
            Images in ``[clip_min, clip_max]``; never modified.
        y : array-like of shape (N,), default=None
            Labels (attacks use the model's predictions when None).

        Returns
        -------
        X_mod : torch.Tensor of shape (N, C, H, W)
            Same device and dtype as ``X`` (a CPU tensor for numpy input).
        """
        self._validate_params()
        Xt = validate_images(X, getattr(self, "clip_min", 0.0), getattr(self, "clip_max", 1.0))
        self._check_images(Xt)
        yt = validate_labels(y, Xt.shape[0])
        out = None
        with self._prepare(model, Xt, yt) as state:
            blocks = self._blocks(Xt.shape[0], state)
            if len(blocks) > 1:
                out = torch.empty(Xt.shape, dtype=Xt.dtype, device=Xt.device)
            for i, sl in enumerate(progress(blocks, verbose=getattr(self, "verbose", 0),
                                            desc=type(self).__name__)):
                into = {"out": out[sl]} if out is not None and self._writes_into_output else {}
                part = self._generate_batch(state, Xt[sl], None if yt is None else yt[sl],
                                            index=i, rows=sl, **into).detach()
                if into and _shares_memory(part, out) and part.shape == into["out"].shape:
                    continue  # written in place
                part = part.to(Xt.device, Xt.dtype)
                if out is None and part.shape == Xt.shape and not _shares_memory(part, Xt):
                    out = part  # one block: no copy into a second buffer
                    break
                if out is None:
                    out = torch.empty(Xt.shape, dtype=Xt.dtype, device=Xt.device)
                out[sl] = part
        return _checked_output(self, out, X)

    def _check_images(self, X):
        """Checks beyond :func:`validate_images` (e.g. channels); raise on bad input."""

    @contextlib.contextmanager
    def _prepare(self, model, X, y):
        """Context around all the blocks; yields the state handed to each.

        The default yields None. Attacks put the model in eval mode with
        frozen parameters, seed, predict missing labels and build the attack
        here, once.
        """
        yield None

    def _blocks(self, n_samples, state):
        """The row slices processed by one :meth:`_generate_batch` call each."""
        return batches(n_samples, int(getattr(self, "batch_size", n_samples)))

    def _generate_batch(self, state, X, y, *, index, rows):
        """Modified copies of one block of validated images.

        Parameters
        ----------
        state : object
            What :meth:`_prepare` yielded.
        X : torch.Tensor of shape (n, C, H, W)
            The block's images (validated; never modify them in place).
        y : torch.Tensor of shape (n,) or None
            Their labels.
        index : int
            The block's position (for per-block seeds).
        rows : slice
            The block's rows in the whole input.

        Returns
        -------
        X_mod : torch.Tensor of shape (n, C, H, W)
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement _generate_batch(state, X, y, index, rows).")

    def _validate_params(self):
        # scikit-learn checks every parameter against its constraints on each
        # call: 70 us, a fifth of FGSM on 200 digits. Parameters that are the
        # very objects last validated need no second look (set_params and
        # assignment bind new objects, so a changed value is checked again)
        params = self.get_params(deep=False)
        last = self.__dict__.get("_validated_params")
        if last is not None and last.keys() == params.keys() \
                and all(params[k] is last[k] for k in params):
            return
        super()._validate_params()
        self._validated_params = params

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads the __init__ signature on every get_params, hence
        # on every validation: ~40 us per generate call; a class's signature
        # does not change, so it is read once
        return _param_names(cls)

    def describe(self):
        """What the source is, for the rows of an experiment.

        Override it when the class attribute ``strength_param`` (the
        parameter holding the source's strength: ``"eps"`` for the attacks,
        ``"std"`` for :class:`~structnoise.sources.GaussianNoise`) does not
        say enough.

        Returns
        -------
        description : dict
            ``family`` (the class name), ``kind``, ``strength`` (the value of
            ``strength_param``, NaN without one) and ``strength_unit`` (its
            name, "" without one).

        Examples
        --------
        >>> from structnoise.sources import GaussianNoise
        >>> GaussianNoise(std=0.2).describe()
        {'family': 'GaussianNoise', 'kind': 'naturalistic', 'strength': 0.2, 'strength_unit': 'std'}
        """
        name = self.strength_param
        value = None if name is None else getattr(self, name, None)
        if value is None:
            return {"family": type(self).__name__, "kind": self.kind,
                    "strength": float("nan"), "strength_unit": ""}
        return {"family": type(self).__name__, "kind": self.kind, "strength": float(value),
                "strength_unit": name}

    @property
    def label(self):
        """A short readable name, e.g. ``LinfPGD(eps=0.1)``."""
        return _short_repr(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.kind == "adversarial" or tags.non_deterministic
        return tags


def _shares_memory(a, b):
    """Whether two tensors view the same storage (the output must never alias ``X``)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


@functools.cache
def _param_names(cls):
    return BaseEstimator._get_param_names.__func__(cls)


def _checked_output(source, out, X):
    """Finite images inside the clip range, whatever the source did."""
    if not isinstance(out, torch.Tensor):
        return out
    lo = float(getattr(source, "clip_min", 0.0))
    hi = float(getattr(source, "clip_max", 1.0))
    if bits_within(out, lo, hi):
        return out  # finite and in range, by the fast check on the bits
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
