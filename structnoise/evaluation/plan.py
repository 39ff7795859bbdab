"""The plan of an experiment: which networks it trains and which evaluations each gets.

A :class:`NetPlan` is one network: its seed, its noise (source, structure,
trace scale), its training (standard or an augmentation baseline), the
evaluation sources it is scored on and whether the obfuscation checks run
on it. :func:`make_plan` builds them all in one pass. Which evaluation
sources a noise-shaped network gets is a *pairing*: a name from
:data:`PAIRINGS` or any callable ``(noise, evaluation) -> bool`` of two
source descriptions (:func:`~structnoise.evaluation.describe_source`), as
scikit-learn's ``scoring`` takes a name or a callable.
"""

from dataclasses import dataclass

from .schema import ANY_SOURCE, MISSING, NOISE_FREE, STANDARD, key_text

__all__ = ["NetPlan", "PAIRINGS", "get_pairing", "make_plan"]


def _same_kind(noise, evaluation):
    """Attack-shaped noise on attacks, modification-shaped noise on modifications."""
    return evaluation["kind"] == noise["kind"]


def _matched(noise, evaluation):
    """As ``kind``, but attack-shaped noise only on attacks at its own strength (eps)."""
    if evaluation["kind"] != noise["kind"]:
        return False
    return evaluation["kind"] != "adversarial" or evaluation["strength"] == noise["strength"]


def _every(noise, evaluation):
    """Every evaluation source."""
    return True


#: pairing name -> rule ``(noise, evaluation) -> bool`` on source descriptions
PAIRINGS = {"kind": _same_kind, "matched": _matched, "all": _every}


def get_pairing(pairing):
    """The rule of a pairing name, or the callable itself.

    Parameters
    ----------
    pairing : str or callable
        A name from :data:`PAIRINGS`, or a rule ``(noise, evaluation) -> bool``.

    Returns
    -------
    rule : callable
        ``(noise, evaluation) -> bool`` on two source descriptions.

    Examples
    --------
    >>> from structnoise.evaluation.plan import get_pairing
    >>> get_pairing("kind")({"kind": "adversarial"}, {"kind": "naturalistic"})
    False
    """
    if callable(pairing):
        return pairing
    if pairing in PAIRINGS:
        return PAIRINGS[pairing]
    raise ValueError(f"pairing must be one of {tuple(PAIRINGS)} or a callable "
                     f"(noise, evaluation) -> bool; got {pairing!r}.")


@dataclass(frozen=True)
class NetPlan:
    """One network of the experiment: its noise, its training, its evaluations.

    Parameters
    ----------
    seed : int
        Its seed (its base network's).
    structure : str
        Noise structure ("none" for the noise-free network).
    trace_scale : float or None
        None for unscaled noise and for the noise-free network.
    noise_index : int or None
        Index of its noise source (None for the noise-free network; for
        shared isotropic noise, the first source it stands in for).
    noise_family, noise_label, noise_kind : str
        The noise source's columns (``NOISE_FREE`` / ``ANY_SOURCE`` when
        no source shapes the noise).
    noise_strength : float
        The noise source's strength (NaN when none).
    augment : int or None, default=None
        Index of its training-time augmentation (None: standard training).
    train_family : str, default=STANDARD
        The augmentation's family.
    train_strength : float, default=NaN
        The augmentation's strength.
    train_ratio : float, default=0.0
        The fraction of each batch augmented.
    evals : tuple of int, default=()
        Indices of the evaluation sources it is scored on (clean is added).
    check : bool, default=False
        Whether the obfuscation checks run on it.

    Examples
    --------
    >>> from structnoise.evaluation.plan import NetPlan
    >>> plan = NetPlan(0, "full", 2.0, 0, "FGSM", "fgsm", "adversarial", 0.1, evals=(0,))
    >>> plan.group, plan.n_rows(2)
    ((0, 0), 4)
    """

    seed: int
    structure: str
    trace_scale: object
    noise_index: object
    noise_family: str
    noise_label: str
    noise_kind: str
    noise_strength: float
    augment: object = None
    train_family: str = STANDARD
    train_strength: float = MISSING
    train_ratio: float = 0.0
    evals: tuple = ()
    check: bool = False

    @property
    def shared(self):
        """Whether no noise source shapes the network (noise-free, trace-scaled isotropic)."""
        return self.noise_family in (NOISE_FREE, ANY_SOURCE)

    @property
    def key(self):
        """The network's identity: the plan and the store use this one key."""
        return (int(self.seed), self.noise_family, self.noise_label, key_text(self.noise_strength),
                self.structure, key_text(self.trace_scale), self.train_family,
                key_text(self.train_strength), key_text(self.train_ratio))

    @property
    def group(self):
        """Networks of one group share a seed and the activation pairs of one source."""
        return (int(self.seed), None if self.shared else self.noise_index)

    def n_rows(self, n_protocols):
        """Rows this network gives: clean and each evaluation, under each protocol."""
        return (1 + len(self.evals)) * int(n_protocols)


