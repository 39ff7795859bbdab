"""The paper's experiment as one object with one ``run`` method.

:class:`Experiment` validates its whole configuration (sources, layers and
their widths on the untrained module, protocols) before any training; then,
per seed, trains one noise-free base network, learns the noise of every
(noise source, structure, trace scale) from that base network's activation
pairs on the training images, freezes, re-initialises and retrains each
network with its noise (``noise_retrain="after"``) and evaluates it on its
evaluation sources under each protocol
(:mod:`~structnoise.evaluation.protocols`). Which networks and evaluations a
configuration means is its plan (:mod:`~structnoise.evaluation.plan`); the
training is the trainer's (:mod:`~structnoise.evaluation.trainer`), the
scoring the evaluator's (:mod:`~structnoise.evaluation.evaluator`), the
bookkeeping the store's (:mod:`~structnoise.evaluation.store`).

The result is one tidy DataFrame (:data:`COLUMNS`).
"""

import sys
import time
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone

from .._inference import progress
from .._random import derive_seed, scoped_seed
from .._validation import validate_images, validate_labels
from ..activations import check_layers, layer_names
from ..fitters import StructuredNoiseFitter
from ..sources.base import ModificationSource
from ..sources.eot import DEFAULT_EOT_SAMPLES
from .evaluator import evaluate_network
from .plan import get_pairing, make_plan
from .progress import ProgressLog
from .protocols import get_protocols
from .schema import (
    ANY_SOURCE,
    CHECK_COLUMNS,
    CLEAN,
    COLUMNS,
    NOISE_FREE,
    STANDARD,
    WORST_CASE,
    describe_source,
)
from .settings import RunSettings
from .stacked import StackedTrainer, stacking_obstacle
from .store import ResultStore, config_hash
from .trainer import SequentialTrainer, module_widths
from .worst_case import threat_models, worst_case_rows

__all__ = ["Experiment", "COLUMNS", "describe_source", "NOISE_FREE", "ANY_SOURCE", "STANDARD"]

_STRUCTURES = ("none", "full", "diagonal", "isotropic", "lowrank")
_KINDS = ("adversarial", "naturalistic")
#: the engines: "stacked" trains the networks together on their seeds' frozen
#: fronts, "sequential" one skorch net at a time (the reference), "auto" the
#: stacked one where the module can be split
ENGINES = ("auto", "stacked", "sequential")


def _as_tuple(value):
    if isinstance(value, (str, ModificationSource)) or value is None:
        return (value,)
    return tuple(value)


