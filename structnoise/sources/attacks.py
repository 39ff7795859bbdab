"""Adversarial attacks: scikit-learn-cloneable wrappers around advertorch.

Each class holds advertorch's parameters (same names and defaults) plus
``targeted``, ``clip_min``, ``clip_max``, ``batch_size``, ``random_state``,
``verbose`` and ``eot_samples``, builds the advertorch attack in
:meth:`~structnoise.sources.base.ModificationSource.generate` and calls its
``perturb(x, y)`` batch by batch on the model's device.

EOT. With ``eot_samples=k > 1`` a stochastic network is attacked through
:class:`~structnoise.sources.base.EOTModel`: for the loss-gradient attacks
(FGSM, PGD, momentum) every gradient is the mean of ``k`` single-draw loss
gradients; the attacks that use the logits beyond a loss (C&W, DDN, FAB,
SPSA, spatial) see the mean of ``k`` draws of the logits.
"""

import contextlib
import functools
import inspect
import types
from numbers import Integral, Real

import numpy as np
import torch

from .._inference import (
    attack_labels,
    attack_mode,
    batches,
    module_device,
    module_dtype,
    resolve_module,
)
from .._param_validation import Interval, StrOptions
from .._random import block_seed, seed_of, torch_seeded
from .._validation import check_targeted
from ._advertorch import import_advertorch, quiet
from .base import ModificationSource
from .eot import EOTLoss, EOTModel

__all__ = ["FGSM", "LinfPGD", "L2PGD", "L1PGD", "MomentumIterative", "CarliniWagnerL2",
           "DDN", "FAB", "LinfSPSA", "SpatialTransform"]

_COMMON_CONSTRAINTS = {
    "targeted": ["boolean"],
    "clip_min": [Real],
    "clip_max": [Real],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "eot_samples": [Interval(Integral, 1, None, closed="left")],
    "verbose": ["verbose"],
}
_NONNEG = [Interval(Real, 0, None, closed="left")]
_POS_INT = [Interval(Integral, 1, None, closed="left")]
_NONNEG_INT = [Interval(Integral, 0, None, closed="left")]
# parameters that are ours, never passed to advertorch
_OWN = ("batch_size", "random_state", "eot_samples", "verbose")


@functools.cache
def _accepted_parameters(cls):
    """The parameter names of ``cls.__init__``, ``self`` aside (read once per class)."""
    return frozenset(inspect.signature(cls.__init__).parameters) - {"self"}


def _common_parameter_docs(cls):
    """The docs of the parameters every attack shares, worded for ``cls``."""
    if "rand_init" in _accepted_parameters(cls):
        seeds = "Seeds torch's generator (the random start, drawn per block of 64 images)"
    elif cls._is_random is not _AdvertorchAttack._is_random:
        seeds = "Seeds torch's generator (its random draws, per block of 64 images)"
    else:
        seeds = "Seeds torch's generator (for a model that draws from it)"
    eot = ("Noise draws per gradient for stochastic models: each gradient is the mean of "
           "``eot_samples`` single-draw loss gradients (EOT)." if cls._eot == "loss" else
           "Noise draws averaged in the logits for stochastic models (EOT).")
    docs = {
        "targeted": "    targeted : bool, default=False\n"
                    "        Move towards ``y`` instead of away from it.\n",
        "clip_min": "    clip_min, clip_max : float, default=0.0, 1.0\n"
                    "        Valid pixel range.\n",
        "batch_size": "    batch_size : int, default=256\n        Images attacked at once.\n",
        "random_state": "    random_state : int, RandomState or None, default=None\n"
                        f"        {seeds} during the attack only.\n",
        "eot_samples": f"    eot_samples : int, default=1\n        {eot}\n",
        "verbose": "    verbose : int, default=0\n        Show a progress bar (on a terminal).\n",
    }
    accepted = _accepted_parameters(cls)
    # a class documents a shared parameter itself when it says more (FAB's range)
    own = cls.__doc__
    return "".join(text for name, text in docs.items()
                   if name in accepted and text.split(":")[0] not in own)


