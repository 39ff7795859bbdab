"""ActivationPairs: images -> (clean, modified) activations at named layers."""

import contextlib

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._inference import batches, module_device, module_dtype, progress, resolve_module
from ._validation import validate_images, validate_labels
from .sources.base import ModificationSource

__all__ = ["ActivationPairs", "capture_activations", "check_layers", "layer_names", "uncompiled"]


def uncompiled(module):
    """The module behind ``torch.compile`` (whose names gain an ``_orig_mod.`` prefix).

    Layer names are the user's names for the original module; hooks on its
    submodules also run inside the compiled one.

    Parameters
    ----------
    module : torch.nn.Module
        A module, compiled or not.

    Returns
    -------
    module : torch.nn.Module
        The original module.

    Examples
    --------
    >>> import torch
    >>> from structnoise.activations import uncompiled
    >>> m = torch.nn.Linear(2, 2)
    >>> uncompiled(m) is m
    True
    """
    inner = getattr(module, "_orig_mod", None)
    return inner if isinstance(inner, torch.nn.Module) else module


def layer_names(layers):
    """One layer name or several, as a list: ``"body.2"`` -> ``["body.2"]``.

    Parameters
    ----------
    layers : str or iterable of str
        Dotted layer names.

    Returns
    -------
    names : list of str
        The names, in order.

    Examples
    --------
    >>> from structnoise.activations import layer_names
    >>> layer_names("body.2"), layer_names(("body.2", "body.4"))
    (['body.2'], ['body.2', 'body.4'])
    """
    return [layers] if isinstance(layers, str) else list(layers)


def check_layers(module, layers):
    """Resolve dotted layer names to submodules; unknown names raise.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    layers : str or list of str
        Names from ``module.named_modules()``, e.g. ``"body.2"``.

    Returns
    -------
    resolved : dict
        name -> submodule, in the order given.

    Examples
    --------
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.activations import check_layers
    >>> list(check_layers(DigitsMLP(), "body.2"))
    ['body.2']
    """
    names = layer_names(layers)
    if not names:
        raise ValueError("layers is empty: give at least one layer name.")
    available = dict(uncompiled(module).named_modules())
    unknown = [n for n in names if not isinstance(n, str) or n not in available or n == ""]
    if unknown:
        listing = ", ".join(repr(n) for n in available if n)
        raise ValueError(
            f"Unknown layer(s) {unknown}; the network's layers (named_modules) are: {listing}.")
    return {n: available[n] for n in names}


