"""Robust scoring: accuracy under modification sources, the scikit-learn way.

:class:`RobustScorer` is a scorer callable ``(estimator, X, y) -> float``, so
it plugs into ``cross_validate`` and ``GridSearchCV(scoring=...)``;
:func:`robust_scoring` builds the multi-metric dict; :func:`robustness_report`
returns a pandas DataFrame. (The transfer matrix trains networks: it is an
experiment, :func:`structnoise.evaluation.transfer_matrix`.)

Honest evaluation of stochastic networks. A network with noise active at
evaluation is attacked with EOT (expectation over transformation): each
attack gradient averages ``eot_samples`` noise draws. Without it, a noisy
network can look robust only because its gradients are noisy.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from ._inference import predict_labels
from ._validation import validate_images, validate_labels
from .sources.base import ModificationSource
from .sources.eot import DEFAULT_EOT_SAMPLES

__all__ = ["RobustScorer", "robust_scoring", "robustness_report", "DEFAULT_EOT_SAMPLES",
           "is_stochastic"]

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
            return float(np.mean(predict_labels(estimator, X) == y_np))
        clip = (getattr(self.source, "clip_min", 0.0), getattr(self.source, "clip_max", 1.0))
        Xt = validate_images(X, *clip)
        validate_labels(y_np, Xt.shape[0])
        source, _ = _eot_source(self.source, estimator, self.eot_samples)
        X_mod = source.generate(estimator, Xt, y_np)
        return float(np.mean(predict_labels(estimator, X_mod) == y_np))

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
        accs = [float(np.mean(predict_labels(estimator, X_mod) == y_np)) for _ in range(n_repeats)]
        rows.append({"source": name, "kind": kind, "eot_samples": k,
                     "accuracy_mean": float(np.mean(accs)),
                     "accuracy_std": float(np.std(accs, ddof=1)) if n_repeats > 1 else 0.0,
                     "n_repeats": n_repeats, "params": _source_params(source)})
    return pd.DataFrame(rows)
