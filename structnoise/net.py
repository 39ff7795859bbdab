"""NoisyNeuralNetClassifier: a skorch classifier with structured hidden noise."""

import contextlib
import functools
import inspect
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ._inference import stacked_draws
from ._random import derive_seed, layer_seeds, seed_of
from .activations import ActivationPairs, check_layers, layer_names, uncompiled
from .callbacks import LearnNoise
from .fitters import StructuredNoiseFitter
from .sources.base import ModificationSource
from .splitting import split_after, split_before

__all__ = ["NoisyNeuralNetClassifier", "NoiseHook"]

_MODES = ("train", "eval", "always")
_RETRAIN = ("all", "after")


class _NoiseControl:
    """Scale and mode shared by a net's hooks (kept in sync by the net).

    The hooks live in the torch module, which skorch pickles separately;
    they must not refer back to the net, so they read this small object.
    """

    def __init__(self, scale=1.0, mode="always"):
        self.scale = float(scale)
        self.mode = mode
        self.enabled = True

    def active(self, training):
        if not self.enabled or self.scale == 0:
            return False
        return self.mode == "always" or (self.mode == "train") == bool(training)


@contextlib.contextmanager
def _noise_off(control):
    """``control``'s noise off inside the block (its earlier state restored)."""
    before = control.enabled
    control.enabled = False
    try:
        yield
    finally:
        control.enabled = before


class NoiseHook:
    """Forward hook adding ``control.scale * eps`` to a layer's output.

    ``eps`` is drawn by the fitter's :meth:`~StructuredNoiseFitter.to_torch`
    module on the activations' device, so there is no host-device copy per
    step.

    Parameters
    ----------
    noise : NoiseModule
        Draws the noise (its own ``scale`` is the fitter's ``scale``).
    control : object
        Holds ``scale`` and ``active(training)``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from structnoise import StructuredNoiseFitter
    >>> from structnoise.net import NoiseHook, _NoiseControl
    >>> noise = StructuredNoiseFitter(random_state=0).fit(np.random.randn(50, 4)).to_torch()
    >>> layer = torch.nn.Identity()
    >>> _ = layer.register_forward_hook(NoiseHook(noise, _NoiseControl(scale=1.0)))
    >>> bool((layer(torch.zeros(3, 4)) != 0).any())
    True
    """

    def __init__(self, noise, control, name=None):
        self.noise = noise
        self.control = control
        self.name = name

    def __call__(self, module, inputs, output):
        if not self.control.active(module.training):
            return None
        flat = output.reshape(output.shape[0], -1)
        if flat.shape[1] != self.noise.n_features:
            where = f"layer {self.name!r}" if self.name else "this layer"
            raise ValueError(
                f"The noise for {where} has width {self.noise.n_features}, but the "
                f"layer's activations have {flat.shape[1]} features (shape "
                f"{tuple(output.shape)}); fit the noise on this layer's activations.")
        return self.noise.add_noise(output, self.control.scale * self.noise.scale)


