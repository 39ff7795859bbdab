"""Views of an experiment's tidy results: summaries over seeds, the transfer table and matrix."""

import numpy as np
from scipy import stats

from .schema import ANY_SOURCE, CLEAN, NOISE_FREE, STANDARD, WORST_CASE

__all__ = ["summarise", "time_table", "transfer_table", "transfer_matrix", "CONDITION"]

#: the columns that identify a network's noise condition (all but the seed)
CONDITION = ["noise_family", "noise_label", "noise_kind", "noise_strength", "structure",
             "trace_scale", "train_family", "train_strength", "train_ratio"]
_EVAL = ["eval_family", "eval_label", "eval_kind", "eval_strength", "eval_strength_unit",
         "eval_protocol"]


def summarise(results, confidence=0.95):
    """Mean accuracy over seeds with a t-interval, per condition and evaluation.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run`.
    confidence : float, default=0.95
        Level of the interval.

    Returns
    -------
    summary : pandas.DataFrame
        One row per (condition, evaluation, protocol): ``mean``, ``ci``
        (half-width of the interval; NaN with one seed), ``n_seeds``,
        ``eot_draws``.

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS, summarise
    >>> rows = pd.DataFrame([dict.fromkeys(COLUMNS, 0) | {"seed": s, "accuracy": a}
    ...                      for s, a in [(0, 0.5), (1, 0.7)]])
    >>> float(summarise(rows)["mean"].iloc[0])
    0.6
    """
    keys = CONDITION + _EVAL
    frame = results.copy()
    for col in ("noise_strength", "trace_scale", "eval_strength", "train_strength"):
        frame[col] = frame[col].astype(float)
    # a missing strength or trace scale (NaN) is a key like any other
    grouped = frame.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(mean=("accuracy", "mean"), sd=("accuracy", "std"),
                      n_seeds=("seed", "nunique"), eot_draws=("eot_draws", "max")).reset_index()
    t = stats.t.ppf(0.5 + confidence / 2, np.maximum(out.n_seeds - 1, 1))
    out["ci"] = np.where(out.n_seeds > 1, t * out.sd / np.sqrt(out.n_seeds), np.nan)
    return out.drop(columns="sd")


def time_table(results):
    """Where a run's time went: retraining, then each evaluation, from the rows' seconds.

    Every row carries its network's ``train_seconds`` and its own
    ``eval_seconds``. Retraining counts once per network. A clean or
    naturalistic evaluation is one measurement reported under every
    protocol, so it counts once per network (under protocol "all"); an
    attack counts under each protocol (a protocol that shared another's
    measurement adds almost nothing).

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run`.

    Returns
    -------
    times : pandas.DataFrame
        Columns ``phase``, ``protocol``, ``networks`` and ``seconds``, the
        retraining first, then the evaluations, dearest first.

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.views import time_table
    >>> row = dict.fromkeys(COLUMNS, 0) | {"eval_family": "clean", "eval_kind": "clean",
    ...                                    "eval_label": "clean", "train_seconds": 3.0,
    ...                                    "eval_seconds": 0.5}
    >>> rows = pd.DataFrame([row | {"eval_protocol": p} for p in ("paper", "eot")])
    >>> time_table(rows)[["phase", "protocol", "seconds"]].values.tolist()
    [['retraining', 'all', 3.0], ['clean', 'all', 0.5]]
    """
    import pandas as pd

    network = ["seed"] + CONDITION
    # worst-case rows combine stored outcomes: they take no time of their own
    frame = results[results.eval_family != WORST_CASE].copy()
    for col in ("noise_strength", "trace_scale", "train_strength", "train_ratio"):
        frame[col] = frame[col].astype(float)
    nets = frame.groupby(network, dropna=False).agg(seconds=("train_seconds", "first"))
    out = [{"phase": "retraining", "protocol": "all", "networks": len(nets),
            "seconds": float(nets.seconds.sum())}]
    adversarial = frame.eval_kind == "adversarial"
    once = frame[~adversarial].groupby(network + ["eval_label"], dropna=False).agg(
        seconds=("eval_seconds", "max"), family=("eval_family", "first")).reset_index()
    for family, part in once.groupby("family", sort=False):
        out.append({"phase": family, "protocol": "all",
                    "networks": len(part.groupby(network, dropna=False)),
                    "seconds": float(part.seconds.sum())})
    for (family, protocol), part in frame[adversarial].groupby(["eval_family", "eval_protocol"]):
        out.append({"phase": family, "protocol": protocol,
                    "networks": len(part.groupby(network, dropna=False)),
                    "seconds": float(part.eval_seconds.sum())})
    times = pd.DataFrame(out, columns=["phase", "protocol", "networks", "seconds"])
    return pd.concat([times.iloc[:1], times.iloc[1:].sort_values("seconds", ascending=False,
                                                                  kind="stable")],
                     ignore_index=True)


