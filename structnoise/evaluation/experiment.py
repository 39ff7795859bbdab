"""The paper's experiment as one object with one ``run`` method.

:class:`Experiment` trains, per seed, one noise-free base network; learns the
noise of every (noise source, structure, trace scale) from that base
network's activation pairs on the training images; freezes, re-initialises
and retrains each network with its noise (``noise_retrain="after"``); and
evaluates every network on its evaluation sources under each evaluation
protocol:

``"paper"``
    the authors' protocol: every gradient or query of an attack sees one
    noise draw (the attack is run on ``net.module_``), and the accuracy is
    that of the ``noise_ensemble``-draw prediction;
``"eot"``
    honest evaluation (AutoAttack's "rand" version): each gradient or query
    of the attack averages ``eot_samples`` noise draws (the mean of the
    single-draw loss gradients for the gradient attacks, the mean logits for
    ART's), and the accuracy is that of the ensemble on fresh draws.

Clean and naturalistic evaluations involve no gradient: they are measured
once per network and reported under each protocol.

The result is one tidy DataFrame (:data:`COLUMNS`), stored row by row in a
resumable store when ``store`` is a directory.
"""

import copy
import time
from numbers import Integral, Real

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone

from .._random import derive_seed
from ..activations import ActivationPairs, capture_activations, layer_names
from ..fitters import StructuredNoiseFitter
from ..sources._utils import progress, validate_images, validate_labels
from ..sources.base import ModificationSource
from .store import ResultStore, _key_float, config_hash

__all__ = ["Experiment", "COLUMNS", "describe_source", "NOISE_FREE", "ANY_SOURCE"]

#: the columns of an experiment's results, in order
COLUMNS = ["seed", "noise_family", "noise_kind", "noise_strength", "structure", "trace_scale",
           "noise_layers", "train_family", "train_strength", "train_ratio", "eval_family",
           "eval_kind", "eval_strength", "eval_strength_unit", "eval_protocol", "eot_samples",
           "eot_draws", "ensemble", "n_images", "accuracy", "train_seconds", "eval_seconds"]

#: ``noise_family`` of the network without noise
NOISE_FREE = "none"
#: ``noise_family`` of trace-scaled isotropic noise, which no source shapes
ANY_SOURCE = "any"
#: ``train_family`` of a network trained on clean images only
STANDARD = "standard"
_STRUCTURES = ("none", "full", "diagonal", "isotropic", "lowrank")
_PROTOCOLS = ("paper", "eot")
_KINDS = ("adversarial", "naturalistic")


def describe_source(source):
    """The structured identity of a source: family, kind, strength and its unit.

    Parameters
    ----------
    source : ModificationSource or None
        None describes the clean images.

    Returns
    -------
    description : dict
        ``family`` (the attack's class name or the corruption's name),
        ``kind`` ("clean", "adversarial" or "naturalistic"), ``strength``
        (eps, severity or strength; NaN when the source has none) and
        ``strength_unit``.

    Examples
    --------
    >>> from structnoise.evaluation import describe_source
    >>> from structnoise.sources import Corruption, LinfPGD
    >>> describe_source(LinfPGD(eps=0.1))["strength"]
    0.1
    >>> describe_source(Corruption("rotate", strength=2.0))["strength_unit"]
    'strength'
    """
    if source is None:
        return {"family": "clean", "kind": "clean", "strength": float("nan"),
                "strength_unit": ""}
    params = source.get_params(deep=False)
    if "name" in params:  # a Corruption
        family = params["name"]
        if params.get("strength") is not None:
            strength, unit = float(params["strength"]), "strength"
        else:
            strength, unit = float(params["severity"]), "severity"
    else:
        family = type(source).__name__
        for unit in ("eps", "std"):
            value = params.get(unit)
            if value is not None:
                strength = float(value)
                break
        else:
            strength, unit = float("nan"), ""
    return {"family": family, "kind": source.kind, "strength": strength, "strength_unit": unit}


def _as_tuple(value):
    if isinstance(value, (str, ModificationSource)) or value is None:
        return (value,)
    return tuple(value)


