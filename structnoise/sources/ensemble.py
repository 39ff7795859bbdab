"""Robust accuracy as the field measures it: several attacks as AutoAttack's cascade.

An image counts as robust only if it survives every attack of a threat
model (AutoAttack, RobustBench). :class:`AttackEnsemble` runs its attacks in
order, each on the images that no earlier attack has fooled, and returns per
image the first adversarial example that fools the network (else the last
attack's output): accuracy on its output is the worst case over its attacks,
image by image, at the cost of running the later attacks only on the images
still standing. :func:`autoattack_rand` is AutoAttack's version for
randomized networks.
"""

import contextlib
import types
from numbers import Integral

import numpy as np
import torch
from sklearn.base import clone

from .._inference import (
    attack_labels,
    attack_mode,
    module_device,
    predict_logits,
    resolve_module,
)
from .._param_validation import Interval
from .._random import derive_seed, seed_of
from .base import ModificationSource

__all__ = ["AttackEnsemble", "autoattack_rand", "threat_model"]



def _fixed_norm(source):
    """The norm of an attack that has no ``norm`` (or ``ord``) parameter, or None."""
    from .attacks import FGSM, L1PGD, L2PGD, LinfPGD, LinfSPSA

    for classes, norm in (((FGSM, LinfPGD, LinfSPSA), np.inf), ((L2PGD,), 2.0),
                          ((L1PGD,), 1.0)):
        if isinstance(source, classes):
            return norm
    return None


def _as_norm(value):
    """A norm as a float (``np.inf`` for "inf", "Linf", inf)."""
    if isinstance(value, str):
        text = value.lower().lstrip("l")
        return np.inf if text == "inf" else float(text)
    return float(value)


def threat_model(source):
    """``(eps, norm)`` of a budgeted attack: the threat model it belongs to.

    Parameters
    ----------
    source : ModificationSource
        An adversarial source with a budget ``eps`` (FGSM, the PGDs,
        momentum, SPSA, FAB with an ``eps``, AutoPGD, Square, an
        :class:`AttackEnsemble`).

    Returns
    -------
    eps, norm : float
        The budget and its norm (``numpy.inf`` for L-infinity).

    Raises
    ------
    ValueError
        For a corruption, or an attack without a budget (Carlini-Wagner,
        DDN, the spatial attack: minimum-norm attacks have no eps).

    Examples
    --------
    >>> from structnoise.sources import L2PGD, FGSM
    >>> from structnoise.sources.ensemble import threat_model
    >>> threat_model(FGSM(eps=0.1)), threat_model(L2PGD(eps=1.5))
    ((0.1, inf), (1.5, 2.0))
    """
    name = type(source).__name__
    if not isinstance(source, ModificationSource) or source.kind != "adversarial":
        raise ValueError(f"{name} is not an attack (its kind is "
                         f"{getattr(source, 'kind', 'unknown')!r}); a threat model needs an "
                         "adversarial source with a budget eps.")
    if isinstance(source, AttackEnsemble):
        return source._common_threat_model()
    eps = getattr(source, "eps", None)
    if eps is None or isinstance(eps, bool):
        raise ValueError(f"{name} has no budget eps (a minimum-norm attack, or eps=None); an "
                         "ensemble needs attacks of one budget, e.g. FGSM(eps=0.1), "
                         "LinfPGD(eps=0.1), AutoPGD(eps=0.1).")
    for param in ("norm", "ord"):
        if param in source.get_params(deep=False):
            return float(eps), _as_norm(getattr(source, param))
    norm = _fixed_norm(source)
    if norm is None:
        raise ValueError(f"{name}'s norm is unknown to structnoise: give the ensemble "
                         "FGSM, LinfPGD, L2PGD, L1PGD, MomentumIterative, LinfSPSA, FAB, "
                         "AutoPGD or SquareAttack members (or subclasses).")
    return float(eps), norm