def transfer_table(results, structure="full", protocol="paper", eval_kind=None,
                   trace_scale=None):
    """Mean accuracy, noise source (rows) by evaluation source (columns).

    The paper's transfer heatmap as a pivot of the experiment's rows: no
    second protocol. Baseline rows: the noise-free network ("none") and,
    when present, trace-matched isotropic noise ("any").

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run`.
    structure : str, default="full"
        The structure of the source-shaped rows.
    protocol : {"paper", "eot"}, default="paper"
        Evaluation protocol.
    eval_kind : {"adversarial", "naturalistic"} or None, default=None
        Keep the evaluation sources of one kind (None: all but clean).
    trace_scale : float or None, default=None
        Keep one trace scale (None: all).

    Returns
    -------
    table : pandas.DataFrame
        Index ``(noise_family, noise_strength, structure)``, columns
        ``(eval_family, eval_strength)``, mean accuracy over seeds.

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS, transfer_table
    >>> row = dict.fromkeys(COLUMNS, 0) | {"noise_family": "rotate", "structure": "full",
    ...        "eval_family": "snow", "eval_kind": "naturalistic", "eval_protocol": "paper",
    ...        "train_family": "standard", "accuracy": 0.4}
    >>> float(transfer_table(pd.DataFrame([row])).iloc[0, 0])
    0.4
    """
    frame = results[(results.eval_protocol == protocol)
                    & (results.get("train_family", STANDARD) == STANDARD)]
    frame = frame[frame.eval_kind != CLEAN]
    if eval_kind is not None:
        frame = frame[frame.eval_kind == eval_kind]
    if trace_scale is not None:
        frame = frame[(frame.trace_scale == trace_scale) | (frame.noise_family == NOISE_FREE)]
    keep = (frame.structure == structure) | (frame.noise_family == NOISE_FREE) | (
        (frame.structure == "isotropic") & (frame.noise_family == ANY_SOURCE))
    frame = frame[keep].copy()
    frame["noise_strength"] = frame["noise_strength"].astype(float)
    return frame.pivot_table(index=["noise_family", "noise_strength", "structure"],
                             columns=["eval_family", "eval_strength"], values="accuracy",
                             aggfunc="mean", dropna=False).dropna(how="all").dropna(
        axis=1, how="all")


def transfer_matrix(estimator, X, y, noise_sources, eval_sources, *, X_eval=None,
                    y_eval=None, isotropic=True, eot_samples=None, protocol="eot",
                    test_size=0.25, random_state=0):
    """The paper's transfer experiment in one call: a view of an :class:`Experiment`.

    Runs :class:`~structnoise.evaluation.Experiment` (one base network, then
    per noise source a network retrained with the noise learned from it, the
    noise-free network retrained the same way, and with ``isotropic=True``
    isotropic noise of the same trace) and pivots its rows on the sources'
    labels: the same protocol as the benchmarks, not a second one.

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
        Sources the noise is learned from (rows), named by the dict's keys
        (a list: by family and strength).
    eval_sources : dict or list
        Sources the networks are evaluated on (columns; "clean" is added).
    X_eval, y_eval : arrays, default=None
        Held-out evaluation data.
    isotropic : bool, default=True
        Add the isotropic row of the same trace.
    eot_samples : int, default=None
        EOT draws of the "eot" protocol (``DEFAULT_EOT_SAMPLES`` when None).
    protocol : {"eot", "paper"}, default="eot"
        The evaluation protocol of the cells.
    test_size : float, default=0.25
        Held-out fraction when ``X_eval`` is None.
    random_state : int, default=0
        Seed of the split and of the experiment.

    Returns
    -------
    matrix : pandas.DataFrame
        Accuracy, index "noise source" (``none``, each noise source's label,
        ``<label> [isotropic]`` for unscaled isotropic noise, ``isotropic``
        for trace-scaled), columns the evaluation sources' labels.

    Examples
    --------
    >>> from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
    >>> from structnoise.datasets import load_digits_images
    >>> from structnoise.evaluation import transfer_matrix
    >>> from structnoise.models import DigitsMLP
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
    import pandas as pd
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    from ..net import NoisyNeuralNetClassifier
    from ..sources.eot import DEFAULT_EOT_SAMPLES
    from .experiment import Experiment

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
    epochs = int(estimator.max_epochs)
    base = estimator.noise_warmup_epochs if estimator.noise_warmup_epochs is not None \
        else max(1, epochs // 2)
    template = clone(estimator).set_params(noise=None, noise_source=None, noise_layers=None)
    exp = Experiment(
        template, estimator.noise_layers, noise_sources, eval_sources,
        structures=("none", "full", "isotropic") if isotropic else ("none", "full"),
        trace_scales=(estimator.noise.trace_scale,), noise=estimator.noise, pairing="all",
        protocols=(protocol,), eot_samples=int(eot_samples or DEFAULT_EOT_SAMPLES),
        seeds=(int(random_state),), base_epochs=max(1, int(base)),
        noise_epochs=max(1, epochs - int(base)), verbose=0)
    rows = exp.run(X, y, X_eval, y_eval)
    # rows: the noise-free network, each source's full noise, its unscaled
    # isotropic noise ("<label> [isotropic]"), and trace-scaled isotropic noise
    rows = rows.assign(row=np.select(
        [rows.noise_family == ANY_SOURCE, rows.structure == "isotropic"],
        ["isotropic", rows.noise_label + " [isotropic]"], rows.noise_label))
    table = rows.pivot_table(index="row", columns="eval_label", values="accuracy",
                             aggfunc="mean")
    noise_labels = list(dict.fromkeys(rows.loc[~rows.noise_family.isin(
        [NOISE_FREE, ANY_SOURCE]), "noise_label"]))
    eval_labels = list(dict.fromkeys(rows.loc[rows.eval_kind != CLEAN, "eval_label"]))
    order = [NOISE_FREE] + [r for n in noise_labels for r in (n, f"{n} [isotropic]")] + \
        ["isotropic"]
    out = pd.DataFrame(table).reindex(index=[r for r in order if r in table.index],
                                      columns=[CLEAN] + eval_labels)
    out.index.name = "noise source"
    out.columns.name = "eval source"
    return out
