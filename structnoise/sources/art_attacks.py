"""Attacks from the Adversarial Robustness Toolbox (ART), the paper's library.

:class:`AutoPGD` wraps ART's ``AutoProjectedGradientDescent`` and
:class:`SquareAttack` its ``SquareAttack``, with ART's parameter names and
defaults, in the shape of every structnoise source: scikit-learn parameters,
``generate(model, X, y=None)``, ``eot_samples``, ``random_state``,
``batch_size`` and the model's device. The torch module is wrapped in ART's
``PyTorchClassifier`` once per call, with the source's clip range.

EOT. ART's attacks take the classifier's outputs as they come, so with
``eot_samples=k > 1`` the classifier is the mean of ``k`` noise draws of the
logits (one stacked pass): AutoPGD's gradients and Square's queries then see
the expectation of the stochastic network's logits rather than one draw.

Randomness. ART draws its random starts (AutoPGD) and its square positions
(Square) from numpy's global generator; with a ``random_state`` it is seeded
inside the call and restored after, so the same seed gives the same images
as raw ART seeded the same way.
"""

import contextlib
import sys
import types
from numbers import Integral, Real

import numpy as np
import torch

from .._inference import attack_labels, attack_mode, module_device, resolve_module
from .._param_validation import Interval
from .._random import seed_of
from .._validation import check_targeted
from .base import ModificationSource
from .eot import EOTModel

__all__ = ["AutoPGD", "SquareAttack", "art_classifier"]

_POSITIVE = [Interval(Real, 0, None, closed="neither")]
_POS_INT = [Interval(Integral, 1, None, closed="left")]
_COMMON = {
    "clip_min": [Real],
    "clip_max": [Real],
    "batch_size": _POS_INT,
    "random_state": ["random_state"],
    "eot_samples": _POS_INT,
    "verbose": ["verbose"],
}


def _norm_key(norm):
    """ART's norm spelling: ``np.inf`` for "inf"/inf, else the number."""
    if isinstance(norm, str):
        return np.inf if norm.lower() == "inf" else norm
    return np.inf if norm == np.inf else norm


@contextlib.contextmanager
def _numpy_seeded(random_state):
    """Seed numpy's global generator (which ART uses) inside the block only."""
    seed = seed_of(random_state)
    if seed is None:
        yield
        return
    state = np.random.get_state()  # noqa: NPY002 - ART uses the global generator
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def art_classifier(module, input_shape, n_classes, clip_min=0.0, clip_max=1.0):
    """ART's ``PyTorchClassifier`` around a torch module that returns logits.

    Parameters
    ----------
    module : torch.nn.Module
        The network (left on its device).
    input_shape : tuple of int
        Shape of one image, e.g. ``(1, 28, 28)``.
    n_classes : int
        Number of logits.
    clip_min, clip_max : float, default=0.0, 1.0
        Valid pixel range.

    Returns
    -------
    classifier : art.estimators.classification.PyTorchClassifier
        With cross-entropy loss on the logits.

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources.art_attacks import art_classifier
    >>> clf = art_classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)),
    ...                      (1, 8, 8), 10)
    >>> clf.nb_classes
    10
    """
    from art.estimators.classification import PyTorchClassifier

    device = module_device(module)
    return PyTorchClassifier(
        model=module, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(input_shape),
        nb_classes=int(n_classes), clip_values=(float(clip_min), float(clip_max)),
        device_type="gpu" if device.type == "cuda" else "cpu")


class _ARTAttack(ModificationSource):
    """Shared body of the ART wrappers."""

    kind = "adversarial"
    strength_param = "eps"
    _art_class = None
    _norms = ()

    def _art_kwargs(self):
        raise NotImplementedError

    def _check_norm(self):
        key = _norm_key(self.norm)
        if key not in self._norms:
            shown = ", ".join("inf" if n == np.inf else repr(n) for n in self._norms)
            raise ValueError(
                f"{type(self).__name__} supports the norms {shown} (ART's); got "
                f"norm={self.norm!r}.")
        return key

    @contextlib.contextmanager
    def _prepare(self, model, X, y):
        """Eval mode, frozen parameters, numpy's generator seeded; ART's classifier and attack.

        A net with ``noise_ensemble > 1`` is attacked through its ensemble
        (``prediction_module_``); ``eot_samples`` draws are averaged in the
        logits.
        """
        self._check_norm()
        check_targeted(self, y)
        import art.attacks.evasion as evasion

        module = resolve_module(model)
        device = module_device(module)
        predict = EOTModel(module, self.eot_samples, average="logits")
        with attack_mode(predict), _numpy_seeded(self.random_state):
            # the EOT draws are inside ``predict``: one pass of it per prediction
            labels, n_classes = attack_labels(predict, X.to(torch.float32), y, eot_samples=1,
                                              batch_size=self.batch_size, device=device,
                                              dtype=torch.float32)
            classifier = art_classifier(predict, X.shape[1:], n_classes, self.clip_min,
                                        self.clip_max)
            show = bool(self.verbose) and sys.stderr.isatty()
            attack = getattr(evasion, self._art_class)(
                classifier, batch_size=int(self.batch_size), verbose=show, **self._art_kwargs())
            yield types.SimpleNamespace(attack=attack, labels=labels)

    def _blocks(self, n_samples, state):
        # ART batches (its batch_size) and shows progress itself: one call
        return [slice(0, n_samples)]

    def _generate_batch(self, state, X, y, *, index, rows):
        adv = state.attack.generate(x=X.to(torch.float32).cpu().numpy(),
                                    y=state.labels[rows].cpu().numpy())
        out = torch.from_numpy(np.asarray(adv, dtype=np.float32))
        # ART's float32 arithmetic can leave the range by one ulp
        return out.clamp_(self.clip_min, self.clip_max)