class _NetPlan:
    """One network of the experiment: its noise and the evaluations it gets."""

    def __init__(self, seed, noise_index, structure, trace_scale, family, kind, strength,
                 augment=None):
        self.augment = augment  # index into Experiment.augmentations, or None
        self.seed = seed
        self.noise_index = noise_index  # None: no source shapes the noise
        self.structure = structure
        self.trace_scale = trace_scale
        self.family = family
        self.kind = kind
        self.strength = strength
        self.evals = []



class Experiment(BaseEstimator):
    """The paper's protocol on any network and data, both ways (paper and EOT).

    Parameters
    ----------
    net : NoisyNeuralNetClassifier
        Unfitted template: module, optimizer, learning rate, batch size,
        device and ``noise_ensemble`` (the paper: 10). Its ``max_epochs`` is
        replaced by ``base_epochs`` and ``noise_epochs``.
    noise_layers : str or list of str
        Where the noise goes (the paper: ``PaperCNN.NOISE_SITES[2]``).
    noise_sources : list of ModificationSource
        Sources the noise is learned from, on the training images, with the
        base network (attacks attack it).
    eval_sources : list of ModificationSource
        Sources every network is evaluated on (clean accuracy is added).
    structures : tuple of str, default=("none", "full", "diagonal", "isotropic")
        Noise structures; "none" is the network without noise, retrained
        the same way.
    trace_scales : tuple of float or None, or dict, default={"adversarial": (2.0,), \
"naturalistic": (0.5,)}
        The fitters' ``trace_scale`` values; a dict gives them per source
        kind (the paper: 2 for attacks, 0.5 for modifications).
    noise : StructuredNoiseFitter, default=StructuredNoiseFitter(shrinkage=None, \
reg_covar=1e-4)
        Template of the fitters (the paper: plain sample covariance plus
        ``1e-4`` on the diagonal).
    pairing : {"kind", "matched", "all"}, default="kind"
        Which evaluation sources a noisy network gets: those of its noise
        source's kind (attacks for attack-shaped noise, modifications for
        modification-shaped noise; the paper's tables and transfer heatmap);
        "matched": the same, but attack-shaped noise only on attacks at its
        own eps (the paper learns the noise at the eps it evaluates); or
        all. The noise-free network gets all, trace-scaled isotropic
        networks those of the kinds that use their trace scale.
    protocols : tuple of {"paper", "eot"}, default=("paper", "eot")
        Evaluation protocols, run on the same trained networks.
    eot_samples : int, default=4
        Noise draws averaged per gradient or query in the "eot" protocol
        (AutoAttack's "rand" version uses 20 for APGD).
    seeds : tuple of int, default=(0, 1, 2)
        One base network per seed; every other random choice derives from it.
    base_epochs : int, default=10
        Epochs of the noise-free base network.
    noise_epochs : int, default=10
        Epochs of retraining with the noise.
    pair_batch_size : int, default=256
        Images per batch when collecting activation pairs.
    augmentations : list of (ModificationSource, float), default=()
        The supplement's baselines: training-time augmentation (``train_source``
        and ``train_source_ratio`` of the net) during the retraining, e.g.
        ``(LinfPGD(...), 0.5)`` for PGD adversarial training or
        ``(GaussianNoise(0.25), 1.0)`` for Gaussian input augmentation. Each
        gives a noise-free network ("alone") and, when "full" is among the
        structures, one with the full noise of ``noise_sources[augment_noise]``
        ("combined"); they are evaluated on every evaluation source.
    augment_noise : int, default=0
        Which noise source's full noise the augmentations are combined with.
    checks : dict or None, default=None
        Run the obfuscation checks (:func:`~structnoise.evaluation.checks.run_checks`)
        on every network kind (each structure, the noise-free net included) of
        the first seed, shaped by the first adversarial noise source, on the
        first ``n_images`` test images; the dict holds ``n_images`` and
        ``run_checks``'s keyword arguments. Stored beside the rows
        (``checks_``).
    n_jobs : int, default=1
        Parallel jobs (joblib; the Dask backend works through
        ``joblib.parallel_backend("dask")``), over base networks and then over
        groups of networks sharing a noise source. Results do not depend on it.
    store : str or path-like, default=None
        Directory of a resumable store: rows are written as each group of
        networks finishes, a rerun computes only the missing networks, and a
        different configuration gets its own subdirectory (its hash).
    verbose : int, default=1
        Progress bars (on a terminal).

    Attributes
    ----------
    results_ : pandas.DataFrame
        The rows of the last ``run`` (:data:`COLUMNS`).
    config_hash_ : str
        Hash of the configuration and data the rows belong to.
    checks_ : pandas.DataFrame
        The obfuscation checks' records (empty without ``checks``).
    n_networks_trained_ : int
        Networks (base networks included) trained by the last ``run``.

    Examples
    --------
    >>> import torch
    >>> from structnoise import NoisyNeuralNetClassifier
    >>> from structnoise.datasets import load_digits_images
    >>> from structnoise.evaluation import Experiment
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.sources import FGSM, Corruption
    >>> X, y = load_digits_images()
    >>> net = NoisyNeuralNetClassifier(DigitsMLP, lr=0.1, batch_size=64, train_split=None,
    ...                                verbose=0, noise_ensemble=2)
    >>> exp = Experiment(net, "body.2", [FGSM(eps=0.1)], [FGSM(eps=0.1)],
    ...                  structures=("none", "full"), seeds=(0,), base_epochs=2,
    ...                  noise_epochs=1, eot_samples=2, verbose=0)
    >>> rows = exp.run(X[:300], y[:300], X[300:400], y[300:400])
    >>> sorted(rows.eval_protocol.unique())
    ['eot', 'paper']
    """

    def __init__(self, net, noise_layers, noise_sources, eval_sources,
                 structures=("none", "full", "diagonal", "isotropic"),
                 trace_scales=None, noise=None, pairing="kind", protocols=("paper", "eot"),
                 eot_samples=4, seeds=(0, 1, 2), base_epochs=10, noise_epochs=10,
                 pair_batch_size=256, augmentations=(), augment_noise=0, checks=None,
                 n_jobs=1, store=None, verbose=1):
        self.net = net
        self.noise_layers = noise_layers
        self.noise_sources = noise_sources
        self.eval_sources = eval_sources
        self.structures = structures
        self.trace_scales = trace_scales
        self.noise = noise
        self.pairing = pairing
        self.protocols = protocols
        self.eot_samples = eot_samples
        self.seeds = seeds
        self.base_epochs = base_epochs
        self.noise_epochs = noise_epochs
        self.pair_batch_size = pair_batch_size
        self.augmentations = augmentations
        self.augment_noise = augment_noise
        self.checks = checks
        self.n_jobs = n_jobs
        self.store = store
        self.verbose = verbose

    # ------------------------------------------------------------------
    # validation (cheap, before any training)
    # ------------------------------------------------------------------
    def _fitter_template(self):
        if self.noise is None:
            return StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4)
        if not isinstance(self.noise, StructuredNoiseFitter):
            raise TypeError(f"noise must be a StructuredNoiseFitter; got "
                            f"{type(self.noise).__name__}.")
        return self.noise

    def _trace_scales_for(self, kind):
        ts = self.trace_scales
        if ts is None:
            ts = {"adversarial": (2.0,), "naturalistic": (0.5,)}
        if isinstance(ts, dict):
            return tuple(ts.get(kind, (None,)))
        return _as_tuple(ts)

    def _check_params(self):
        from ..net import NoisyNeuralNetClassifier

        if not isinstance(self.net, NoisyNeuralNetClassifier):
            raise TypeError("net must be an unfitted NoisyNeuralNetClassifier template; got "
                            f"{type(self.net).__name__}.")
        for name in ("noise_sources", "eval_sources"):
            sources = getattr(self, name)
            if isinstance(sources, ModificationSource) or not list(sources):
                raise ValueError(f"{name} must be a non-empty list of sources.")
            for s in sources:
                if not isinstance(s, ModificationSource):
                    raise TypeError(f"{name} holds a {type(s).__name__}, not a structnoise "
                                    "source.")
        for name in ("noise_sources", "eval_sources"):
            idents = [(d["family"], d["strength"]) for d in map(
                describe_source, getattr(self, name))]
            repeated = sorted({i for i in idents if idents.count(i) > 1}, key=repr)
            if repeated:
                raise ValueError(
                    f"{name} holds several sources of the same family and strength "
                    f"{repeated}: the rows could not tell them apart. Keep one per "
                    "(family, strength).")
        structures = _as_tuple(self.structures)
        bad = [s for s in structures if s not in _STRUCTURES]
        if bad or not structures:
            raise ValueError(f"structures must be drawn from {_STRUCTURES}; got {bad}.")
        protocols = _as_tuple(self.protocols)
        bad = [p for p in protocols if p not in _PROTOCOLS]
        if bad or not protocols:
            raise ValueError(f"protocols must be drawn from {_PROTOCOLS}; got {bad}.")
        if self.pairing not in ("kind", "matched", "all"):
            raise ValueError(f"pairing must be 'kind', 'matched' or 'all'; got "
                             f"{self.pairing!r}.")
        for kind in _KINDS:
            for t in self._trace_scales_for(kind):
                if t is not None and (not isinstance(t, Real) or not t > 0):
                    raise ValueError(f"trace scales must be positive floats or None; got {t!r}.")
        for name in ("eot_samples", "base_epochs", "pair_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}.")
        if not isinstance(self.noise_epochs, Integral) or self.noise_epochs < 1:
            raise ValueError(f"noise_epochs must be a positive integer (the noise is installed "
                             f"and the layers retrained in them); got {self.noise_epochs!r}.")
        for item in self.augmentations:
            if not (isinstance(item, (tuple, list)) and len(item) == 2
                    and isinstance(item[0], ModificationSource) and isinstance(item[1], Real)
                    and 0 < item[1] <= 1):
                raise ValueError("augmentations must be (source, ratio) pairs with a ratio in "
                                 f"(0, 1]; got {item!r}.")
        if self.augmentations and not (isinstance(self.augment_noise, Integral)
                                       and 0 <= self.augment_noise < len(self.noise_sources)):
            raise ValueError(f"augment_noise must index noise_sources; got {self.augment_noise!r}.")
        if self.checks is not None and not isinstance(self.checks, dict):
            raise TypeError(f"checks must be None or a dict of run_checks settings; got "
                            f"{type(self.checks).__name__}.")
        seeds = _as_tuple(self.seeds)
        if not seeds or not all(isinstance(s, Integral) for s in seeds):
            raise ValueError(f"seeds must be a non-empty tuple of integers; got {self.seeds!r}.")
        self._fitter_template()

    # ------------------------------------------------------------------
    # the plan: which networks, which evaluations
    # ------------------------------------------------------------------
    def _plan(self):
        """Every network of the experiment (shared ones once) with its evaluations."""
        structures = _as_tuple(self.structures)
        evals = list(self.eval_sources)
        eval_kinds = [e.kind for e in evals]
        eval_strengths = [describe_source(e)["strength"] for e in evals]
        plans = []
        for seed in _as_tuple(self.seeds):
            shared = {}
            if "none" in structures:
                shared[("none", None)] = _NetPlan(seed, None, "none", None, NOISE_FREE, "any",
                                                  float("nan"))
            for i, source in enumerate(self.noise_sources):
                d = describe_source(source)
                for structure in structures:
                    if structure == "none":
                        continue
                    for t in self._trace_scales_for(source.kind):
                        if structure == "isotropic" and t is not None:
                            # t * I whatever the source: one network per trace scale
                            key = ("isotropic", t)
                            plan = shared.get(key)
                            if plan is None:
                                plan = shared[key] = _NetPlan(seed, i, "isotropic", t,
                                                              ANY_SOURCE, "any", float("nan"))
                            plan.serves = getattr(plan, "serves", set()) | {source.kind}
                            continue
                        plan = _NetPlan(seed, i, structure, t, d["family"], source.kind,
                                        d["strength"])
                        plan.evals = [j for j, k in enumerate(eval_kinds)
                                      if self.pairing == "all" or (
                                          k == source.kind and (
                                              self.pairing == "kind" or k != "adversarial"
                                              or eval_strengths[j] == d["strength"]))]
                        plans.append(plan)
            for key, plan in shared.items():
                if key[0] == "none" or self.pairing == "all":
                    plan.evals = list(range(len(evals)))
                else:
                    plan.evals = [j for j, k in enumerate(eval_kinds) if k in plan.serves]
                plans.append(plan)
            for a in range(len(self.augmentations)):
                plan = _NetPlan(seed, None, "none", None, NOISE_FREE, "any", float("nan"),
                                augment=a)
                plans.append(plan)
                if "full" in structures:
                    src = self.noise_sources[self.augment_noise]
                    d = describe_source(src)
                    plan = _NetPlan(seed, self.augment_noise, "full",
                                    self._trace_scales_for(src.kind)[0], d["family"],
                                    src.kind, d["strength"], augment=a)
                    plans.append(plan)
            for plan in plans:
                if plan.augment is not None and plan.seed == seed:
                    plan.evals = list(range(len(evals)))
        for plan in plans:
            if plan.augment is None:
                plan.train = {"train_family": STANDARD, "train_strength": float("nan"),
                              "train_ratio": 0.0}
            else:
                aug_source, ratio = self.augmentations[plan.augment]
                d = describe_source(aug_source)
                plan.train = {"train_family": d["family"], "train_strength": d["strength"],
                              "train_ratio": float(ratio)}
        adversarial = [i for i, src in enumerate(self.noise_sources)
                       if src.kind == "adversarial"]
        first_seed = _as_tuple(self.seeds)[0]
        for plan in plans:
            plan.check = self.checks is not None and plan.seed == first_seed and \
                plan.augment is None and (
                plan.family == NOISE_FREE
                or (adversarial and plan.noise_index == adversarial[0]
                    and (plan.family != ANY_SOURCE
                         or plan.trace_scale in self._trace_scales_for("adversarial"))))
        return plans

    # ------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------
    def run(self, X_train, y_train, X_test, y_test):
        """Train every network and evaluate it; return the tidy results.

        Parameters
        ----------
        X_train, y_train : array-like or torch.Tensor
            Training images (N, C, H, W) and labels: base networks, noise
            pairs and retraining all use them.
        X_test, y_test : array-like or torch.Tensor
            Held-out images and labels for the evaluation.

        Returns
        -------
        results : pandas.DataFrame
            One row per (network, evaluation source, protocol) with the
            columns :data:`COLUMNS` (stored rows of an earlier interrupted
            run of the same configuration included).
        """
        self._check_params()
        Xtr = validate_images(X_train).float()
        ytr = validate_labels(np.asarray(y_train), Xtr.shape[0])
        Xte = validate_images(X_test).float()
        yte = validate_labels(np.asarray(y_test), Xte.shape[0])
        data = (Xtr.numpy(), ytr.numpy(), Xte.numpy(), yte.numpy())
        self.config_hash_ = config_hash(self, data)
        store = ResultStore(self.store, self.config_hash_, COLUMNS, config=self._describe())
        plans = self._plan()
        done = store.done_keys()
        todo = [p for p in plans if _plan_key(p) not in done]
        self.n_networks_trained_ = 0
        seeds = sorted({p.seed for p in todo})
        bases = {}
        cached = {s: store.load_state(f"base_seed{s}") for s in seeds}
        missing_bases = [s for s in seeds if cached[s] is None]
        trained = Parallel(n_jobs=self.n_jobs)(
            delayed(_train_base)(self, s, data) for s in missing_bases)
        for s, state in zip(missing_bases, trained, strict=True):
            store.save_state(f"base_seed{s}", state)
            cached[s] = state
        self.n_networks_trained_ += len(missing_bases)
        bases = cached
        groups = {}
        for p in todo:
            groups.setdefault((p.seed, p.noise_index if p.family != ANY_SOURCE else None,
                               p.family in (NOISE_FREE, ANY_SOURCE)), []).append(p)
        jobs = [(key, group) for key, group in groups.items()]
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_run_group)(self, group, bases[key[0]], data) for key, group in jobs)
        for (_, group), (rows, check_rows) in progress(
                zip(jobs, results, strict=True), total=len(jobs), verbose=self.verbose,
                desc="network groups"):
            store.append(rows, check_rows)
            self.n_networks_trained_ += len(group)
        self.results_ = store.rows()
        self.checks_ = store.checks()
        return self.results_

    def _describe(self):
        """A readable record of the configuration (written beside the rows)."""
        return {k: repr(v) for k, v in self.get_params(deep=False).items()}


