"""Robust scoring: accuracy under modification sources, the scikit-learn way.

:class:`RobustScorer` is a scorer callable ``(estimator, X, y) -> float``, so
it plugs into ``cross_validate`` and ``GridSearchCV(scoring=...)``;
:func:`robust_scoring` builds the multi-metric dict; :func:`robustness_report`
and :func:`transfer_matrix` return pandas DataFrames.

Honest evaluation of stochastic networks. A network with noise active at
evaluation is attacked with EOT (expectation over transformation): each
attack gradient averages ``eot_samples`` noise draws. Without it, a noisy
network can look robust only because its gradients are noisy.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from .sources._utils import validate_images, validate_labels
from .sources.base import ModificationSource

__all__ = ["RobustScorer", "robust_scoring", "robustness_report", "transfer_matrix",
           "DEFAULT_EOT_SAMPLES", "is_stochastic"]

#: EOT draws used against a network whose noise is active at evaluation
DEFAULT_EOT_SAMPLES = 8


def is_stochastic(estimator):
    """Whether the estimator's predictions are random (noise active in eval).

    Parameters
    ----------
    estimator : object
        A fitted net (or anything).

    Returns
    -------
    stochastic : bool
        True for a :class:`~structnoise.NoisyNeuralNetClassifier` with noise
        on at evaluation.

    Examples
    --------
    >>> from structnoise.scoring import is_stochastic
    >>> is_stochastic(object())
    False
    """
    return bool(getattr(estimator, "noise_active_in_eval", False))


def _eot_source(source, estimator, eot_samples):
    """The source to use against ``estimator``: with EOT if it is stochastic."""
    if source is None or source.kind != "adversarial" or "eot_samples" not in \
            source.get_params():
        return source, 1
    if eot_samples is None:
        eot_samples = DEFAULT_EOT_SAMPLES if is_stochastic(estimator) else 1
    return clone(source).set_params(eot_samples=int(eot_samples)), int(eot_samples)


def _predict(estimator, X):
    """Predictions of a skorch net or a torch module on a tensor of images."""
    if hasattr(estimator, "predict"):
        return np.asarray(estimator.predict(X.cpu().numpy() if isinstance(X, torch.Tensor)
                                            else X))
    from .sources._utils import module_dtype, predict_logits, resolve_module

    module = resolve_module(estimator)
    dtype = module_dtype(module)
    was_training = module.training
    module.eval()
    try:
        return predict_logits(module, torch.as_tensor(X).to(dtype)).argmax(1).cpu().numpy()
    finally:
        module.train(was_training)


class RobustScorer:
    """Accuracy on modified inputs: ``accuracy(y, predict(source(X)))``.

    Parameters
    ----------
    source : ModificationSource or None
        The modification; None scores the clean inputs.
    eot_samples : int, default=None
        EOT draws for attacks. None: :data:`DEFAULT_EOT_SAMPLES` when the
        network's noise is active at evaluation, 1 otherwise.

    Examples
    --------
    >>> import torch
    >>> from structnoise.scoring import RobustScorer
    >>> from structnoise.sources import GaussianNoise
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> scorer = RobustScorer(GaussianNoise(0.1, random_state=0))
    >>> 0.0 <= scorer(model, torch.rand(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)) <= 1.0
    True
    """

    def __init__(self, source=None, eot_samples=None):
        if source is not None and not isinstance(source, ModificationSource):
            raise TypeError(
                f"source must be a structnoise source or None; got {type(source).__name__}.")
        if eot_samples is not None and (not isinstance(eot_samples, (int, np.integer))
                                        or eot_samples < 1):
            raise ValueError(f"eot_samples must be a positive integer; got {eot_samples!r}.")
        self.source = source
        self.eot_samples = eot_samples

    def __call__(self, estimator, X, y):
        """Score ``estimator`` on ``source(X)`` against the true labels ``y``."""
        y_np = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        if self.source is None:
            return float(np.mean(_predict(estimator, X) == y_np))
        clip = (getattr(self.source, "clip_min", 0.0), getattr(self.source, "clip_max", 1.0))
        Xt = validate_images(X, *clip)
        validate_labels(y_np, Xt.shape[0])
        source, _ = _eot_source(self.source, estimator, self.eot_samples)
        X_mod = source.generate(estimator, Xt, y_np)
        return float(np.mean(_predict(estimator, X_mod) == y_np))

    def __repr__(self):
        return f"RobustScorer({self.source!r})"


def robust_scoring(sources, clean=True, eot_samples=None):
    """A multi-metric scoring dict for ``GridSearchCV`` / ``cross_validate``.

    Parameters
    ----------
    sources : dict or list
        name -> source, or a list of sources (named by their labels).
    clean : bool, default=True
        Include ``"clean"`` accuracy.
    eot_samples : int, default=None
        Passed to every :class:`RobustScorer`.

    Returns
    -------
    scoring : dict
        name -> :class:`RobustScorer`; use ``refit="<name>"`` in GridSearchCV.

    Examples
    --------
    >>> from structnoise.scoring import robust_scoring
    >>> from structnoise.sources import FGSM
    >>> sorted(robust_scoring({"fgsm": FGSM(eps=0.1)}))
    ['clean', 'fgsm']
    """
    named = _named_sources(sources)
    scoring = {"clean": RobustScorer(None)} if clean else {}
    for name, source in named.items():
        if name == "clean":
            raise ValueError("'clean' is reserved for the clean accuracy; rename the source.")
        scoring[name] = RobustScorer(source, eot_samples=eot_samples)
    return scoring


def _named_sources(sources):
    if isinstance(sources, ModificationSource):
        sources = [sources]
    if isinstance(sources, dict):
        named = dict(sources)
    else:
        named = {}
        for s in sources:
            if not isinstance(s, ModificationSource):
                raise TypeError(f"Expected structnoise sources; got {type(s).__name__}.")
            named[s.label] = s
    for name, s in named.items():
        if s is not None and not isinstance(s, ModificationSource):
            raise TypeError(f"Source {name!r} is a {type(s).__name__}, not a structnoise source.")
    return named


def _source_params(source):
    if source is None:
        return {}
    return {k: v for k, v in source.get_params(deep=False).items()
            if k not in ("batch_size", "verbose", "random_state", "eot_samples")}


def robustness_report(estimator, X, y, sources, n_repeats=5, eot_samples=None, clean=True):
    """Accuracy of a fitted network under each source, over noise draws.

    Each source modifies ``X`` once (attacks with EOT when the network is
    stochastic); the predictions are then repeated ``n_repeats`` times, so
    the spread reflects the network's own noise.

    Parameters
    ----------
    estimator : fitted skorch net or torch.nn.Module
        The network.
    X : array-like or torch.Tensor of shape (N, C, H, W)
        Images.
    y : array-like of shape (N,)
        True labels.
    sources : dict or list
        name -> source, or a list of sources.
    n_repeats : int, default=5
        Prediction repeats (noise draws); 1 suffices for a deterministic net.
    eot_samples : int, default=None
        EOT draws for attacks (see :class:`RobustScorer`).
    clean : bool, default=True
        Include a "clean" row.

    Returns
    -------
    report : pandas.DataFrame
        One row per source: ``source``, ``kind`` (clean, adversarial,
        naturalistic), ``eot_samples``, ``accuracy_mean``, ``accuracy_std``,
        ``n_repeats`` and ``params``.

    Examples
    --------
    >>> import torch
    >>> from structnoise.scoring import robustness_report
    >>> from structnoise.sources import Corruption
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X, y = torch.rand(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)
    >>> report = robustness_report(model, X, y, {"blur": Corruption("gaussian_blur")}, n_repeats=1)
    >>> list(report["source"])
    ['clean', 'blur']
    """
    if not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer; got {n_repeats!r}.")
    named = _named_sources(sources)
    y_np = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    Xt = validate_images(X)
    validate_labels(y_np, Xt.shape[0])
    rows = []
    entries = ([("clean", None)] if clean else []) + list(named.items())
    for name, source in entries:
        if source is None:
            X_mod, k, kind = Xt, 1, "clean"
        else:
            src, k = _eot_source(source, estimator, eot_samples)
            X_mod, kind = src.generate(estimator, Xt, y_np), source.kind
        accs = [float(np.mean(_predict(estimator, X_mod) == y_np)) for _ in range(n_repeats)]
        rows.append({"source": name, "kind": kind, "eot_samples": k,
                     "accuracy_mean": float(np.mean(accs)),
                     "accuracy_std": float(np.std(accs, ddof=1)) if n_repeats > 1 else 0.0,
                     "n_repeats": n_repeats, "params": _source_params(source)})
    return pd.DataFrame(rows)


def transfer_matrix(estimator, X, y, noise_sources, eval_sources, *, X_eval=None,
                    y_eval=None, isotropic=True, eot_samples=None, protocol="eot",
                    test_size=0.25, random_state=0):
    """The paper's transfer experiment in one call: a view of an :class:`Experiment`.

    Runs :class:`structnoise.evaluation.Experiment` (one base network, then
    per noise source a network retrained with the noise learned from it, the
    noise-free network retrained the same way, and with ``isotropic=True``
    isotropic noise of the same trace) and pivots its rows: the same
    protocol as the benchmarks, not a second one.

    Parameters
    ----------
    estimator : NoisyNeuralNetClassifier
        Unfitted template with ``noise`` and ``noise_layers`` set; its
        ``max_epochs`` is split into ``noise_warmup_epochs`` base epochs
        (default: half) and the rest retraining with the noise.
    X, y : arrays
        Training data (and evaluation data when ``X_eval`` is None: a
        stratified ``test_size`` split is held out).
    noise_sources : dict or list
        Sources the noise is learned from (rows).
    eval_sources : dict or list
        Sources the networks are evaluated on (columns; "clean" is added).
    X_eval, y_eval : arrays, default=None
        Held-out evaluation data.
    isotropic : bool, default=True
        Add an isotropic row of the same trace per noise source.
    eot_samples : int, default=None
        EOT draws of the "eot" protocol (:data:`DEFAULT_EOT_SAMPLES` when
        None).
    protocol : {"eot", "paper"}, default="eot"
        The evaluation protocol of the cells (see
        :mod:`structnoise.evaluation`).
    test_size : float, default=0.25
        Held-out fraction when ``X_eval`` is None.
    random_state : int, default=0
        Seed of the split and of the experiment.

    Returns
    -------
    matrix : pandas.DataFrame
        Accuracy, index "noise source" (``none``, ``<source>``,
        ``<source> [isotropic]``), columns the evaluation sources.

    Examples
    --------
    >>> import torch
    >>> from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
    >>> from structnoise.datasets import load_digits_images
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.scoring import transfer_matrix
    >>> from structnoise.sources import Corruption
    >>> X, y = load_digits_images()
    >>> net = NoisyNeuralNetClassifier(DigitsMLP, noise=StructuredNoiseFitter(),
    ...                                noise_layers="body.2", max_epochs=2, lr=0.1,
    ...                                train_split=None, verbose=0)
    >>> blur = Corruption("gaussian_blur", 3)
    >>> m = transfer_matrix(net, X[:300], y[:300], {"blur": blur}, {"blur": blur})
    >>> list(m.index), list(m.columns)
    (['none', 'blur', 'blur [isotropic]'], ['clean', 'blur'])
    """
    from .evaluation import Experiment, describe_source
    from .net import NoisyNeuralNetClassifier

    if not isinstance(estimator, NoisyNeuralNetClassifier):
        raise TypeError("estimator must be a NoisyNeuralNetClassifier template.")
    if estimator.noise is None or isinstance(estimator.noise, dict):
        raise ValueError("estimator.noise must be one StructuredNoiseFitter template "
                         "(e.g. noise=StructuredNoiseFitter()).")
    if estimator.noise_layers is None:
        raise ValueError("estimator.noise_layers is required (the layer to put noise in).")
    if X_eval is None:
        X, X_eval, y, y_eval = train_test_split(X, y, test_size=test_size,
                                                random_state=random_state, stratify=y)
    noise_named = _named_sources(noise_sources)
    eval_named = _named_sources(eval_sources)

    def ident(source):
        d = describe_source(source)
        return d["family"], d["strength"]

    row_names = {ident(s): n for n, s in noise_named.items()}
    col_names = {ident(s): n for n, s in eval_named.items()}
    if len(row_names) < len(noise_named) or len(col_names) < len(eval_named):
        raise ValueError("Two sources describe the same modification at the same strength; "
                         "give each row and column a distinct source.")
    epochs = int(estimator.max_epochs)
    base = estimator.noise_warmup_epochs if estimator.noise_warmup_epochs is not None \
        else max(1, epochs // 2)
    template = clone(estimator).set_params(noise=None, noise_source=None,
                                           noise_layers=None)
    exp = Experiment(
        template, estimator.noise_layers, list(noise_named.values()), list(eval_named.values()),
        structures=("none", "full", "isotropic") if isotropic else ("none", "full"),
        trace_scales=(estimator.noise.trace_scale,), noise=estimator.noise, pairing="all",
        protocols=(protocol,), eot_samples=int(eot_samples or DEFAULT_EOT_SAMPLES),
        seeds=(int(random_state),), base_epochs=max(1, int(base)),
        noise_epochs=max(1, epochs - int(base)), verbose=0)
    rows = exp.run(X, y, X_eval, y_eval)
    table = {}
    for r in rows.itertuples(index=False):
        if r.structure == "none":
            row = "none"
        elif r.noise_family == "any":
            row = "isotropic"
        else:
            key = (r.noise_family, r.noise_strength)
            name = next(n for (f, st), n in row_names.items()
                        if f == key[0] and _same_strength(st, key[1]))
            row = name if r.structure == "full" else f"{name} [isotropic]"
        if r.eval_kind == "clean":
            col = "clean"
        else:
            col = next(n for (f, st), n in col_names.items()
                       if f == r.eval_family and _same_strength(st, r.eval_strength))
        table.setdefault(row, {})[col] = r.accuracy
    order = ["none"] + [r for n in noise_named for r in (n, f"{n} [isotropic]")] + ["isotropic"]
    out = pd.DataFrame.from_dict(table, orient="index")
    out = out.reindex(index=[r for r in order if r in out.index],
                      columns=["clean"] + list(eval_named))
    out.index.name = "noise source"
    out.columns.name = "eval source"
    return out


def _same_strength(a, b):
    """Equal strengths, NaN (no strength) matching NaN."""
    return a == b or (a != a and b != b)