class AutoPGD(_ARTAttack):
    """Auto-PGD (Croce & Hein 2020) from ART (``AutoProjectedGradientDescent``).

    The paper's strongest attack: ART's defaults, 100 iterations and 5
    random restarts.

    Parameters
    ----------
    eps : float, default=0.3
        Budget in the ``norm`` (> 0, as ART requires).
    norm : {inf, "inf", 1, 2}, default=inf
        Norm of the budget.
    eps_step : float, default=0.1
        Initial step size.
    max_iter : int, default=100
        Iterations per restart.
    nb_random_init : int, default=5
        Random restarts.
    loss_type : {None, "cross_entropy", "difference_logits_ratio"}, default=None
        ART's loss; None uses the classifier's cross-entropy.
    targeted : bool, default=False
        Move towards ``y`` instead of away from it.
    clip_min, clip_max : float, default=0.0, 1.0
        Valid pixel range.
    batch_size : int, default=32
        Images attacked at once (ART's ``batch_size``).
    random_state : int, RandomState or None, default=None
        Seeds numpy's global generator (ART's random starts) in the call.
    eot_samples : int, default=1
        Noise draws averaged in the logits (EOT).
    verbose : int, default=0
        Show ART's progress bars (on a terminal).

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import AutoPGD
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X = torch.rand(4, 1, 8, 8)
    >>> X_adv = AutoPGD(eps=0.1, max_iter=5, nb_random_init=1, random_state=0).generate(model, X)
    >>> bool((X_adv - X).abs().max() <= 0.1 + 1e-6)
    True
    """

    _art_class = "AutoProjectedGradientDescent"
    _norms = (np.inf, 1, 2)
    _parameter_constraints = {
        "eps": _POSITIVE, "norm": [Real, str], "eps_step": _POSITIVE, "max_iter": _POS_INT,
        "nb_random_init": _POS_INT, "loss_type": [None, str], "targeted": ["boolean"],
        **_COMMON}

    def __init__(self, eps=0.3, *, norm=np.inf, eps_step=0.1, max_iter=100, nb_random_init=5,
                 loss_type=None, targeted=False, clip_min=0.0, clip_max=1.0, batch_size=32,
                 random_state=None, eot_samples=1, verbose=0):
        self.eps = eps
        self.norm = norm
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.nb_random_init = nb_random_init
        self.loss_type = loss_type
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose

    def describe(self):
        """Family "AutoPGD", or "AutoPGD-DLR" with the DLR loss (a different attack).

        AutoAttack counts APGD with the cross-entropy loss and APGD with the
        DLR loss as two attacks, and an experiment that evaluates both must
        tell their rows apart.

        Returns
        -------
        description : dict
            As :meth:`ModificationSource.describe`.

        Examples
        --------
        >>> from structnoise.sources import AutoPGD
        >>> AutoPGD(eps=0.1, loss_type="difference_logits_ratio").describe()["family"]
        'AutoPGD-DLR'
        """
        d = super().describe()
        if self.loss_type == "difference_logits_ratio":
            d["family"] = "AutoPGD-DLR"
        return d

    def _art_kwargs(self):
        return dict(norm=_norm_key(self.norm), eps=float(self.eps),
                    eps_step=float(self.eps_step), max_iter=int(self.max_iter),
                    targeted=bool(self.targeted), nb_random_init=int(self.nb_random_init),
                    loss_type=self.loss_type)


class SquareAttack(_ARTAttack):
    """Square Attack (Andriushchenko et al. 2020), gradient-free, from ART.

    Random square-shaped updates accepted when they lower the margin; it
    needs only the model's outputs, so gradient masking cannot hide from it.
    The paper's settings are ART's defaults (100 iterations, ``p_init=0.8``).

    Parameters
    ----------
    eps : float, default=0.3
        Budget in the ``norm`` (> 0).
    norm : {inf, "inf", 2}, default=inf
        Norm of the budget.
    max_iter : int, default=100
        Iterations (queries per image and restart).
    p_init : float, default=0.8
        Initial fraction of pixels changed per square.
    nb_restarts : int, default=1
        Restarts.
    clip_min, clip_max : float, default=0.0, 1.0
        Valid pixel range.
    batch_size : int, default=128
        Images attacked at once (ART's ``batch_size``).
    random_state : int, RandomState or None, default=None
        Seeds numpy's global generator (ART's squares) in the call.
    eot_samples : int, default=1
        Noise draws averaged in each query's logits (EOT).
    verbose : int, default=0
        Show ART's progress bars (on a terminal).

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import SquareAttack
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X = torch.rand(4, 1, 8, 8)
    >>> X_adv = SquareAttack(eps=0.1, max_iter=5, random_state=0).generate(model, X)
    >>> bool((X_adv - X).abs().max() <= 0.1 + 1e-6)
    True
    """

    _art_class = "SquareAttack"
    _norms = (np.inf, 2)
    _parameter_constraints = {
        "eps": _POSITIVE, "norm": [Real, str], "max_iter": _POS_INT,
        "p_init": [Interval(Real, 0, 1, closed="right")], "nb_restarts": _POS_INT, **_COMMON}

    def __init__(self, eps=0.3, *, norm=np.inf, max_iter=100, p_init=0.8, nb_restarts=1,
                 clip_min=0.0, clip_max=1.0, batch_size=128, random_state=None, eot_samples=1,
                 verbose=0):
        self.eps = eps
        self.norm = norm
        self.max_iter = max_iter
        self.p_init = p_init
        self.nb_restarts = nb_restarts
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose

    def _art_kwargs(self):
        return dict(norm=_norm_key(self.norm), eps=float(self.eps), max_iter=int(self.max_iter),
                    p_init=float(self.p_init), nb_restarts=int(self.nb_restarts))