def _plan_key(plan):
    train = plan.train
    return (int(plan.seed), str(plan.family), _key_float(plan.strength), str(plan.structure),
            _key_float(plan.trace_scale), train["train_family"],
            _key_float(train["train_strength"]), _key_float(train["train_ratio"]))


# --------------------------------------------------------------------------
# the work of one job (module-level functions: joblib pickles them)
# --------------------------------------------------------------------------
def _as_net(exp, seed, **params):
    net = clone(exp.net)
    net.set_params(verbose=0, **params)
    return net


def _train_base(exp, seed, data):
    """The noise-free base network of ``seed``; returns its state dict (CPU)."""
    Xtr, ytr, _, _ = data
    torch.manual_seed(derive_seed(seed, "base"))
    net = _as_net(exp, seed, noise=None, noise_source=None, noise_layers=None,
                  noise_retrain="all", max_epochs=exp.base_epochs)
    net.fit(Xtr, ytr)
    return {k: v.detach().cpu().clone() for k, v in net.module_.state_dict().items()}


def _layers(exp):
    return layer_names(exp.noise_layers)


def _fitted_noise(exp, plan, pairs, d_by_layer):
    """Fitters for ``plan`` from the base network's pairs (a dict layer -> fitter)."""
    template = exp._fitter_template()
    fitters = {}
    for layer in _layers(exp):
        f = clone(template).set_params(
            structure=plan.structure, trace_scale=plan.trace_scale,
            random_state=derive_seed(plan.seed, "noise", plan.family, plan.strength,
                                     plan.structure, plan.trace_scale, layer))
        if pairs is None:
            # isotropic t * I needs no data: its covariance is fixed by the
            # trace; fit it on a unit-variance stand-in of the layer's width
            d = d_by_layer[layer]
            stand_in = np.random.default_rng(0).standard_normal((2, d))
            f.set_params(shrinkage=None, reg_covar=0.0).fit(stand_in)
        else:
            f.fit(pairs[layer])
        fitters[layer] = f
    return fitters