class NoisyNeuralNetClassifier(NeuralNetClassifier):
    """skorch ``NeuralNetClassifier`` with structured noise in hidden layers.

    The paper's method end to end: ``fit`` trains ``noise_warmup_epochs``
    clean epochs, collects (clean, modified) activation pairs at
    ``noise_layers`` with ``noise_source`` on the training split, fits one
    :class:`~structnoise.StructuredNoiseFitter` per layer, then trains the
    remaining epochs with the noise injected by forward hooks.

    Parameters
    ----------
    module : torch module class or instance
        The network (see :mod:`structnoise.models`); it returns logits.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        Cross-entropy on logits (skorch's classifier default, NLLLoss, expects
        log-probabilities; the reference models and the attacks use logits).
    noise : StructuredNoiseFitter or dict, default=None
        The noise estimator, cloned for each layer, or a dict layer -> fitter.
        Fitted fitters are used as they are; None gives a plain network.
        Its parameters can be routed as ``noise__structure="isotropic"`` etc.
        Cloning the net (``clone``, ``GridSearchCV``, ``cross_val_score``)
        clones a fitted fitter unfitted, as scikit-learn does with every
        estimator parameter, so the clone learns its noise again from
        ``noise_source``; wrap a fitted fitter as
        ``FrozenEstimator(fitter)`` (``sklearn.frozen``) to keep it fitted
        through cloning.
    noise_source : ModificationSource, default=None
        Source of the modified inputs the noise is learned from (needed when
        the fitters are not fitted).
    noise_layers : str or list of str, default=None
        Dotted layer names (default: the keys of a dict ``noise``).
    noise_scale : float, default=1.0
        The net's multiplier of the noise standard deviation, on top of the
        fitters' own ``scale``: the noise added is
        ``noise_scale * fitter.scale * eps`` with ``eps ~ N(0, covariance_)``.
        It is the knob to search or sweep (post-hoc noise): ``set_params``
        after fit takes effect at once, without refitting; a fitter's
        ``scale`` belongs to the learned noise (it is what
        ``fitter.transform`` adds) and travels with it.
    noise_mode : {"always", "train", "eval"}, default="always"
        When the noise is active: always (a stochastic network, as in the
        paper), only in training mode, or only in eval mode.
    noise_warmup_epochs : int, default=None
        Clean epochs before the noise phase starts (the noise is fitted and
        installed, and ``noise_retrain`` applied). Default: half of
        ``max_epochs`` when the noise must be learned from ``noise_source``,
        0 when it is pre-fitted or None (the phase starts with training).
        The net's default callback :class:`~structnoise.callbacks.LearnNoise`
        (named ``"learn_noise"``) starts the phase; its ``at`` overrides this.
    noise_retrain : {"all", "after"}, default="all"
        What trains once the noise phase starts. "all": every layer keeps
        training. "after" (the paper's protocol): every parameter of the
        layers that run up to and including the first noisy layer is frozen
        (``requires_grad=False``), the layers that run after it are
        re-initialised (their ``reset_parameters``), the optimizer is rebuilt
        over the trainable parameters only, and training goes on with the
        noise. "Before" and "after" follow the execution order of a forward
        pass (recorded with forward hooks on the first batch), not the order
        in which the layers were registered; a layer that runs both before
        and after the noisy one counts as before (frozen), and a layer that
        does not run is left as it is. With ``noise=None`` and
        ``noise_layers`` named this gives the paper's "No Noise" baseline:
        the same freeze and re-initialisation without noise.
    train_source : ModificationSource, default=None
        Training-time augmentation: a source applied to a fraction of every
        training batch (the supplement's baselines: ``LinfPGD`` for PGD
        adversarial training, ``GaussianNoise(std)`` for Gaussian input
        augmentation). Attacks attack the network as it is at that step
        (its noise included); the modified images replace the clean ones.
    train_source_ratio : float in (0, 1], default=1.0
        Fraction of each batch replaced (ART's adversarial training
        ``ratio``); the rows are drawn from the net's own generator, seeded
        from ``train_source.random_state`` (fresh entropy when it is None).
    noise_ensemble : int, default=1
        Noise draws averaged (in the logits) by ``predict``,
        ``predict_proba``, ``score`` and every scorer, in one stacked pass;
        attacks given the net target the same ensemble (see
        :attr:`prediction_module_`). The paper uses 10.
    noise_batch_size : int, default=256
        Images per batch when collecting activation pairs.
    *args, **kwargs
        Everything :class:`skorch.NeuralNetClassifier` takes (``max_epochs``,
        ``lr``, ``device``, ``callbacks``, ``train_split``, ...).

    Attributes
    ----------
    noise_ : dict
        Layer name -> fitted :class:`~structnoise.StructuredNoiseFitter`.
    noise_phase_started_ : bool
        Whether the noise phase (noise installed, ``noise_retrain`` applied)
        has started.
    noise_frozen_ : list of str
        Parameters frozen by ``noise_retrain="after"``.
    noise_reinitialized_ : list of str
        Layers re-initialised by ``noise_retrain="after"``.
    noise_modules_ : dict
        Layer name -> the installed :class:`~structnoise.NoiseModule` that
        draws its noise (``hook adds noise_scale * module.scale * eps``):
        its generator is the stream the net's noise comes from.

    Examples
    --------
    >>> import torch
    >>> from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
    >>> from structnoise.datasets import load_digits_images
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.sources import GaussianNoise
    >>> X, y = load_digits_images()
    >>> net = NoisyNeuralNetClassifier(
    ...     DigitsMLP, noise=StructuredNoiseFitter(random_state=0),
    ...     noise_source=GaussianNoise(0.2, random_state=0), noise_layers="body.2",
    ...     max_epochs=4, lr=0.1, train_split=None, verbose=0)
    >>> _ = net.fit(X[:300], y[:300])
    >>> sorted(net.noise_)
    ['body.2']
    """

    def __init__(self, module, *args, criterion=torch.nn.CrossEntropyLoss, noise=None,
                 noise_source=None, noise_layers=None, noise_scale=1.0, noise_mode="always",
                 noise_warmup_epochs=None, noise_batch_size=256, noise_retrain="all",
                 noise_ensemble=1, train_source=None, train_source_ratio=1.0, **kwargs):
        super().__init__(module, *args, criterion=criterion, **kwargs)
        self.noise = noise
        self.noise_source = noise_source
        self.noise_layers = noise_layers
        self.noise_scale = noise_scale
        self.noise_mode = noise_mode
        self.noise_warmup_epochs = noise_warmup_epochs
        self.noise_batch_size = noise_batch_size
        self.noise_retrain = noise_retrain
        self.noise_ensemble = noise_ensemble
        self.train_source = train_source
        self.train_source_ratio = train_source_ratio

    # ------------------------------------------------------------------
    # skorch plumbing
    # ------------------------------------------------------------------
    #: ``noise__*`` parameters are routed to the noise fitters (skorch's
    #: ``get_params_for("noise")``), as ``module__*`` to the module
    prefixes_ = NeuralNetClassifier.prefixes_ + ["noise"]

    def get_default_callbacks(self):
        return super().get_default_callbacks() + [("learn_noise", LearnNoise())]

    def set_params(self, **kwargs):
        # our own ``noise_*`` parameters are plain attributes: with "noise" among
        # skorch's prefixes, skorch would take them for routed ones
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in _own_params()}
        if own:
            BaseEstimator.set_params(self, **own)
        # routed ``noise__*`` values are virtual parameters (see
        # initialize_virtual_params): skorch stores them, and the fitters take
        # them at the next fit
        super().set_params(**kwargs)
        self._sync_control()
        return self

    def initialize_virtual_params(self):
        """skorch's virtual parameters, plus ``noise__*``: routed to the fitters.

        A routed ``noise__structure="isotropic"`` is stored on the net and
        reaches the fitters at the next fit. "noise" is no module, criterion
        or optimizer, so setting it re-initialises nothing; skorch's route for
        such a value is a virtual parameter (as it does for ``lr`` and
        ``optimizer__*``).
        """
        super().initialize_virtual_params()
        self.virtual_params_["noise__*"] = _store_routed_param
        return self

    def _sync_control(self):
        control = getattr(self, "noise_control_", None)
        if control is not None:
            control.scale = float(self.noise_scale)
            control.mode = self.noise_mode

    def predict_proba(self, X):
        """Class probabilities (the noise ensemble's, see the class doc); finite images only.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, C, H, W)
            Images.

        Returns
        -------
        proba : ndarray of shape (N, n_classes)
        """
        _check_finite(X, training=False)
        return super().predict_proba(X)

    def infer(self, x, **fit_params):
        # direct attribute assignment (net.noise_scale = ...) also takes effect
        self._sync_control()
        return super().infer(x, **fit_params)

    def fit(self, X, y=None, **fit_params):
        """Train the network, learning the noise on the way (see the class doc).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, C, H, W)
            Training images.
        y : array-like of shape (N,)
            Labels.
        **fit_params : dict
            Passed on to skorch.

        Returns
        -------
        self : NoisyNeuralNetClassifier
            The fitted net.
        """
        self._check_noise_params()
        if not self.warm_start or not self.initialized_:
            # a fresh fit learns a fresh noise and undoes an earlier freeze
            self._remove_noise()
            self._unfreeze()
            self.noise_ = {}
            self.noise_phase_started_ = False
            self.__dict__.pop("_augment_rng", None)
        return super().fit(X, y, **fit_params)

    # the hooks live in module_, which skorch pickles on its own: take them
    # out while pickling and rebuild them (linked to this net) after loading
    def __getstate__(self):
        had_noise = bool(getattr(self, "noise_", None)) and hasattr(self, "module_")
        if had_noise:
            self._remove_noise()
        try:
            state = super().__getstate__()
        finally:
            if had_noise:
                self._install_noise(self.noise_)
        state["noise_hooks_"] = []
        state.pop("_augment_rng", None)  # a torch.Generator does not pickle; drawn anew
        state.pop("_draws_module", None)  # parts of module_: cut anew after loading
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if getattr(self, "noise_", None) and hasattr(self, "module_"):
            self._install_noise(self.noise_)

    # ------------------------------------------------------------------
    # validation (before any training)
    # ------------------------------------------------------------------
    def _noise_spec(self):
        """``noise`` with ``FrozenEstimator`` wrappers removed (a fitter or a dict)."""
        if isinstance(self.noise, dict):
            return {name: _unwrap(f) for name, f in self.noise.items()}
        return None if self.noise is None else _unwrap(self.noise)

    def _layer_names(self):
        noise = self._noise_spec()
        if isinstance(noise, dict):
            layers = list(noise) if self.noise_layers is None else layer_names(self.noise_layers)
            missing = [name for name in layers if name not in noise]
            if missing:
                raise ValueError(f"noise has no fitter for layer(s) {missing}.")
            return layers
        if self.noise_layers is None:
            raise ValueError(
                "noise_layers is required with a single noise fitter: name the layer(s) "
                "to inject into, e.g. noise_layers='body.2'.")
        return layer_names(self.noise_layers)

    def _check_noise_params(self):
        scale = self.noise_scale
        if not isinstance(scale, Real) or isinstance(scale, bool) or not np.isfinite(scale) \
                or scale < 0:
            raise ValueError(f"noise_scale must be a non-negative number; got {scale!r}.")
        if self.noise_mode not in _MODES:
            raise ValueError(f"noise_mode must be one of {_MODES}; got {self.noise_mode!r}.")
        w = self.noise_warmup_epochs
        if w is not None and (not isinstance(w, Integral) or isinstance(w, bool) or w < 0):
            raise ValueError(f"noise_warmup_epochs must be a non-negative integer; got {w!r}.")
        if self.noise_retrain not in _RETRAIN:
            raise ValueError(
                f"noise_retrain must be one of {_RETRAIN} ('all': every layer trains on; "
                f"'after': the paper's freeze and re-initialise); got {self.noise_retrain!r}.")
        k = self.noise_ensemble
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(
                f"noise_ensemble must be an integer >= 1 (noise draws averaged per "
                f"prediction); got {k!r}.")
        if self.train_source is not None and not isinstance(self.train_source,
                                                            ModificationSource):
            raise TypeError(
                "train_source must be a structnoise source (e.g. LinfPGD(eps=0.1) or "
                f"GaussianNoise(0.1)); got {type(self.train_source).__name__}.")
        r = self.train_source_ratio
        if not isinstance(r, Real) or isinstance(r, bool) or not 0 < r <= 1:
            raise ValueError(f"train_source_ratio must be in (0, 1]; got {r!r}.")
        if self.noise is None and self.noise_retrain == "after" and self.noise_layers is None:
            raise ValueError(
                "noise_retrain='after' needs the layer to freeze up to: set noise_layers "
                "(for the paper's 'No Noise' baseline, noise=None with noise_layers named).")
        if self.noise is None:
            if self.noise_source is not None:
                raise ValueError(
                    "noise_source is set but noise is None: pass noise=StructuredNoiseFitter() "
                    "(the estimator the source's activation pairs are fitted with).")
            return
        noise = self._noise_spec()
        fitters = noise.values() if isinstance(noise, dict) else [noise]
        for f in fitters:
            if not isinstance(f, StructuredNoiseFitter):
                raise TypeError(
                    "noise must be a StructuredNoiseFitter (fitted ones may be wrapped in "
                    "sklearn.frozen.FrozenEstimator) or a dict layer -> StructuredNoiseFitter; "
                    f"got {type(f).__name__}.")
        if self.noise_source is not None and not isinstance(self.noise_source,
                                                            ModificationSource):
            raise TypeError(
                "noise_source must be a structnoise source (e.g. FGSM(eps=0.1)); got "
                f"{type(self.noise_source).__name__}.")
        unfitted = [f for f in fitters if not _is_fitted(f)]
        if unfitted and self.noise_source is None:
            raise ValueError(
                "noise is not fitted and noise_source is None: give a source to learn the "
                "noise from (e.g. noise_source=FGSM(eps=0.1)) or a fitted fitter. A fitted "
                "fitter becomes unfitted when the net is cloned (GridSearchCV, "
                "cross_val_score, clone), like any scikit-learn estimator: wrap it as "
                "noise=FrozenEstimator(fitter) (sklearn.frozen) to keep it through cloning.")
        self._layer_names()

    def _probe(self, X, y=None, **fit_params):
        """One forward pass on the first batch: layer widths and execution order, early.

        Returns ``(widths, order)``: layer name -> flattened width, and the
        names of the modules that own parameters (or are leaves) in the order
        their forward passes first completed.
        """
        layers = check_layers(self.module_, self._layer_names())
        widths, order = {}, []
        handles = [sub.register_forward_hook(
            lambda m, i, o, name=name: widths.__setitem__(name, o[0].numel()))
            for name, sub in layers.items()]

        def record(name):
            def hook(module, inputs, output):
                if name not in order:
                    order.append(name)
            return hook

        handles += [sub.register_forward_hook(record(name))
                    for name, sub in uncompiled(self.module_).named_modules() if name]
        try:
            # skorch builds the dataset and iterator exactly as for training
            # (its own errors propagate untouched); the first batch is run
            # with the fit params, as a training step would
            dataset = self.get_dataset(X, y)
            batch = next(iter(self.get_iterator(dataset, training=False)))
            xb, _ = unpack_data(batch)
            was_training = self.module_.training
            self.module_.eval()  # no batch-norm statistics updated by the probe
            try:
                with torch.no_grad(), self.noise_disabled():
                    self.infer(xb, **fit_params)
            except RuntimeError as exc:
                # torch's shape errors; skorch's own (ValueError, TypeError)
                # propagate as they are
                raise ValueError(
                    f"X of shape {getattr(X, 'shape', '?')} does not fit the module "
                    f"{type(self.module_).__name__}: {exc}") from exc
            finally:
                self.module_.train(was_training)
        finally:
            for h in handles:
                h.remove()
        return widths, order

    def _check_training_data(self, X, y, probe=True):
        """Images, labels and sources checked against the module, before any training step.

        The sources' parameters (``noise_source`` runs after the warm-up
        epochs, ``train_source`` in each batch), the image range they need,
        the images' dtype, one forward pass of the module on the first two
        images (their shape; left out with ``probe=False``: a module that
        takes fit params sees every forward pass), and 1-D labels against the
        module's outputs under a classification loss: each would otherwise
        fail mid-training, or after the warm-up, with torch's error.
        """
        sources = [(name, getattr(self, name)) for name in ("noise_source", "train_source")
                   if getattr(self, name) is not None]
        for name, source in sources:
            try:
                source._validate_params()
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"{name}={source!r} is not valid: {exc}") from None
        if not isinstance(X, (np.ndarray, torch.Tensor)):
            return  # datasets and dicts: skorch's to validate
        from ._validation import validate_images

        for name, source in sources:
            lo, hi = float(getattr(source, "clip_min", 0.0)), float(getattr(source, "clip_max",
                                                                             1.0))
            try:
                validate_images(X, lo, hi)
            except ValueError as exc:
                raise ValueError(f"X does not suit {name} {source.label}: {exc}") from None
        dtype = X.dtype if isinstance(X, torch.Tensor) else torch.from_numpy(
            np.empty(0, dtype=X.dtype)).dtype if X.dtype.kind in "fiub" else None
        expected = next((p.dtype for p in self.module_.parameters()), None)
        if dtype is not None and dtype.is_floating_point and expected is not None \
                and dtype != expected:
            raise TypeError(
                f"X is {dtype} but the module's parameters are {expected}: convert the images "
                f"first (e.g. X.astype(np.float32) for an array, X.float() for a tensor).")
        if len(X) == 0:
            raise ValueError("X holds no images (N=0).")
        if not probe:
            return
        xb = torch.as_tensor(X[:min(len(X), 2)]).to(self.device)
        was_training = self.module_.training
        self.module_.eval()
        try:
            with torch.no_grad(), self.noise_disabled():
                out = self.module_(xb)
        except RuntimeError as exc:  # torch's shape and dtype errors
            raise ValueError(f"X of shape {tuple(X.shape)} ({dtype}) does not fit the module "
                             f"{type(self.module_).__name__}: {exc}") from exc
        finally:
            self.module_.train(was_training)
        criterion = getattr(self, "criterion_", None)
        if y is None or not isinstance(criterion, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)):
            return  # other losses and criterion names (sequences, other targets): the user's
        labels = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if labels.ndim != 1 or labels.dtype == object:
            return  # sequences of labels, ragged arrays
        if len(labels) != len(X):
            raise ValueError(f"y must be a 1-D array of {len(X)} labels (one per image); got "
                             f"{len(labels)}.")
        if labels.dtype.kind not in "iu":
            raise TypeError(
                f"y holds {labels.dtype} values; expected integer class labels 0..C-1 (the "
                "module's outputs): encode them first (sklearn.preprocessing.LabelEncoder, "
                "or y.astype(int) for whole numbers stored as floats).")
        if isinstance(out, torch.Tensor) and out.ndim == 2 and len(labels):
            n_classes = out.shape[1]
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= n_classes:
                raise ValueError(
                    f"y holds labels from {lo} to {hi}, but the module has {n_classes} "
                    f"outputs: expected class labels 0..{n_classes - 1}.")

    def retraining_layers(self, X, y=None):
        """Which layers ``noise_retrain="after"`` freezes and re-initialises, from one forward pass.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, C, H, W)
            Images the module takes (the first batch is run, without noise).
        y : array-like, default=None
            Their labels (for datasets that need them).

        Returns
        -------
        frozen, reinitialised : list of str
            Names of the modules with parameters up to and including the
            noisy layer, and after it.

        Raises
        ------
        ValueError
            When no layer with parameters runs after the noisy one (nothing
            would be retrained), or ``X`` does not fit the module.

        Examples
        --------
        >>> import numpy as np
        >>> from structnoise import NoisyNeuralNetClassifier
        >>> from structnoise.models import DigitsMLP
        >>> net = NoisyNeuralNetClassifier(DigitsMLP, noise_layers="body.2").initialize()
        >>> frozen, after = net.retraining_layers(np.zeros((2, 1, 8, 8), np.float32))
        >>> frozen, after
        (['body.1'], ['body.3', 'head'])
        """
        _, order = self._probe(X, y)
        return self._retrain_split(order)

    def _retrain_split(self, order):
        """(frozen, re-initialised) module names for ``noise_retrain="after"``.

        ``order`` is the completion order of the forward hooks: a container
        completes after its children, so a noisy container's position is
        after all of its own layers.
        """
        layers = self._layer_names()
        position = {name: i for i, name in enumerate(order)}
        ran = [name for name in layers if name in position]
        if not ran:
            raise ValueError(f"None of the noise layers {layers} ran in a forward pass.")
        cut = min(position[name] for name in ran)
        owners = [name for name, mod in uncompiled(self.module_).named_modules()
                  if name and next(mod.parameters(recurse=False), None) is not None]
        ran_owners = sorted((name for name in owners if name in position),
                            key=position.__getitem__)
        frozen = [name for name in ran_owners if position[name] <= cut]
        after = [name for name in ran_owners if position[name] > cut]
        if not after:
            first = min(ran, key=position.__getitem__)
            raise ValueError(
                f"noise_retrain='after' has nothing to retrain: no layer with parameters runs "
                f"after the noisy layer {first!r}. Put the noise on an earlier layer or use "
                "noise_retrain='all'.")
        return frozen, after

    def _check_widths(self, widths):
        for name, fitter in self._fitters_for(self._layer_names()).items():
            if _is_fitted(fitter) and fitter.n_features_in_ != widths[name]:
                raise ValueError(
                    f"The noise for layer {name!r} has width {fitter.n_features_in_}, but the "
                    f"layer's activations have {widths[name]} features.")

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train (see :meth:`skorch.NeuralNet.partial_fit`), checking noise and input first."""
        self._check_noise_params()
        _check_finite(X)
        if not self.initialized_:
            self.initialize()
        # every check that needs the data or the module, before any step
        user_params = {k: v for k, v in fit_params.items()
                       if k not in ("_routing_method", "epochs")}
        if fit_params.get("epochs", self.max_epochs):
            self._check_training_data(X, y, probe=not user_params)
        # skorch threads its routing marker and fit_loop's ``epochs`` through
        # the fit params; neither reaches forward or train_split
        user_params = {k: v for k, v in fit_params.items()
                       if k not in ("_routing_method", "epochs")}
        if self.noise_phase_pending():
            check_layers(self.module_, self._layer_names())
            if self.noise_retrain == "after":
                # the layers before and after the noisy one are known from a
                # forward pass only: one on the first batch, before training
                widths, order = self._probe(X, y, **user_params)
                if self.noise is not None:
                    self._check_widths(widths)
                self._retrain_layers = self._retrain_split(order)
            # otherwise no extra forward pass: the noise hook checks the width
            # on the first training batch
        # callbacks disabled (or the LearnNoise one removed): the net runs the
        # default callback's code itself, before and after training
        fallback = None if any(isinstance(cb, LearnNoise) for _, cb in self.callbacks_) \
            else LearnNoise()
        if fallback is not None:
            fallback.on_train_begin(self, X=X, y=y)
        self._sync_control()
        super().partial_fit(X, y, classes=classes, **fit_params)
        if fallback is not None:
            fallback.on_train_end(self, X=X, y=y)
        return self

    def train_step_single(self, batch, **fit_params):
        """One training step; with ``train_source``, on partly modified inputs."""
        if self.train_source is not None:
            Xi, yi = unpack_data(batch)
            batch = (self._augment(Xi, yi), yi)
        return super().train_step_single(batch, **fit_params)

    def _augment(self, Xi, yi):
        """Replace ``train_source_ratio`` of the batch by the source's images."""
        if not isinstance(Xi, torch.Tensor) or yi is None:
            raise TypeError("train_source needs tensor images and labels in each batch.")
        n = Xi.shape[0]
        k = int(round(float(self.train_source_ratio) * n))
        if k == 0:
            return Xi
        rows = torch.randperm(n, generator=self._augment_generator())[:k].to(Xi.device)
        labels = yi if isinstance(yi, torch.Tensor) else torch.as_tensor(yi)
        modified = self.train_source.generate(self.module_, Xi[rows], labels[rows.cpu()])
        out = Xi.clone()
        out[rows] = modified.to(out.device, out.dtype)
        self._set_training(True)  # the source restores the mode; be explicit
        return out

    def _augment_generator(self):
        """The generator of the rows to modify: seeded from ``train_source.random_state``.

        Its own CPU generator, so the rows neither read nor advance torch's
        global stream; a fresh ``fit`` starts it again (same seed, same rows).
        """
        generator = self.__dict__.get("_augment_rng")
        if generator is None:
            generator = torch.Generator()
            seed = seed_of(getattr(self.train_source, "random_state", None))
            if seed is None:
                generator.seed()  # no random_state: fresh entropy, as scikit-learn does
            else:
                generator.manual_seed(derive_seed(seed, "augment-rows"))
            self._augment_rng = generator
        return generator

    def get_all_learnable_params(self):
        """The parameters the optimizer sees: only those that still train.

        After ``noise_retrain="after"`` freezes the layers up to the noisy
        one, the rebuilt optimizer holds the trainable parameters only.
        """
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def evaluation_step(self, batch, training=False):
        """Forward step for prediction: the mean logits of ``noise_ensemble`` draws."""
        k = int(self.noise_ensemble)
        if training or k == 1 or not self.noise_active_in_eval:
            return super().evaluation_step(batch, training=training)
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        with torch.set_grad_enabled(False):
            self._set_training(False)
            if isinstance(Xi, (torch.Tensor, np.ndarray)):
                # the draws bypass infer: sync the control as infer does
                self._sync_control()
                return stacked_draws(self.draws_module_, to_tensor(Xi, device=self.device), k,
                                     mean=True)
            # dicts and other inputs: k passes
            return torch.stack([self.infer(Xi) for _ in range(k)]).mean(0)

    @property
    def prediction_module_(self):
        """The torch module behind predictions, for attacks to target.

        ``module_`` itself, or, with ``noise_ensemble=k > 1`` and the noise
        active at evaluation, a module returning the mean logits of ``k``
        noise draws (one stacked pass). Attack sources given the net attack
        this module; pass ``net.module_`` to attack a single draw.
        """
        k = int(self.noise_ensemble)
        if k == 1 or not self.noise_active_in_eval:
            return self.module_
        from .sources.eot import EOTModel

        return EOTModel(self.draws_module_, k, average="logits")

    @property
    def draws_module_(self):
        """The module noise draws run on: ``module_``, cut where its noise starts.

        A :class:`~structnoise.splitting.SharedFront`: with noise at one
        layer, cut just after it, the layer's noise added first in the back
        (:func:`~structnoise.splitting.split_after`); with several, cut
        before the first (:func:`~structnoise.splitting.split_before`).
        ``k`` draws of a batch (the ensemble, EOT) then compute the layers
        up to the noise once. Its outputs are ``module_``'s, the same draws
        from the same streams; ``module_`` itself when the module does not
        split or carries no noise. Built once per installed noise (the
        attacks' protocols compare targets by identity).
        """
        self.check_is_fitted(["module_"])
        noise = getattr(self, "noise_modules_", None) or {}
        cached = self.__dict__.get("_draws_module")
        # compared by identity: a new module_ or newly installed noise is cut anew
        if cached is None or cached[0] is not self.module_ or cached[1] is not noise:
            shared = None
            if len(noise) == 1:
                # measured on 2 cores (PaperCNN, 10 draws of 256 images): 10-20% less
                # per draw, most with full noise after conv3, which no draw recomputes
                [(name, module)] = noise.items()
                control = self.noise_control_
                shared = split_after(self.module_, name, NoiseHook(module, control, name=name),
                                     functools.partial(_noise_off, control))
            if shared is None and noise:
                shared = split_before(self.module_, list(noise))
            cached = (self.module_, noise, self.module_ if shared is None else shared)
            self._draws_module = cached
        return cached[2]

    # ------------------------------------------------------------------
    # noise
    # ------------------------------------------------------------------
    def _fitters_for(self, layers):
        """One fitter per layer: the dict's, or clones of the single one.

        ``noise__*`` parameters are applied to every clone; each layer gets
        its own seed derived from the fitter's ``random_state``.
        """
        routed = self.get_params_for("noise")
        noise = self._noise_spec()
        if isinstance(noise, dict):
            fitters = {name: noise[name] for name in layers}
        else:
            if _is_fitted(noise) and not routed:
                return {name: noise for name in layers}
            seeds = layer_seeds(noise.random_state, layers)
            fitters = {}
            for name in layers:
                f = clone(noise)
                if seeds[name] is not None:
                    f.set_params(random_state=seeds[name])
                fitters[name] = f
        if routed:
            fitters = {name: (clone(f) if _is_fitted(f) else f).set_params(**routed)
                       for name, f in fitters.items()}
        return fitters

    def noise_needs_learning(self):
        """Whether some layer's noise still has to be learned from ``noise_source``."""
        if self.noise is None or getattr(self, "noise_", None):
            return False
        noise = self._noise_spec()
        fitters = noise.values() if isinstance(noise, dict) else [noise]
        return any(not _is_fitted(f) for f in fitters) or bool(self.get_params_for("noise"))

    def noise_phase_pending(self):
        """Whether the noise phase (install, ``noise_retrain``) has yet to start."""
        uses = self.noise is not None or (self.noise_retrain == "after"
                                          and self.noise_layers is not None)
        return uses and not getattr(self, "noise_phase_started_", False)

    def warmup_epochs(self):
        """Clean epochs before the noise phase: ``noise_warmup_epochs``, or its default.

        Half of ``max_epochs`` (at least 1) when the noise must be learned
        from ``noise_source``; 0 when it is pre-fitted or absent.
        """
        if self.noise_warmup_epochs is not None:
            return int(self.noise_warmup_epochs)
        if not self.noise_needs_learning():
            return 0
        return max(1, int(self.max_epochs) // 2)

    def begin_noise_phase(self, dataset_train):
        """Learn the noise on ``dataset_train`` (when needed), install it, apply ``noise_retrain``.

        :class:`~structnoise.callbacks.LearnNoise` calls it at the end of
        the warm-up; call it yourself to start the phase at another time.

        Parameters
        ----------
        dataset_train : torch Dataset or None
            The training split (None only when no noise is learned).

        Returns
        -------
        self : NoisyNeuralNetClassifier
            With ``noise_phase_started_`` True.
        """
        if self.noise is not None:
            if self.noise_needs_learning():
                self._fit_noise_from_dataset(dataset_train)
            else:
                self._install_noise(self._fitters_for(self._layer_names()))
        if self.noise_retrain == "after":
            self._freeze_and_reinitialize()
        self.noise_phase_started_ = True
        return self

    def _freeze_and_reinitialize(self):
        """The paper's retraining: freeze up to the noisy layer, re-init the rest."""
        split = getattr(self, "_retrain_layers", None)
        if split is None:
            raise ValueError("The layer order is unknown: call fit or partial_fit.")
        frozen, after = split
        modules = dict(uncompiled(self.module_).named_modules())
        self.noise_frozen_ = []
        for name in frozen:
            for pname, param in modules[name].named_parameters(recurse=False):
                param.requires_grad_(False)
                self.noise_frozen_.append(f"{name}.{pname}")
        self.noise_reinitialized_ = []
        for name in after:
            reset = getattr(modules[name], "reset_parameters", None)
            if callable(reset):
                reset()
                self.noise_reinitialized_.append(name)
            else:
                warnings.warn(
                    f"Layer {name!r} runs after the noisy layer but has no reset_parameters(); "
                    "it keeps its trained weights.", stacklevel=3)
        # the optimizer is rebuilt over the trainable parameters only (and
        # forgets the frozen layers' moments)
        self.initialize_optimizer()

    def _unfreeze(self):
        """Undo an earlier ``noise_retrain="after"`` freeze (a fresh fit)."""
        frozen = getattr(self, "noise_frozen_", None)
        if frozen and hasattr(self, "module_"):
            params = dict(uncompiled(self.module_).named_parameters())
            for name in frozen:
                if name in params:
                    params[name].requires_grad_(True)
        self.noise_frozen_ = []
        self.noise_reinitialized_ = []

    def _fit_noise_from_dataset(self, dataset):
        """Collect pairs on ``dataset`` (the training split) and fit the noise."""
        Xs, ys = [], []
        for batch in self.get_iterator(dataset, training=False):
            xb, yb = batch if isinstance(batch, (tuple, list)) else (batch, None)
            Xs.append(torch.as_tensor(xb))
            ys.append(None if yb is None else torch.as_tensor(yb))
        X = torch.cat(Xs)
        y = None if ys[0] is None else torch.cat(ys)
        self.fit_noise(X, y)

    def fit_noise(self, X, y=None):
        """Learn the noise from ``noise_source`` on ``(X, y)`` with the current weights.

        Called by ``fit`` after the warm-up epochs; call it yourself for
        post-hoc noise on a trained network.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, C, H, W)
            Training images.
        y : array-like of shape (N,), default=None
            Their labels (the source uses the predictions when None).

        Returns
        -------
        self : NoisyNeuralNetClassifier
            With ``noise_`` fitted and installed.
        """
        self._check_noise_params()
        layers = self._layer_names()
        fitters = self._fitters_for(layers)
        todo = [name for name, f in fitters.items() if not _is_fitted(f)]
        if todo:
            if self.noise_source is None:
                raise ValueError("noise_source is required to fit the noise.")
            self._remove_noise()
            pairs = ActivationPairs(self, todo, self.noise_source,
                                    batch_size=self.noise_batch_size).fit_transform(X, y)
            for name in todo:
                fitters[name].fit(pairs[name])
        self._install_noise(fitters)
        return self

    def _remove_noise(self):
        for handle in getattr(self, "noise_hooks_", []):
            handle.remove()
        self.noise_hooks_ = []
        self.noise_modules_ = {}

    def _install_noise(self, fitters):
        """Register one forward hook per layer; no host-device copy per step."""
        self._remove_noise()
        control = getattr(self, "noise_control_", None) or _NoiseControl()
        self.noise_control_ = control
        self._sync_control()
        layers = check_layers(self.module_, list(fitters))
        device = next((p.device for p in self.module_.parameters()), None)
        modules = {}
        for name, sub in layers.items():
            noise = fitters[name].to_torch(device=device)
            modules[name] = noise
            self.noise_hooks_.append(
                sub.register_forward_hook(NoiseHook(noise, control, name=name)))
        self.noise_ = dict(fitters)
        self.noise_modules_ = modules

    @contextlib.contextmanager
    def noise_disabled(self):
        """Context in which the network runs without its noise."""
        control = getattr(self, "noise_control_", None)
        if control is None:
            yield self
            return
        before = control.enabled
        control.enabled = False
        try:
            yield self
        finally:
            control.enabled = before

    @property
    def noise_active_in_eval(self):
        """Whether predictions are stochastic (noise on in eval mode)."""
        control = getattr(self, "noise_control_", None)
        return bool(getattr(self, "noise_", None)) and control is not None and \
            control.enabled and float(self.noise_scale) > 0 and \
            self.noise_mode in ("always", "eval")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags


@functools.cache
def _own_params():
    """The parameters NoisyNeuralNetClassifier adds to skorch's (read from the signatures)."""
    ours = inspect.signature(NoisyNeuralNetClassifier.__init__).parameters
    return frozenset(ours) - frozenset(inspect.signature(NeuralNetClassifier.__init__).parameters)


def _unwrap(fitter):
    """The fitter inside scikit-learn's ``FrozenEstimator`` (others as they are)."""
    try:
        from sklearn.frozen import FrozenEstimator
    except ImportError:  # pragma: no cover - scikit-learn < 1.6
        return fitter
    return fitter.estimator if isinstance(fitter, FrozenEstimator) else fitter


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
        return True
    except NotFittedError:
        return False


def _store_routed_param(net, key, value):
    """A ``noise__*`` value set on an initialized net: kept for the fitters' next fit."""
    setattr(net, key, value)


def _check_finite(X, training=True):
    """Refuse images with NaN or infinite values before any training or prediction.

    Trained on, one NaN pixel turns the loss into NaN and every prediction
    into class 0, silently; predicted on, a NaN image gets a class all the
    same. Arrays and tensors of floats are checked; other inputs (dicts,
    datasets) are skorch's to validate.
    """
    if isinstance(X, torch.Tensor):
        if not X.is_floating_point():
            return
        bad = int((~torch.isfinite(X.detach())).sum())
    elif isinstance(X, np.ndarray):
        if not np.issubdtype(X.dtype, np.floating):
            return
        bad = int(X.size - np.count_nonzero(np.isfinite(X)))
    else:
        return
    if bad:
        consequence = "the network would train to a NaN loss" if training else \
            "their predictions would be meaningless classes"
        raise ValueError(
            f"X holds {bad} non-finite value(s) (NaN or infinity); {consequence}. Expected "
            "finite images (N, C, H, W), e.g. in [0, 1]: drop or repair the images with "
            "missing values first.")