@contextlib.contextmanager
def capture_activations(module, layers):
    """Record the (detached, flattened) outputs of named layers.

    Yields a dict name -> list of tensors that fills up with each forward
    pass; the hooks are removed on exit.
    """
    store = {name: [] for name in layers}
    handles = []
    for name, sub in check_layers(module, list(layers)).items():
        def hook(_mod, _inp, out, name=name):
            store[name].append(out.detach().reshape(out.shape[0], -1))
        handles.append(sub.register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def _noise_off(estimator):
    """A context in which a noisy net's own noise is switched off."""
    off = getattr(estimator, "noise_disabled", None)
    return off() if callable(off) else contextlib.nullcontext()


class ActivationPairs(TransformerMixin, BaseEstimator):
    """Transformer from images to paired (clean, modified) activations.

    For each image, the activations of the named layer(s) of a network are
    recorded on the clean image and on its modified version (from a
    source: an attack or a corruption). The output feeds
    :class:`~structnoise.StructuredNoiseFitter` directly.

    Parameters
    ----------
    estimator : skorch net or torch.nn.Module
        The network. A fitted skorch net or a module is used as is; an
        unfitted skorch net is fitted on ``(X, y)`` by :meth:`fit` (so
        cross-validation trains one network per fold).
    layers : str or list of str
        Dotted module names (``named_modules()``), e.g. ``"body.2"``.
    source : ModificationSource
        How the inputs are modified (see :mod:`structnoise.sources`).
    batch_size : int, default=256
        Images per forward pass.
    device : str or torch.device, default=None
        Device for the forward passes (default: the network's).
    verbose : int, default=0
        Show a progress bar (on a terminal).

    Attributes
    ----------
    estimator_ : skorch net or torch.nn.Module
        The network used.
    n_features_out_ : dict
        Layer name -> width of its flattened activations.

    Examples
    --------
    >>> import torch
    >>> from structnoise import ActivationPairs
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.sources import GaussianNoise
    >>> pairs = ActivationPairs(DigitsMLP(), "body.2", GaussianNoise(0.1, random_state=0))
    >>> pairs.fit_transform(torch.rand(5, 1, 8, 8)).shape
    (5, 2, 128)
    """

    def __init__(self, estimator, layers, source, batch_size=256, device=None, verbose=0):
        self.estimator = estimator
        self.layers = layers
        self.source = source
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    def _check_params(self):
        if not isinstance(self.source, ModificationSource):
            raise TypeError(
                "source must be a structnoise source (e.g. FGSM(...), Corruption(...)); "
                f"got {type(self.source).__name__}.")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {self.batch_size!r}.")

    def fit(self, X, y=None):
        """Resolve the network and its layers (fit an unfitted skorch net).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, C, H, W)
            Images.
        y : array-like of shape (N,), default=None
            Labels (needed only to fit an unfitted net).

        Returns
        -------
        self : ActivationPairs
            The fitted transformer.
        """
        self._check_params()
        est = self.estimator
        if hasattr(est, "initialize") and not getattr(est, "initialized_", False):
            if y is None:
                raise ValueError("y is required to fit the (unfitted) network.")
            est = clone(est).fit(X, y)
        module = resolve_module(est)
        check_layers(module, self.layers)
        self.estimator_ = est
        self.n_features_out_ = {}
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then pair the activations, modifying with the true labels ``y``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, C, H, W)
            Images.
        y : array-like of shape (N,), default=None
            True labels, given to the source (attacks use them).
        **fit_params : dict
            Unused.

        Returns
        -------
        pairs : ndarray of shape (N, 2, d) or dict of them
            As :meth:`transform`.
        """
        return self.fit(X, y)._pairs(X, y)

    def transform(self, X):
        """Pair activations; the source sees the model's predictions, not labels.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, C, H, W)
            Images.

        Returns
        -------
        pairs : ndarray of shape (N, 2, d), float32
            ``pairs[:, 0]`` clean and ``pairs[:, 1]`` modified activations,
            for one layer; a dict layer -> such an array for several.
        """
        check_is_fitted(self, "estimator_")
        return self._pairs(X, None)

    def _pairs(self, X, y):
        est = self.estimator_
        module = resolve_module(est)
        Xt = validate_images(X, getattr(self.source, "clip_min", 0.0),
                             getattr(self.source, "clip_max", 1.0))
        yt = validate_labels(y, Xt.shape[0])
        device = torch.device(self.device) if self.device is not None else module_device(module)
        layers = layer_names(self.layers)
        dtype = module_dtype(module)
        out = {name: [] for name in layers}
        was_training = module.training
        module.eval()
        try:
            with _noise_off(est):
                for sl in progress(batches(Xt.shape[0], self.batch_size), verbose=self.verbose,
                                   desc="activation pairs"):
                    xb = Xt[sl].to(device, dtype)
                    yb = None if yt is None else yt[sl].to(device)
                    modified = self.source.generate(module, xb, yb).to(device, dtype)
                    with torch.no_grad(), capture_activations(module, layers) as store:
                        module(xb)
                        module(modified)
                    for name in layers:
                        clean_act, mod_act = store[name][0], store[name][1]
                        out[name].append(torch.stack([clean_act, mod_act], 1).cpu())
        finally:
            module.train(was_training)
        result = {name: torch.cat(parts).numpy().astype(np.float32, copy=False)
                  for name, parts in out.items()}
        self.n_features_out_ = {name: arr.shape[2] for name, arr in result.items()}
        return result[layers[0]] if isinstance(self.layers, str) else result

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        tags.input_tags.three_d_array = True
        return tags