def _run_group(exp, group, base_state, data):
    """Train and evaluate a group of networks sharing a seed and noise source."""
    Xtr, ytr, Xte, yte = data
    seed = group[0].seed
    base = _as_net(exp, seed, noise=None, noise_source=None, noise_layers=None,
                   noise_retrain="all", max_epochs=exp.base_epochs).initialize()
    base.module_.load_state_dict(base_state)
    pairs, widths = None, {}
    index = group[0].noise_index
    needs_pairs = any(p.family not in (NOISE_FREE, ANY_SOURCE) for p in group)
    if needs_pairs:
        source = clone(exp.noise_sources[index])
        if "random_state" in source.get_params():
            source.set_params(random_state=derive_seed(seed, "noise-source", index))
        transformer = ActivationPairs(base, _layers(exp), source,
                                      batch_size=exp.pair_batch_size)
        # a list of layers: a dict layer -> (n, 2, d) pairs
        pairs = transformer.fit_transform(Xtr, ytr)
    elif any(p.family == ANY_SOURCE for p in group):
        # trace-scaled isotropic noise needs only the layers' widths
        with torch.no_grad(), capture_activations(base.module_, _layers(exp)) as store:
            base.module_.eval()
            base.module_(torch.as_tensor(Xtr[:2]).to(base.device))
        widths = {name: store[name][0].shape[1] for name in _layers(exp)}
    rows, check_rows = [], []
    for plan in group:
        r, c = _run_network(exp, plan, base_state, pairs, widths, data)
        rows += r
        check_rows += c
    return rows, check_rows