class AttackEnsemble(ModificationSource):
    """Several attacks of one threat model as AutoAttack's cascade: the worst case per image.

    The attacks run in order. Images the network already misclassifies are
    left as they are; each attack then sees only the images that no earlier
    attack has fooled. Per image the output is the first adversarial example
    that fools the network, else the last attack's output. On a
    deterministic network the accuracy on the output is therefore the
    fraction of images that every attack leaves correct (tested), while the
    later attacks cost only the images still standing.

    Which images are "fooled" is decided by the model the ensemble is given,
    on fresh draws: the mean logits of ``eot_samples`` noise draws (one
    draw for ``eot_samples=1``). The experiment's protocols set it: one
    draw of the bare module under "paper", the EOT average under "eot". The
    protocol's own accuracy (the net's noise ensemble) is then measured on
    the output; on a stochastic network it can differ slightly from the
    ensemble's own decisions, since both draw noise.

    Parameters
    ----------
    attacks : list of ModificationSource
        The members, in the order they run: adversarial sources of one
        budget ``eps`` in one norm (:func:`threat_model`) and one pixel
        range. Cloned per call; never modified.
    eot_samples : int or None, default=None
        Noise draws per gradient or query of every member and per "fooled"
        decision; None keeps each member's own ``eot_samples`` and decides
        with the largest of them.
    random_state : int, RandomState or None, default=None
        Seeds the members (each its own seed derived from this one); None
        keeps each member's own ``random_state``.
    verbose : int, default=0
        Passed to the members (progress bars on a terminal).

    Attributes
    ----------
    kind : str
        "adversarial".

    See Also
    --------
    autoattack_rand : AutoAttack's ensemble for randomized networks.

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import FGSM, AttackEnsemble, LinfPGD
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X = torch.rand(8, 1, 8, 8)
    >>> ens = AttackEnsemble([FGSM(eps=0.1), LinfPGD(eps=0.1, nb_iter=5, rand_init=False)])
    >>> X_adv = ens.generate(model, X)
    >>> bool((X_adv - X).abs().max() <= 0.1 + 1e-6)
    True
    >>> ens.describe()["strength"]
    0.1
    """

    kind = "adversarial"
    strength_param = "eps"
    _parameter_constraints = {
        "attacks": [list, tuple],
        "eot_samples": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, attacks, *, eot_samples=None, random_state=None, verbose=0):
        self.attacks = attacks
        self.eot_samples = eot_samples
        self.random_state = random_state
        self.verbose = verbose

    # -- the threat model, checked before any attack runs ---------------------
    def _members(self):
        """The members, checked: a non-empty list of attacks of one eps, norm and range."""
        attacks = self.attacks
        if not isinstance(attacks, (list, tuple)) or not attacks:
            raise ValueError("AttackEnsemble needs a non-empty list of attacks, e.g. "
                             "[FGSM(eps=0.1), LinfPGD(eps=0.1)]; got "
                             f"{attacks!r}.")
        first = None
        for i, member in enumerate(attacks):
            if not isinstance(member, ModificationSource):
                raise TypeError(f"AttackEnsemble's member {i} is {type(member).__name__}, not "
                                "a structnoise attack (e.g. LinfPGD(eps=0.1)).")
            if member.kind != "adversarial":
                raise ValueError(f"AttackEnsemble's member {i}, {member.label}, is a "
                                 f"{member.kind} source, not an attack: the worst case is over "
                                 "attacks of one threat model.")
            try:
                eps, norm = threat_model(member)
            except ValueError as exc:
                raise ValueError(f"AttackEnsemble's member {i}, {member.label}: {exc}") \
                    from None
            clip = (float(getattr(member, "clip_min", 0.0)),
                    float(getattr(member, "clip_max", 1.0)))
            if first is None:
                first = (eps, norm, clip, member.label)
                continue
            if not np.isclose(eps, first[0]) or norm != first[1]:
                raise ValueError(
                    f"AttackEnsemble's members must share one threat model: member {i}, "
                    f"{member.label}, has eps {eps:g} in the L{norm:g} norm, member 0, "
                    f"{first[3]}, eps {first[0]:g} in the L{first[1]:g} norm.")
            if clip != first[2]:
                raise ValueError(f"AttackEnsemble's members must share one pixel range: "
                                 f"member {i}, {member.label}, clips to {clip}, member 0 to "
                                 f"{first[2]}.")
        return list(attacks), first

    def _common_threat_model(self):
        _, first = self._members()
        return first[0], first[1]

    @property
    def eps(self):
        """The members' common budget."""
        return self._common_threat_model()[0]

    @property
    def clip_min(self):
        """The members' common lower pixel bound."""
        return self._members()[1][2][0]

    @property
    def clip_max(self):
        """The members' common upper pixel bound."""
        return self._members()[1][2][1]

    def _validate_params(self):
        super()._validate_params()
        members, _ = self._members()
        for member in members:
            member._validate_params()

    def describe(self):
        """Family "AttackEnsemble", kind "adversarial", strength the members' ``eps``.

        Returns
        -------
        description : dict
            As :meth:`ModificationSource.describe`.

        Examples
        --------
        >>> from structnoise.sources import autoattack_rand
        >>> autoattack_rand(0.1).describe()
        {'family': 'AttackEnsemble', 'kind': 'adversarial', 'strength': 0.1, 'strength_unit': 'eps'}
        """
        return {"family": type(self).__name__, "kind": self.kind, "strength": float(self.eps),
                "strength_unit": "eps"}

    # -- the cascade ----------------------------------------------------------
    def _configured(self):
        """Copies of the members with the ensemble's draws, seeds and verbosity."""
        base = seed_of(self.random_state)
        out = []
        for i, member in enumerate(self._members()[0]):
            params = {}
            names = member.get_params(deep=False)
            if self.eot_samples is not None and "eot_samples" in names:
                params["eot_samples"] = int(self.eot_samples)
            if base is not None and "random_state" in names:
                params["random_state"] = derive_seed(base, "ensemble-member", i)
            if self.verbose and "verbose" in names:
                params["verbose"] = self.verbose
            out.append(clone(member).set_params(**params))
        return out

    @contextlib.contextmanager
    def _prepare(self, model, X, y):
        members = self._configured()
        draws = int(self.eot_samples) if self.eot_samples is not None else max(
            int(getattr(m, "eot_samples", 1)) for m in members)
        module = resolve_module(model)
        device = module_device(module)
        with attack_mode(module):
            labels, _ = attack_labels(module, X.to(torch.float32), y, eot_samples=draws,
                                      batch_size=256, device=device, dtype=torch.float32)
        yield types.SimpleNamespace(members=members, draws=draws, module=module,
                                    device=device, labels=labels.to(device))

    def _blocks(self, n_samples, state):
        return [slice(0, n_samples)]  # the members batch themselves

    def _correct(self, state, X, labels):
        """Which images the model still classifies correctly (fresh draws, no gradient)."""
        with attack_mode(state.module):
            logits = predict_logits(state.module, X.to(torch.float32), batch_size=256,
                                    eot_samples=state.draws, device=state.device)
        return (logits.argmax(1) == labels).cpu()

    def _generate_batch(self, state, X, y, *, index, rows):
        out = X.clone()
        labels = state.labels[rows]
        standing = torch.nonzero(self._correct(state, X, labels)).flatten()
        for member in state.members:
            if not len(standing):
                break
            adv = member.generate(state.module, X[standing],
                                  labels[standing.to(labels.device)]).to(X.device, X.dtype)
            out[standing] = adv
            still = self._correct(state, adv, labels[standing.to(labels.device)])
            standing = standing[still]
        return out