def _documented(cls):
    """Fill ``{common_parameters}`` in the class docstring from one template.

    The nine ``__init__`` bodies stay explicit (scikit-learn reads their
    signatures); the docs of the parameters they share are written once.
    """
    cls.__doc__ = cls.__doc__.replace("    {common_parameters}\n",
                                      _common_parameter_docs(cls))
    return cls


class _FromUnitRange(torch.nn.Module):
    """``module`` seen through images in [0, 1]: ``module(lo + span * u)``.

    For the advertorch attacks that assume [0, 1] images (FAB clamps to it,
    the spatial attack pads with 0): they run in [0, 1] and the result is
    mapped back to the caller's range.
    """

    def __init__(self, module, lo, span):
        super().__init__()
        self.module = module
        self.lo, self.span = float(lo), float(span)

    def forward(self, u):
        return self.module(self.lo + self.span * u)


class _AdvertorchAttack(ModificationSource):
    """Shared body of the attack wrappers."""

    kind = "adversarial"
    strength_param = "eps"
    _advertorch_class = None
    #: how EOT averages: "loss" (gradient attacks) or "logits"
    _eot = "loss"
    #: the advertorch attack assumes images in [0, 1]: run it there
    _unit_range = False
    #: images per block with its own seed, for random attacks (so results do
    #: not depend on batch_size)
    _rng_block = 64

    def _is_random(self):
        """Whether the attack draws random numbers (a random start)."""
        return bool(getattr(self, "rand_init", False))

    def _advertorch_kwargs(self, attack_cls, n_classes):
        accepted = _accepted_parameters(attack_cls)
        # our parameters that advertorch also takes (get_params would read
        # our signature again on every call)
        kwargs = {k: getattr(self, k) for k in _accepted_parameters(type(self)) & accepted
                  if k not in _OWN}
        if "num_classes" in accepted:
            kwargs["num_classes"] = n_classes
        if self.eot_samples > 1 and self._eot == "loss":
            kwargs["loss_fn"] = EOTLoss(self.eot_samples, reduction="sum")
        return kwargs

    @contextlib.contextmanager
    def _prepare(self, model, X, y):
        """Eval mode, frozen parameters and seeding for the attack, built once.

        ``y=None`` takes the model's predictions (mean logits over
        ``eot_samples`` draws) as labels, so no true label leaks into the
        attack.
        """
        check_targeted(self, y)
        module = resolve_module(model)
        device, dtype = module_device(module), module_dtype(module)
        attack_cls = getattr(import_advertorch(), self._advertorch_class)
        with attack_mode(module), quiet(), torch_seeded(seed_of(self.random_state), device):
            labels, n_classes = attack_labels(module, X, y, eot_samples=self.eot_samples,
                                              batch_size=self.batch_size, device=device,
                                              dtype=dtype)
            predict = module if self.eot_samples == 1 else \
                EOTModel(module, self.eot_samples, average=self._eot)
            kwargs = self._advertorch_kwargs(attack_cls, n_classes)
            lo, span = float(self.clip_min), float(self.clip_max - self.clip_min)
            rescale = self._unit_range and (lo, span) != (0.0, 1.0)
            if rescale:
                predict = _FromUnitRange(predict, lo, span)
                kwargs.update({k: v for k, v in (("clip_min", 0.0), ("clip_max", 1.0))
                               if k in kwargs})
                if kwargs.get("eps") is not None:
                    kwargs["eps"] = kwargs["eps"] / span
            state = types.SimpleNamespace(
                attack=attack_cls(predict, **kwargs), device=device, dtype=dtype,
                labels=labels, lo=lo, span=span, rescale=rescale, starts=None,
                seed=seed_of(self.random_state) if self._is_random() else None)
            if state.seed is not None and self._starts_given:
                # an attack that can take its random start from us runs whole
                # batches from starts drawn per seeded block of _rng_block images
                state.starts = torch.empty(X.shape, dtype=dtype, device=X.device)
                for j, sl in enumerate(batches(X.shape[0], self._rng_block)):
                    state.starts[sl] = self._random_start(
                        state.attack, self._to_attack_space(state, X[sl]),
                        block_seed(state.seed, j), device)
            yield state

    def _blocks(self, n_samples, state):
        # random attacks seeded per block of _rng_block images, unless their
        # starts are drawn per block already: the result does not depend on
        # batch_size either way
        seeded_blocks = state.seed is not None and state.starts is None
        return batches(n_samples, self._rng_block if seeded_blocks else self.batch_size)

    @staticmethod
    def _to_attack_space(state, x):
        x = x.to(state.device, state.dtype)
        return (x - state.lo) / state.span if state.rescale else x

    def _generate_batch(self, state, X, y, *, index, rows):
        xb = self._to_attack_space(state, X)
        yb = state.labels[rows].to(state.device)
        if state.starts is not None:
            adv = self._perturb_from(state.attack, xb, yb, state.starts[rows].to(state.device))
        else:
            # each fixed block of images its own seed (none without a random_state)
            seed = None if state.seed is None else block_seed(state.seed, index)
            with torch_seeded(seed, state.device):
                adv = state.attack.perturb(xb, yb)
        return adv * state.span + state.lo if state.rescale else adv

    #: whether the attack's random start can be drawn outside advertorch
    #: (``_random_start``) and the attack run from it (``_perturb_from``)
    _starts_given = False

    def _random_start(self, attack, x, seed, device):
        """advertorch's random start for the images ``x``, drawn under ``seed``."""
        adv = import_advertorch()
        delta = torch.nn.Parameter(torch.zeros_like(x))
        with torch_seeded(seed, device):
            adv.utils.rand_init_delta(delta, x, attack.ord, attack.eps, attack.clip_min,
                                      attack.clip_max)
        return adv.utils.clamp(x + delta.data, min=attack.clip_min, max=attack.clip_max) - x

    def _perturb_from(self, attack, xb, yb, starts):
        raise NotImplementedError