def _run_network(exp, plan, base_state, pairs, widths, data):
    Xtr, ytr, Xte, yte = data
    t0 = time.perf_counter()
    noise = None if plan.structure == "none" else _fitted_noise(
        exp, plan, None if plan.family == ANY_SOURCE else pairs, widths)
    train = {}
    if plan.augment is not None:
        aug_source, ratio = exp.augmentations[plan.augment]
        aug_source = clone(aug_source)
        if "random_state" in aug_source.get_params():
            aug_source.set_params(random_state=derive_seed(plan.seed, "augment", plan.augment))
        train = dict(train_source=aug_source, train_source_ratio=float(ratio))
    net = _as_net(exp, plan.seed, noise=noise, noise_source=None,
                  noise_layers=_layers(exp), noise_retrain="after", noise_warmup_epochs=0,
                  max_epochs=exp.noise_epochs, **train).initialize()
    net.module_.load_state_dict(base_state)
    net.initialize_optimizer()
    torch.manual_seed(derive_seed(plan.seed, "retrain", plan.family, plan.strength,
                                  plan.structure, plan.trace_scale, plan.augment))
    net.partial_fit(Xtr, ytr)
    train_seconds = time.perf_counter() - t0
    rows = _evaluate(exp, net, plan, Xte, yte, train_seconds)
    check_rows = []
    if plan.check:
        from .checks import run_checks

        settings = dict(exp.checks)
        n = int(settings.pop("n_images", 100))
        frame = run_checks(net, Xte[:n], yte[:n], **settings)
        for record in frame.to_dict("records"):
            check_rows.append({"seed": plan.seed, "noise_family": plan.family,
                               "structure": plan.structure,
                               "trace_scale": float("nan") if plan.trace_scale is None
                               else plan.trace_scale, "ensemble": int(net.noise_ensemble),
                               **record,
                               "accuracies": " ".join(f"{a:.4f}" for a in record["accuracies"])})
    return rows, check_rows