def autoattack_rand(eps, *, eot_samples=20, max_iter=100, norm=np.inf, batch_size=256,
                    random_state=None):
    """AutoAttack's version for randomized networks: APGD-CE then APGD-DLR, with EOT.

    AutoAttack (Croce & Hein, 2020) with ``version="rand"`` runs APGD with
    the cross-entropy loss and APGD with the DLR loss, each with one restart
    and ``eot_iter=20`` noise draws per gradient, as a cascade (each attack
    on the images the first left standing). This is that ensemble built from
    structnoise's ART-backed :class:`~structnoise.sources.AutoPGD`, with
    these differences from AutoAttack's own code:

    - the APGD is ART's ``AutoProjectedGradientDescent`` (the paper's
      library), with AutoAttack's initial step ``2 * eps`` and its checkpoint
      schedule as ART implements it;
    - EOT averages the logits of ``eot_samples`` draws and takes the
      gradient of the loss of that mean (ART takes the classifier's outputs
      as they come), where AutoAttack averages the gradients of the
      per-draw losses;
    - one restart per attack, as AutoAttack's rand version; its standard
      version's targeted DLR attack (APGD-T) and FAB-T are not in the rand
      version and are not here.

    Parameters
    ----------
    eps : float
        Budget in the ``norm``.
    eot_samples : int, default=20
        Noise draws per gradient (and per "fooled" decision).
    max_iter : int, default=100
        APGD iterations per attack.
    norm : {inf, 2, 1}, default=inf
        Norm of the budget.
    batch_size : int, default=256
        Images attacked at once.
    random_state : int, RandomState or None, default=None
        Seeds the two attacks' random starts.

    Returns
    -------
    ensemble : AttackEnsemble
        ``[AutoPGD(loss_type="cross_entropy"), AutoPGD(loss_type="difference_logits_ratio")]``.

    Examples
    --------
    >>> from structnoise.sources import autoattack_rand
    >>> ens = autoattack_rand(0.1, eot_samples=2, max_iter=5)
    >>> [m.loss_type for m in ens.attacks]
    ['cross_entropy', 'difference_logits_ratio']
    """
    from .art_attacks import AutoPGD

    members = [AutoPGD(eps=eps, norm=norm, eps_step=2 * eps, max_iter=max_iter,
                       nb_random_init=1, loss_type=loss, batch_size=batch_size,
                       eot_samples=eot_samples)
               for loss in ("cross_entropy", "difference_logits_ratio")]
    return AttackEnsemble(members, eot_samples=eot_samples, random_state=random_state)