def _labels(y, n_samples, name):
    """Integer class labels, one per image (the library's error for anything else)."""
    array = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} holds {array.dtype} values; expected integer class labels "
                        "0..C-1 (encode them first, e.g. sklearn.preprocessing.LabelEncoder).")
    try:
        return validate_labels(array, n_samples)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _labelled(sources, name):
    """``((label, source), ...)`` from a list or a dict of sources, checked."""
    if isinstance(sources, ModificationSource) or sources is None:
        raise ValueError(f"{name} must be a non-empty list (or dict label -> source) of "
                         f"structnoise sources; got {sources!r}.")
    items = list(sources.items()) if isinstance(sources, dict) else \
        [(None, s) for s in sources]
    if not items:
        raise ValueError(f"{name} must be a non-empty list (or dict label -> source) of "
                         "structnoise sources; it is empty.")
    out = []
    for label, source in items:
        if not isinstance(source, ModificationSource):
            raise TypeError(f"{name} holds {type(source).__name__}, which is not a structnoise "
                            "source (e.g. FGSM(eps=0.1) or Corruption('rotate', 3)).")
        # the source's own parameter checks (an ensemble's members included),
        # before any training rather than when the source first runs
        try:
            source._validate_params()
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name} holds {source!r}, which is not valid: {exc}") from None
        if label is not None and (not isinstance(label, str) or not label):
            raise ValueError(f"{name}'s labels must be non-empty strings; got {label!r}.")
        out.append((describe_source(source, label)["label"], source))
    for label, source in out:
        if label == CLEAN or label.startswith(WORST_CASE):
            raise ValueError(
                f"{name} has a source labelled {label!r}, which the rows keep for "
                f"{'the clean images' if label == CLEAN else 'the worst case over attacks'}: "
                "name it otherwise (a dict label -> source).")
        draws = source.get_params(deep=False).get("eot_samples")
        if name == "eval_sources" and draws not in (None, 1):
            warnings.warn(
                f"eval_sources' {label} sets eot_samples={draws}; the protocols set the "
                "draws of every attack (paper: 1, eot: the experiment's eot_samples), so "
                "its own value is not used.", UserWarning, stacklevel=4)
    labels = [label for label, _ in out]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(
            f"{name} holds several sources labelled {repeated} (the same family and "
            "strength): the rows could not tell them apart. Name them with a dict "
            "label -> source, e.g. {'pgd100': LinfPGD(...), 'pgd40': LinfPGD(...)}.")
    return tuple(out)


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
    noise_sources : list of ModificationSource, or dict label -> ModificationSource
        Sources the noise is learned from, on the training images, with the
        base network (attacks attack it). A dict names them: the labels are
        the ``noise_label`` column, so two configurations of one family and
        strength (PGD with 100 and with 40 iterations) can be compared; a
        list labels each by family and strength (:func:`default_label`).
    eval_sources : list of ModificationSource, or dict label -> ModificationSource
        Sources every network is evaluated on (clean accuracy is added);
        labelled like ``noise_sources`` (the ``eval_label`` column).
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
    pairing : {"kind", "matched", "all"} or callable, default="kind"
        Which evaluation sources a noisy network gets: those of its noise
        source's kind (attacks for attack-shaped noise, modifications for
        modification-shaped noise; the paper's tables and transfer heatmap);
        "matched": the same, but attack-shaped noise only on attacks at its
        own eps (the paper learns the noise at the eps it evaluates); "all";
        or a callable ``(noise, evaluation) -> bool`` of two source
        descriptions (:func:`describe_source`). The noise-free network gets
        all; a trace-scaled isotropic network those paired with any source
        it stands in for (:mod:`~structnoise.evaluation.plan`).
    protocols : tuple of str or Protocol, default=("paper", "eot")
        Evaluation protocols (names from
        :data:`~structnoise.evaluation.protocols.PROTOCOLS` or
        :class:`~structnoise.evaluation.protocols.Protocol` objects), run on
        the same trained networks.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        Noise draws averaged per gradient or query by the "eot" protocol
        built from its name (AutoAttack's "rand" version uses 20 for APGD).
    seeds : tuple of int, default=(0, 1, 2)
        One base network per seed; every other random choice derives from it.
    base_epochs : int, default=10
        Epochs of the noise-free base network.
    noise_epochs : int, default=10
        Epochs of retraining with the noise.
    pair_batch_size : int, default=256
        Images per batch when collecting activation pairs.
    pair_images : int or None, default=None
        Collect the activation pairs on this many training images, drawn
        at random per seed (the paper: None, all of them); the base
        networks and the retraining use all.
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
    engine : {"auto", "stacked", "sequential"}, default="auto"
        How networks are trained (:mod:`~structnoise.evaluation.stacked`):
        "stacked" retrains the networks of a seed together on their
        frozen front, computed once (all of a seed's networks see the same
        batch order; on a GPU every seed's networks in one stack, each on
        its own seed's front); "sequential" trains one skorch net at a time (the
        reference); "auto" takes "stacked" where the module can be split at
        the noise site (:func:`~structnoise.splitting.split_module`) and
        falls back, saying why at ``verbose >= 1``. Both engines evaluate
        the same way and agree in distribution.
    n_jobs : int, default=1
        Parallel jobs (joblib; the Dask backend works through
        ``joblib.parallel_backend("dask")``), over base networks and then over
        groups of networks: of one seed (stacked engine; on a GPU with
        ``n_jobs=1`` every seed's networks form one stack) or sharing a noise
        source (sequential engine). Results do not depend on it.
    store : str or path-like, default=None
        Directory of a resumable, crash-safe store
        (:mod:`~structnoise.evaluation.store`): each base network and each
        network's rows are written, atomically, as soon as they are done; a
        rerun computes only what is missing or damaged, and a different
        configuration gets its own subdirectory (its hash).
    verbose : int, default=1
        0: silent; 1: a progress bar on a terminal, and one line per finished
        step (each base network, each retraining epoch with the time left,
        each network's evaluation) on stderr
        (:class:`~structnoise.evaluation.progress.ProgressLog`).

    Attributes
    ----------
    results_ : pandas.DataFrame
        The rows of the last ``run`` (:data:`COLUMNS`).
    config_hash_ : str
        Hash of the configuration and data the rows belong to.
    checks_ : pandas.DataFrame
        The obfuscation checks' records (empty without ``checks``).
    worst_case_notes_ : list of str
        Worst cases that could not be computed, and why (a network stored
        without per-image outcomes by an older version); empty normally.
    n_networks_trained_ : int
        Networks (base networks included) trained by the last ``run``.
    engine_ : str
        The engine that ran ("stacked" or "sequential").
    plan_ : list of NetPlan
        The networks of the last ``run`` (:mod:`~structnoise.evaluation.plan`).

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
                 eot_samples=DEFAULT_EOT_SAMPLES, seeds=(0, 1, 2), base_epochs=10,
                 noise_epochs=10, pair_batch_size=256, pair_images=None, augmentations=(),
                 augment_noise=0,
                 checks=None, engine="auto", n_jobs=1, store=None, verbose=1):
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
        self.pair_images = pair_images
        self.augmentations = augmentations
        self.augment_noise = augment_noise
        self.checks = checks
        self.engine = engine
        self.n_jobs = n_jobs
        self.store = store
        self.verbose = verbose

    # ------------------------------------------------------------------
    # validation: everything before any training
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
            unknown = [k for k in ts if k not in _KINDS]
            if unknown:
                raise ValueError(f"trace_scales' keys must be source kinds {_KINDS}; got "
                                 f"{unknown} (a kind left out gets unscaled noise).")
            return _as_tuple(ts.get(kind, (None,)))
        return _as_tuple(ts)

    def _check_params(self):
        """The configuration's own checks (no data, no module)."""
        from ..net import NoisyNeuralNetClassifier

        if not isinstance(self.net, NoisyNeuralNetClassifier):
            raise TypeError("net must be an unfitted NoisyNeuralNetClassifier template; got "
                            f"{type(self.net).__name__}.")
        noise_sources = _labelled(self.noise_sources, "noise_sources")
        eval_sources = _labelled(self.eval_sources, "eval_sources")
        structures = _as_tuple(self.structures)
        bad = [s for s in structures if s not in _STRUCTURES]
        if bad or not structures:
            raise ValueError(f"structures must be drawn from {_STRUCTURES}; got {bad}.")
        for name in ("eot_samples", "base_epochs", "pair_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}.")
        protocols = get_protocols(self.protocols, eot_samples=int(self.eot_samples))
        get_pairing(self.pairing)
        for kind in _KINDS:
            for t in self._trace_scales_for(kind):
                if t is not None and (not isinstance(t, Real) or not t > 0):
                    raise ValueError(f"trace scales must be positive floats or None; got {t!r}.")
        if self.pair_images is not None and (not isinstance(self.pair_images, Integral)
                                             or isinstance(self.pair_images, bool)
                                             or self.pair_images < 2):
            raise ValueError(f"pair_images must be None (all training images) or an integer "
                             f">= 2; got {self.pair_images!r}.")
        if not isinstance(self.noise_epochs, Integral) or isinstance(self.noise_epochs, bool) \
                or self.noise_epochs < 1:
            raise ValueError(f"noise_epochs must be a positive integer (the noise is installed "
                             f"and the layers retrained in them); got {self.noise_epochs!r}.")
        for item in self.augmentations:
            if not (isinstance(item, (tuple, list)) and len(item) == 2
                    and isinstance(item[0], ModificationSource) and isinstance(item[1], Real)
                    and 0 < item[1] <= 1):
                raise ValueError("augmentations must be (source, ratio) pairs with a ratio in "
                                 f"(0, 1]; got {item!r}.")
            item[0]._validate_params()
        if self.augmentations and not (isinstance(self.augment_noise, Integral)
                                       and 0 <= self.augment_noise < len(noise_sources)):
            raise ValueError(f"augment_noise must index noise_sources; got {self.augment_noise!r}.")
        if self.checks is not None and not isinstance(self.checks, dict):
            raise TypeError(f"checks must be None or a dict of run_checks settings; got "
                            f"{type(self.checks).__name__}.")
        if self.checks is not None:
            import inspect

            from .checks import run_checks

            known = {"n_images"} | {
                p for p in inspect.signature(run_checks).parameters if p not in ("net", "X",
                                                                                 "y")}
            unknown = sorted(set(self.checks) - known)
            if unknown:
                raise ValueError(f"checks has unknown key(s) {unknown}; known: {sorted(known)}.")
        if isinstance(self.seeds, Integral):
            raise ValueError(f"seeds must be a tuple of distinct integers, one base network "
                             f"each, e.g. (0, 1, 2); got the integer {self.seeds!r} (write "
                             f"({self.seeds!r},) for that one seed).")
        seeds = _as_tuple(self.seeds)
        if not seeds or not all(isinstance(s, Integral) and not isinstance(s, bool)
                                for s in seeds) or len(set(seeds)) < len(seeds):
            raise ValueError(f"seeds must be a non-empty tuple of distinct integers; got "
                             f"{self.seeds!r}.")
        if self.noise_layers is None:
            raise ValueError("noise_layers is required: the layer(s) the noise goes into, e.g. "
                             "PaperCNN.NOISE_SITES[2].")
        layers = tuple(layer_names(self.noise_layers))
        return dict(noise_sources=noise_sources, eval_sources=eval_sources,
                    structures=structures, protocols=protocols, seeds=seeds, layers=layers,
                    noise=self._fitter_template())

    def _untrained(self, layers, X):
        """The untrained template and its layers' widths, checked (no training)."""
        net = clone(self.net).set_params(verbose=0, noise=None, noise_source=None,
                                         noise_layers=None, noise_retrain="all")
        with scoped_seed(0, net.device):  # no draw leaks into the caller's stream
            net.initialize()
        check_layers(net.module_, list(layers))
        try:
            widths = module_widths(net, layers, X)
            with torch.no_grad():
                n_outputs = net.module_(torch.as_tensor(X[:2]).to(net.device)).shape[-1]
        except RuntimeError as exc:  # torch's shape errors
            raise ValueError(f"The training images of shape {tuple(X.shape)} do not fit the "
                             f"module {type(net.module_).__name__}: {exc}") from exc
        # the paper's retraining needs a layer with parameters after the noise
        # site: known from a forward pass, so checked here and not after the
        # base networks
        retrain = clone(self.net).set_params(verbose=0, noise=None, noise_source=None,
                                             noise_layers=list(layers), noise_retrain="after")
        with scoped_seed(0, retrain.device):  # a DataLoader draws its base seed
            retrain.initialize()
            retrain.retraining_layers(X[:2])
        return net, widths, int(n_outputs)

    def _engine(self, net, layers, X):
        """The engine that runs: "stacked" where the module can be split, else "sequential"."""
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}; got {self.engine!r}.")
        if self.engine == "sequential":
            return "sequential"
        reason = stacking_obstacle(net, layers, torch.as_tensor(X[:2]).to(net.device))
        if reason is None:
            return "stacked"
        if self.engine == "stacked":
            raise ValueError(f"engine='stacked' cannot run this experiment: {reason}.")
        if self.verbose:
            print(f"engine='auto' runs the sequential engine: {reason}.", file=sys.stderr)
        return "sequential"

    def _prepare(self, X_train, y_train, X_test, y_test):
        """Validated data, settings and plan: every check before any training."""
        params = self._check_params()
        Xtr = validate_images(X_train).float()
        ytr = _labels(y_train, Xtr.shape[0], "y_train")
        Xte = validate_images(X_test).float()
        yte = _labels(y_test, Xte.shape[0], "y_test")
        if tuple(Xte.shape[1:]) != tuple(Xtr.shape[1:]):
            raise ValueError(f"X_test's images are {tuple(Xte.shape[1:])}, X_train's "
                             f"{tuple(Xtr.shape[1:])}: they must have the same shape.")
        data = (Xtr.numpy(), ytr.numpy(), Xte.numpy(), yte.numpy())
        untrained, widths, n_outputs = self._untrained(params["layers"], data[0])
        for name, labels in (("y_train", data[1]), ("y_test", data[3])):
            if len(labels) and (labels.min() < 0 or labels.max() >= n_outputs):
                raise ValueError(
                    f"{name} holds labels from {labels.min()} to {labels.max()}, but the "
                    f"module has {n_outputs} outputs: expected class labels "
                    f"0..{n_outputs - 1}.")
        self.engine_ = self._engine(untrained, params["layers"], data[0])
        settings = RunSettings(
            net=self.net, layers=params["layers"], widths=widths, noise=params["noise"],
            noise_sources=params["noise_sources"], eval_sources=params["eval_sources"],
            protocols=params["protocols"], base_epochs=int(self.base_epochs),
            noise_epochs=int(self.noise_epochs), pair_batch_size=int(self.pair_batch_size),
            pair_images=None if self.pair_images is None else int(self.pair_images),
            augmentations=tuple(tuple(a) for a in self.augmentations),
            checks=None if self.checks is None else dict(self.checks))
        plans = make_plan(
            seeds=params["seeds"], structures=params["structures"],
            trace_scales=self._trace_scales_for,
            noise=[describe_source(s, label) for label, s in settings.noise_sources],
            evals=[describe_source(s, label) for label, s in settings.eval_sources],
            pairing=self.pairing,
            augmentations=[(describe_source(s), ratio) for s, ratio in settings.augmentations],
            augment_noise=int(self.augment_noise), checks=self.checks is not None)
        return data, settings, plans

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
            columns :data:`COLUMNS`, in the plan's order (stored rows of an
            earlier interrupted run of the same configuration included);
            after each network's rows, its worst case over the attacks of
            each budget with two or more attacks, per protocol
            (``eval_family="worst_case"``,
            :mod:`~structnoise.evaluation.worst_case`).
        """
        data, settings, plans = self._prepare(X_train, y_train, X_test, y_test)
        self.config_hash_ = config_hash(self, data)
        store = ResultStore(self.store, self.config_hash_, config=self._describe())
        n_protocols = len(settings.protocols)
        todo = [p for p in plans if store.load_network(
            p.key, p.n_rows(n_protocols), with_checks=p.check) is None]
        log = ProgressLog(self.verbose)
        log(f"{len(plans)} networks planned over {len(_as_tuple(self.seeds))} seed(s), "
            f"{len(todo)} to train and evaluate ({self.engine_} engine)")
        trainer = StackedTrainer() if self.engine_ == "stacked" else SequentialTrainer()
        self.n_networks_trained_ = 0
        bases = {s: store.load_base(s) for s in sorted({p.seed for p in todo})}
        missing = [s for s, state in bases.items() if state is None]
        # the bases no network needs any more are checked too: a damaged one is
        # named and trained again, never left in the store unreported
        missing += [s for s in sorted(set(_as_tuple(self.seeds)) - set(bases))
                    if store.check_base(s) is False]
        trained = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_train_base)(trainer, settings, s, data, store) for s in missing)
        for s, state in zip(missing, trained, strict=True):
            if not store.persistent:
                store.save_base(s, state)
            bases[s] = state
            log(f"seed {s}: base network trained ({settings.base_epochs} epoch(s))")
        self.n_networks_trained_ += len(missing)
        # the sequential engine's jobs: networks sharing a source's activation
        # pairs; the stacked engine's: the networks of a seed, trained together,
        # or of every seed in one stack on a GPU without parallel jobs
        together = _seeds_together(self.engine_, self.n_jobs, settings.net.device)
        groups = {}
        for p in todo:
            key = p.group if self.engine_ == "sequential" else ("all" if together else p.seed)
            groups.setdefault(key, []).append(p)
        if self.engine_ == "stacked":
            jobs = [delayed(_run_seeds)(
                trainer, settings, group, {s: bases[s] for s in dict.fromkeys(p.seed for p in
                                                                               group)},
                data, store, log, checkpoint="stack-seeds" if key == "all" else
                f"stack-seed{key}") for key, group in groups.items()]
        else:
            jobs = [delayed(_run_group)(trainer, settings, group, bases[group[0].seed], data,
                                        store, log) for group in groups.values()]
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs)
        for done in progress(results, total=len(groups), verbose=self.verbose,
                             desc="network groups"):
            for key, rows, check_rows, outcomes in done:
                if not store.persistent:
                    store.save_network(key, rows, check_rows, outcomes)
                self.n_networks_trained_ += 1
        found = [store.load_network(p.key, p.n_rows(n_protocols), with_checks=p.check)
                 for p in plans]
        self.plan_ = plans
        # each network's rows, then its worst case over the attacks of each
        # budget, from the stored per-image outcomes (no attack runs again)
        models = threat_models(settings.eval_sources)
        frames, self.worst_case_notes_ = [], []
        for rows, _, outcomes in found:
            worst, notes = worst_case_rows(rows, outcomes, models)
            frames += [rows] + ([pd.DataFrame(worst, columns=COLUMNS)] if worst else [])
            self.worst_case_notes_ += notes
        for note in self.worst_case_notes_:
            warnings.warn(note, RuntimeWarning, stacklevel=2)
        self.results_ = pd.concat(frames, ignore_index=True)
        checks = [c for _, c, _ in found if c is not None]
        self.checks_ = pd.concat(checks, ignore_index=True) if checks else \
            pd.DataFrame(columns=CHECK_COLUMNS)
        return self.results_

    def price(self, X_train, y_train, X_test, y_test, calibration=None):
        """What :meth:`run` would train and evaluate, and about how long it would take here.

        Validates the configuration and the data as :meth:`run` does, plans
        the networks, measures a few steps of the network on this machine
        (:func:`~structnoise.evaluation.pricing.calibrate`, seconds) and prices
        each phase (:mod:`~structnoise.evaluation.pricing` states the model).
        Nothing is trained and nothing is stored.

        Parameters
        ----------
        X_train, y_train, X_test, y_test : array-like or torch.Tensor
            As for :meth:`run`.
        calibration : Calibration, default=None
            Unit costs measured earlier (measured now when None).

        Returns
        -------
        price : pandas.DataFrame
            ``phase``, ``count``, ``unit`` and estimated ``seconds``, with a
            last row "total".
        """
        data, settings, plans = self._prepare(X_train, y_train, X_test, y_test)
        if calibration is None:
            from .pricing import calibrate

            calibration = calibrate(settings.net, data[0],
                                    width=max(settings.widths.values(), default=None))
        from .pricing import price_plan

        return price_plan(settings, plans, len(data[0]), len(data[2]),
                          lambda plan: plan.structure != "none", calibration,
                          stacked=self.engine_ == "stacked")

    def _describe(self):
        """A readable record of the configuration (written beside the rows)."""
        return {k: repr(v) for k, v in self.get_params(deep=False).items()}


# --------------------------------------------------------------------------
# the jobs (module-level functions: joblib pickles them); each writes its
# results to a store on disk as soon as they exist
# --------------------------------------------------------------------------
def _seeds_together(engine, n_jobs, device):
    """Whether the stacked engine retrains every seed's networks in one stack.

    On a GPU, where a stacked step is launch-bound (about 1.5 ms on an H200
    at 11 networks), one stack of all seeds takes a third of the steps of
    three stacks of one seed; the rows are the same either way (tested).
    Not on a CPU: measured on 2 cores (``benchmarks/perf_engine.py``, the
    main job's mix on the 1787 digits images at 28x28), one stack of 33
    networks ran at 0.95x and 0.98x three stacks of 11 of three seeds, and
    at 1.01x for one seed's 33 (the main job's retraining: 896 s in one
    stack, 894 s and 939 s by seed), while it would hold every seed's
    activation pairs before any network trains.
    """
    return engine == "stacked" and n_jobs in (None, 1) and torch.device(device).type == "cuda"


def _train_base(trainer, settings, seed, data, store):
    Xtr, ytr, _, _ = data
    state = trainer.train_base(settings, seed, Xtr, ytr)
    if store.persistent:
        store.save_base(seed, state)
    return state


def _network_name(plan):
    """A network as a progress line names it."""
    tr = "" if plan.trace_scale is None or plan.trace_scale != plan.trace_scale else \
        f", tr {plan.trace_scale:g}"
    if plan.structure == "none":
        return "the noise-free network"
    if plan.noise_family == ANY_SOURCE:
        return f"{plan.structure} noise{tr}"
    return f"{plan.structure} noise from {plan.noise_label}{tr}"


def _evaluated(log, plan, rows, seconds):
    """The line of one evaluated network."""
    attacks = sum(r["eval_kind"] == "adversarial" for r in rows)
    log(f"seed {plan.seed}: evaluated {_network_name(plan)} ({len(rows)} rows, {attacks} "
        f"attack rows, {seconds:.0f} s)")


def _run_seeds(trainer, settings, plans, base_states, data, store, log=None,
               checkpoint="stack-seeds"):
    """Train the networks of one or more seeds together (stacked engine), then evaluate each.

    ``checkpoint`` names the stack's checkpoint in the store: one name per
    stack of a run, whichever of its networks are left to train (a
    checkpoint of a larger stack serves a part of it).
    """
    Xtr, ytr, Xte, yte = data
    seeds = list(base_states)
    log = log or ProgressLog(0)
    noises = {}
    for seed in seeds:
        mine = [p for p in plans if p.seed == seed]
        # one source's activation pairs at a time: fit its networks' noise, let them go
        for index in dict.fromkeys(p.noise_index for p in mine if not p.shared):
            with scoped_seed(derive_seed(seed, "pairs", index)):
                pairs = trainer.activation_pairs(settings, seed, index, base_states[seed],
                                                 Xtr, ytr)
            for p in mine:
                if not p.shared and p.noise_index == index:
                    noises[p.key] = trainer.fitted_noise(settings, p, pairs)
            del pairs
        for p in mine:
            if p.shared:
                noises[p.key] = trainer.fitted_noise(settings, p, None)
        log(f"seed {seed}: noise fitted for {len(mine)} networks")
    stack = [p for p in plans if p.augment is None]
    # the stack's state at each epoch's end: a killed run resumes from there
    checkpoint = (store, checkpoint) if store.persistent else None
    trained = dict(zip([p.key for p in stack], trainer.train_networks(
        settings, stack, base_states, [noises[p.key] for p in stack], Xtr, ytr,
        order_seed={s: derive_seed(s, "stacked-order") for s in seeds},
        checkpoint=checkpoint, progress=log), strict=True)) if stack else {}
    if stack:
        what = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
        log(f"{what}: retrained {len(stack)} networks ({settings.noise_epochs} epoch(s))")
    done = []
    for seed in seeds:
        mine = [p for p in plans if p.seed == seed]
        for plan in mine:
            if plan.key not in trained:  # augmentation baselines attack the full net in training
                trained[plan.key] = trainer.train_network(settings, plan, base_states[seed],
                                                          noises[plan.key], Xtr, ytr)
            trainer.prepare_for_evaluation(settings, trained[plan.key][0], Xtr)
        # clean and naturalistic accuracies of every network on the front
        # computed once; then each network's attacks, stored network by network
        measured = trainer.shared_measurements(settings, mine,
                                               [trained[p.key][0] for p in mine],
                                               base_states[seed], Xte, yte)
        for plan in mine:
            net, seconds = trained.pop(plan.key)
            t0 = time.perf_counter()
            rows, check_rows, outcomes = evaluate_network(settings, plan, net, Xte, yte,
                                                          seconds, measured[plan.key])
            if store.persistent:
                store.save_network(plan.key, rows, check_rows, outcomes)
            _evaluated(log, plan, rows, time.perf_counter() - t0)
            done.append((plan.key, rows, check_rows, outcomes))
    if checkpoint is not None:
        store.remove_checkpoint(checkpoint[1])  # every network of the stack is stored
    return done


def _run_group(trainer, settings, group, base_state, data, store, log=None):
    """Train and evaluate networks sharing a seed and a noise source's activation pairs."""
    Xtr, ytr, Xte, yte = data
    seed = group[0].seed
    pairs = None
    if any(not p.shared for p in group):
        index = next(p.noise_index for p in group if not p.shared)
        with scoped_seed(derive_seed(seed, "pairs", index)):
            pairs = trainer.activation_pairs(settings, seed, index, base_state, Xtr, ytr)
    done = []
    for plan in group:
        noise = trainer.fitted_noise(settings, plan, None if plan.shared else pairs)
        net, seconds = trainer.train_network(settings, plan, base_state, noise, Xtr, ytr)
        log = log or ProgressLog(0)
        log(f"seed {seed}: retrained {_network_name(plan)} ({settings.noise_epochs} "
            f"epoch(s), {seconds:.0f} s)")
        t0 = time.perf_counter()
        rows, check_rows, outcomes = evaluate_network(settings, plan, net, Xte, yte, seconds)
        if store.persistent:
            store.save_network(plan.key, rows, check_rows, outcomes)
        _evaluated(log, plan, rows, time.perf_counter() - t0)
        done.append((plan.key, rows, check_rows, outcomes))
    return done