def _evaluate(exp, net, plan, X, y, train_seconds):
    """Rows of one network: clean and every evaluation source, every protocol."""
    protocols = _as_tuple(exp.protocols)
    stochastic = bool(net.noise_active_in_eval)
    k = int(net.noise_ensemble)
    base_row = {"seed": plan.seed, "noise_family": plan.family,
                "noise_kind": plan.kind, "noise_strength": plan.strength,
                "structure": plan.structure,
                "trace_scale": float("nan") if plan.trace_scale is None else plan.trace_scale,
                "noise_layers": ",".join(_layers(exp)), **plan.train,
                "ensemble": k if stochastic else 1,
                "n_images": int(X.shape[0]), "train_seconds": train_seconds}
    rows = []
    torch.manual_seed(derive_seed(plan.seed, "eval", plan.family, plan.structure, plan.augment))
    t = time.perf_counter()
    clean = float(net.score(X, y))
    d = describe_source(None)
    for protocol in protocols:
        rows.append({**base_row, **_eval_cols(d), "eval_protocol": protocol, "eot_samples": 0,
                     "eot_draws": 0, "accuracy": clean,
                     "eval_seconds": time.perf_counter() - t})
    for j in plan.evals:
        source = clone(exp.eval_sources[j])
        d = describe_source(source)
        if "random_state" in source.get_params():
            source.set_params(random_state=derive_seed(plan.seed, "eval-source", j))
        if source.kind != "adversarial":
            t = time.perf_counter()
            acc = float(net.score(source.generate(None, X).numpy(), y))
            for protocol in protocols:
                rows.append({**base_row, **_eval_cols(d), "eval_protocol": protocol,
                             "eot_samples": 0, "eot_draws": 0, "accuracy": acc,
                             "eval_seconds": time.perf_counter() - t})
            continue
        measured = {}
        for protocol in protocols:
            t = time.perf_counter()
            if not stochastic and "paper" in measured:
                acc, eot, draws = measured["paper"]  # a deterministic net: the same attack
            elif protocol == "paper" or not stochastic:
                # one draw per gradient or query: attack the module, not the ensemble
                src = copy.deepcopy(source).set_params(eot_samples=1)
                X_adv = src.generate(net.module_, X, y)
                acc, eot, draws = float(net.score(X_adv.numpy(), y)), 1, 1
            else:
                # EOT (AutoAttack's "rand" version): each gradient or query averages
                # eot_samples noise draws; judged by the ensemble on fresh draws
                src = copy.deepcopy(source).set_params(eot_samples=int(exp.eot_samples))
                X_adv = src.generate(net.module_, X, y)
                acc = float(net.score(X_adv.numpy(), y))
                eot = draws = int(exp.eot_samples)
            measured[protocol] = (acc, eot, draws)
            rows.append({**base_row, **_eval_cols(d), "eval_protocol": protocol,
                         "eot_samples": eot, "eot_draws": draws, "accuracy": acc,
                         "eval_seconds": time.perf_counter() - t})
    return rows


def _eval_cols(d):
    return {"eval_family": d["family"], "eval_kind": d["kind"], "eval_strength": d["strength"],
            "eval_strength_unit": d["strength_unit"]}