def make_plan(*, seeds, structures, trace_scales, noise, evals, pairing, augmentations=(),
              augment_noise=0, checks=False):
    """Every network of an experiment (shared ones once), in one pass.

    Parameters
    ----------
    seeds : tuple of int
        One base network per seed.
    structures : tuple of str
        Noise structures; "none" is the noise-free network.
    trace_scales : callable
        ``kind -> tuple`` of trace scales (None: unscaled).
    noise : list of dict
        Descriptions of the noise sources (family, kind, strength, label).
    evals : list of dict
        Descriptions of the evaluation sources.
    pairing : str or callable
        Which evaluations a noise-shaped network gets (:data:`PAIRINGS`).
    augmentations : list of (dict, float)
        Descriptions of the augmentation sources and their ratios.
    augment_noise : int
        The noise source whose full noise the augmentations are combined with.
    checks : bool
        Whether the obfuscation checks run (on the first seed's network
        kinds shaped by the first adversarial noise source).

    Returns
    -------
    plans : list of NetPlan
        Per seed: the source-shaped networks, the shared ones (noise-free,
        then isotropic per trace scale), then the augmentation baselines.
        A shared isotropic network is evaluated on every evaluation that
        the pairing gives any source it stands in for; the noise-free and
        the augmented networks on every evaluation.

    Examples
    --------
    >>> from structnoise.evaluation.plan import make_plan
    >>> fgsm = {"family": "FGSM", "kind": "adversarial", "strength": 0.1, "label": "fgsm"}
    >>> plans = make_plan(seeds=(0,), structures=("none", "full"),
    ...                   trace_scales=lambda kind: (2.0,), noise=[fgsm], evals=[fgsm],
    ...                   pairing="kind")
    >>> [(p.structure, p.noise_family, p.evals) for p in plans]
    [('full', 'FGSM', (0,)), ('none', 'none', (0,))]
    """
    rule = get_pairing(pairing)
    every = tuple(range(len(evals)))
    first_adversarial = next((i for i, d in enumerate(noise) if d["kind"] == "adversarial"),
                             None)
    adversarial_scales = tuple(trace_scales("adversarial"))

    def paired(sources):
        return tuple(j for j, e in enumerate(evals) if any(rule(noise[i], e) for i in sources))

    def checked(seed, noise_index, family, trace_scale):
        if not checks or seed != seeds[0]:
            return False
        if family == NOISE_FREE:
            return True
        return noise_index is not None and noise_index == first_adversarial and (
            family != ANY_SOURCE or trace_scale in adversarial_scales)

    plans = []
    for seed in seeds:
        # isotropic noise with a trace scale is t * I whatever the source: one
        # network per trace scale, standing in for the sources that use it
        isotropic = {}
        for i, d in enumerate(noise):
            for structure in structures:
                if structure == "none":
                    continue
                for t in trace_scales(d["kind"]):
                    if structure == "isotropic" and t is not None:
                        isotropic.setdefault(t, []).append(i)
                        continue
                    plans.append(NetPlan(
                        seed, structure, t, i, d["family"], d["label"], d["kind"],
                        d["strength"], evals=paired([i]),
                        check=checked(seed, i, d["family"], t)))
        if "none" in structures:
            plans.append(NetPlan(seed, "none", None, None, NOISE_FREE, NOISE_FREE, ANY_SOURCE,
                                 MISSING, evals=every, check=checked(seed, None, NOISE_FREE,
                                                                     None)))
        for t, sources in isotropic.items():
            plans.append(NetPlan(seed, "isotropic", t, sources[0], ANY_SOURCE, ANY_SOURCE,
                                 ANY_SOURCE, MISSING, evals=paired(sources),
                                 check=checked(seed, sources[0], ANY_SOURCE, t)))
        for a, (aug, ratio) in enumerate(augmentations):
            train = dict(augment=a, train_family=aug["family"], train_strength=aug["strength"],
                         train_ratio=float(ratio), evals=every)
            plans.append(NetPlan(seed, "none", None, None, NOISE_FREE, NOISE_FREE, ANY_SOURCE,
                                 MISSING, **train))
            if "full" in structures:
                d = noise[augment_noise]
                plans.append(NetPlan(seed, "full", trace_scales(d["kind"])[0], augment_noise,
                                     d["family"], d["label"], d["kind"], d["strength"], **train))
    keys = [p.key for p in plans]
    if len(set(keys)) < len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1}, key=repr)
        raise ValueError(f"The plan holds the same network twice: {repeated}; give the noise "
                         "sources distinct labels.")
    return plans