@_documented
class FGSM(_AdvertorchAttack):
    """Fast gradient sign method (``advertorch.attacks.GradientSignAttack``).

    Parameters
    ----------
    eps : float, default=0.3
        L-infinity budget.
    {common_parameters}

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import FGSM
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X = torch.rand(4, 1, 8, 8)
    >>> X_adv = FGSM(eps=0.1).generate(model, X)
    >>> bool((X_adv - X).abs().max() <= 0.1 + 1e-6)
    True
    """

    _advertorch_class = "GradientSignAttack"
    _parameter_constraints = {"eps": _NONNEG, **_COMMON_CONSTRAINTS}

    def __init__(self, eps=0.3, *, targeted=False, clip_min=0.0, clip_max=1.0,
                 batch_size=256, random_state=None, eot_samples=1, verbose=0):
        self.eps = eps
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose


class _PGDBase(_AdvertorchAttack):
    # advertorch's PGDAttack.perturb draws the random start, then runs
    # perturb_iterative from it: with the start drawn per seeded block here,
    # whole batches run in one call (one Python loop of nb_iter steps per
    # batch, not per block of 64 images) with the same result
    _starts_given = True

    def _perturb_from(self, attack, xb, yb, starts):
        """``attack.perturb(xb, yb)`` from the given random start."""
        from advertorch.attacks.iterative_projected_gradient import perturb_iterative

        x, y = attack._verify_and_process_inputs(xb, yb)
        return perturb_iterative(
            x, y, attack.predict, nb_iter=attack.nb_iter, eps=attack.eps,
            eps_iter=attack.eps_iter, loss_fn=attack.loss_fn, minimize=attack.targeted,
            ord=attack.ord, clip_min=attack.clip_min, clip_max=attack.clip_max,
            delta_init=torch.nn.Parameter(starts), l1_sparsity=attack.l1_sparsity).data

    _parameter_constraints = {"eps": _NONNEG, "nb_iter": _NONNEG_INT, "eps_iter": _NONNEG,
                              "rand_init": ["boolean"], **_COMMON_CONSTRAINTS}

    def __init__(self, eps=0.3, *, nb_iter=40, eps_iter=0.01, rand_init=True,
                 targeted=False, clip_min=0.0, clip_max=1.0, batch_size=256,
                 random_state=None, eot_samples=1, verbose=0):
        self.eps = eps
        self.nb_iter = nb_iter
        self.eps_iter = eps_iter
        self.rand_init = rand_init
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose


_PGD_PARAMS = """
    Parameters
    ----------
    eps : float, default={eps}
        {norm} budget.
    nb_iter : int, default=40
        Iterations.
    eps_iter : float, default=0.01
        Step size.
    rand_init : bool, default=True
        Start from a random point of the ball.
    {{common_parameters}}
"""


@_documented
class LinfPGD(_PGDBase):
    __doc__ = """Projected gradient descent in L-infinity (``LinfPGDAttack``).
""" + _PGD_PARAMS.format(eps=0.3, norm="L-infinity") + """
    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import LinfPGD
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X = torch.rand(4, 1, 8, 8)
    >>> LinfPGD(eps=0.1, nb_iter=5, eps_iter=0.05, random_state=0).generate(model, X).shape
    torch.Size([4, 1, 8, 8])
    """
    _advertorch_class = "LinfPGDAttack"


@_documented
class L2PGD(_PGDBase):
    __doc__ = """Projected gradient descent in L2 (``L2PGDAttack``).
""" + _PGD_PARAMS.format(eps=0.3, norm="L2") + """
    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import L2PGD
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X_adv = L2PGD(eps=0.5, nb_iter=5, eps_iter=0.2).generate(model, torch.rand(2, 1, 8, 8))
    >>> X_adv.shape
    torch.Size([2, 1, 8, 8])
    """
    _advertorch_class = "L2PGDAttack"


@_documented
class L1PGD(_PGDBase):
    __doc__ = """Projected gradient descent in L1 (``L1PGDAttack``).
""" + _PGD_PARAMS.format(eps=10.0, norm="L1") + """
    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import L1PGD
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> L1PGD(eps=2.0, nb_iter=3, eps_iter=0.5).generate(model, torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """
    _advertorch_class = "L1PGDAttack"

    def __init__(self, eps=10.0, *, nb_iter=40, eps_iter=0.01, rand_init=True,
                 targeted=False, clip_min=0.0, clip_max=1.0, batch_size=256,
                 random_state=None, eot_samples=1, verbose=0):
        super().__init__(eps=eps, nb_iter=nb_iter, eps_iter=eps_iter, rand_init=rand_init,
                         targeted=targeted, clip_min=clip_min, clip_max=clip_max,
                         batch_size=batch_size, random_state=random_state,
                         eot_samples=eot_samples, verbose=verbose)


@_documented
class MomentumIterative(_AdvertorchAttack):
    """Momentum iterative attack (``MomentumIterativeAttack``).

    Parameters
    ----------
    eps : float, default=0.3
        Budget in the ``ord`` norm.
    nb_iter : int, default=40
        Iterations.
    decay_factor : float, default=1.0
        Momentum decay.
    eps_iter : float, default=0.01
        Step size.
    ord : {inf, 2}, default=inf
        Norm of the budget.
    {common_parameters}

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import MomentumIterative
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> MomentumIterative(eps=0.1, nb_iter=3).generate(model, torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    _advertorch_class = "MomentumIterativeAttack"
    _parameter_constraints = {"eps": _NONNEG, "nb_iter": _NONNEG_INT, "decay_factor": _NONNEG,
                              "eps_iter": _NONNEG, "ord": [Real], **_COMMON_CONSTRAINTS}

    def __init__(self, eps=0.3, *, nb_iter=40, decay_factor=1.0, eps_iter=0.01, ord=np.inf,
                 targeted=False, clip_min=0.0, clip_max=1.0, batch_size=256,
                 random_state=None, eot_samples=1, verbose=0):
        self.eps = eps
        self.nb_iter = nb_iter
        self.decay_factor = decay_factor
        self.eps_iter = eps_iter
        self.ord = ord
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose


@_documented
class CarliniWagnerL2(_AdvertorchAttack):
    """Carlini & Wagner L2 attack (``CarliniWagnerL2Attack``).

    Parameters
    ----------
    confidence : float, default=0
        Margin required of the adversarial class.
    learning_rate : float, default=0.01
        Adam step size.
    binary_search_steps : int, default=9
        Searches over the trade-off constant.
    max_iterations : int, default=10000
        Optimisation steps per search.
    abort_early : bool, default=True
        Stop a search when the loss stalls.
    initial_const : float, default=1e-3
        Initial trade-off constant.
    {common_parameters}

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import CarliniWagnerL2
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> cw = CarliniWagnerL2(binary_search_steps=1, max_iterations=5)
    >>> cw.generate(model, torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    _advertorch_class = "CarliniWagnerL2Attack"
    _eot = "logits"
    _parameter_constraints = {"confidence": _NONNEG, "learning_rate": _NONNEG,
                              "binary_search_steps": _POS_INT, "max_iterations": _NONNEG_INT,
                              "abort_early": ["boolean"], "initial_const": _NONNEG,
                              **_COMMON_CONSTRAINTS}

    def __init__(self, confidence=0, *, learning_rate=0.01, binary_search_steps=9,
                 max_iterations=10000, abort_early=True, initial_const=1e-3, targeted=False,
                 clip_min=0.0, clip_max=1.0, batch_size=256, random_state=None,
                 eot_samples=1, verbose=0):
        self.confidence = confidence
        self.learning_rate = learning_rate
        self.binary_search_steps = binary_search_steps
        self.max_iterations = max_iterations
        self.abort_early = abort_early
        self.initial_const = initial_const
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose


@_documented
class DDN(_AdvertorchAttack):
    """Decoupled direction and norm L2 attack (``DDNL2Attack``).

    Parameters
    ----------
    nb_iter : int, default=100
        Iterations.
    gamma : float, default=0.05
        Norm update factor.
    init_norm : float, default=1.0
        Initial norm of the perturbation.
    quantize : bool, default=True
        Quantize to ``levels`` grey levels.
    levels : int, default=256
        Number of levels.
    {common_parameters}

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import DDN
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> DDN(nb_iter=3).generate(model, torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    _advertorch_class = "DDNL2Attack"
    _eot = "logits"
    _parameter_constraints = {"nb_iter": _NONNEG_INT, "gamma": _NONNEG, "init_norm": _NONNEG,
                              "quantize": ["boolean"], "levels": _POS_INT,
                              **_COMMON_CONSTRAINTS}

    def __init__(self, nb_iter=100, *, gamma=0.05, init_norm=1.0, quantize=True, levels=256,
                 targeted=False, clip_min=0.0, clip_max=1.0, batch_size=256,
                 random_state=None, eot_samples=1, verbose=0):
        self.nb_iter = nb_iter
        self.gamma = gamma
        self.init_norm = init_norm
        self.quantize = quantize
        self.levels = levels
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose


@_documented
class FAB(_AdvertorchAttack):
    """Fast adaptive boundary attack (``FABAttack``), untargeted.

    Parameters
    ----------
    norm : {"Linf", "L2", "L1"}, default="Linf"
        Norm minimised.
    n_restarts : int, default=1
        Random restarts.
    n_iter : int, default=100
        Iterations.
    eps : float, default=None
        Radius of the random restarts (advertorch's default when None).
    alpha_max : float, default=0.1
        Maximum step bias.
    eta : float, default=1.05
        Overshoot.
    beta : float, default=0.9
        Backward step.
    clip_min, clip_max : float, default=0.0, 1.0
        Valid pixel range of the input (advertorch's FAB assumes [0, 1]: the
        attack runs on the images mapped to [0, 1], ``eps`` scaled alike,
        and the result is mapped back).
    {common_parameters}

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import FAB
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> FAB(n_iter=3).generate(model, torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    _advertorch_class = "FABAttack"
    _unit_range = True

    def _is_random(self):
        return self.n_restarts > 1
    _eot = "logits"
    _parameter_constraints = {"norm": [StrOptions({"Linf", "L2", "L1"})],
                              "n_restarts": _POS_INT, "n_iter": _NONNEG_INT,
                              "eps": [Interval(Real, 0, None, closed="left"), None],
                              "alpha_max": _NONNEG, "eta": _NONNEG, "beta": _NONNEG,
                              **{k: v for k, v in _COMMON_CONSTRAINTS.items() if k != "targeted"}}

    def __init__(self, norm="Linf", *, n_restarts=1, n_iter=100, eps=None, alpha_max=0.1,
                 eta=1.05, beta=0.9, clip_min=0.0, clip_max=1.0, batch_size=256,
                 random_state=None, eot_samples=1, verbose=0):
        self.norm = norm
        self.n_restarts = n_restarts
        self.n_iter = n_iter
        self.eps = eps
        self.alpha_max = alpha_max
        self.eta = eta
        self.beta = beta
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose


@_documented
class LinfSPSA(_AdvertorchAttack):
    """SPSA, a gradient-free L-infinity attack (``LinfSPSAAttack``).

    It only queries the model's outputs, so it is the check against gradient
    masking: a defence that resists PGD but not SPSA is obfuscating gradients.

    Parameters
    ----------
    eps : float, default=0.3
        L-infinity budget.
    delta : float, default=0.01
        Finite-difference step.
    lr : float, default=0.01
        Adam step size.
    nb_iter : int, default=1
        Iterations.
    nb_sample : int, default=128
        Random directions per iteration.
    max_batch_size : int, default=64
        Directions evaluated at once.
    targeted : bool, default=False
        Move towards ``y`` instead of away from it.
    clip_min, clip_max : float, default=0.0, 1.0
        Valid pixel range.
    batch_size : int, default=256
        Unused for the attack itself: SPSA runs on blocks of 16 images, each
        seeded from ``random_state`` and its position, so the result does not
        depend on how the images are batched.
    random_state : int, RandomState or None, default=None
        Seeds torch's RNG (the random directions).
    eot_samples : int, default=1
        Noise draws averaged in the logits (EOT).
    verbose : int, default=0
        Show a progress bar (on a terminal).

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import LinfSPSA
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> spsa = LinfSPSA(eps=0.1, nb_sample=8, max_batch_size=8)
    >>> spsa.generate(model, torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    _advertorch_class = "LinfSPSAAttack"
    _rng_block = 16

    def _is_random(self):
        return True
    _eot = "logits"
    _parameter_constraints = {"eps": _NONNEG, "delta": _NONNEG, "lr": _NONNEG,
                              "nb_iter": _NONNEG_INT, "nb_sample": _POS_INT,
                              "max_batch_size": _POS_INT, **_COMMON_CONSTRAINTS}

    def __init__(self, eps=0.3, *, delta=0.01, lr=0.01, nb_iter=1, nb_sample=128,
                 max_batch_size=64, targeted=False, clip_min=0.0, clip_max=1.0,
                 batch_size=256, random_state=None, eot_samples=1, verbose=0):
        self.eps = eps
        self.delta = delta
        self.lr = lr
        self.nb_iter = nb_iter
        self.nb_sample = nb_sample
        self.max_batch_size = max_batch_size
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose


@_documented
class SpatialTransform(_AdvertorchAttack):
    """Spatially transformed adversarial examples (``SpatialTransformAttack``).

    Parameters
    ----------
    confidence : float, default=0
        Margin required of the adversarial class.
    initial_const : float, default=1
        Trade-off between the flow loss and the adversarial loss.
    max_iterations : int, default=1000
        L-BFGS iterations.
    search_steps : int, default=1
        Searches over the constant.
    abort_early : bool, default=True
        Stop when the loss stalls.
    {common_parameters}

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import SpatialTransform
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> SpatialTransform(max_iterations=3).generate(model, torch.rand(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    _advertorch_class = "SpatialTransformAttack"
    _unit_range = True
    _eot = "logits"
    _parameter_constraints = {"confidence": _NONNEG, "initial_const": _NONNEG,
                              "max_iterations": _NONNEG_INT, "search_steps": _POS_INT,
                              "abort_early": ["boolean"], **_COMMON_CONSTRAINTS}

    def __init__(self, confidence=0, *, initial_const=1, max_iterations=1000, search_steps=1,
                 abort_early=True, targeted=False, clip_min=0.0, clip_max=1.0,
                 batch_size=256, random_state=None, eot_samples=1, verbose=0):
        self.confidence = confidence
        self.initial_const = initial_const
        self.max_iterations = max_iterations
        self.search_steps = search_steps
        self.abort_early = abort_early
        self.targeted = targeted
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.batch_size = batch_size
        self.random_state = random_state
        self.eot_samples = eot_samples
        self.verbose = verbose
