"""Views of an experiment's tidy results: summaries over seeds, transfer tables."""

import numpy as np
from scipy import stats

__all__ = ["summarise", "transfer_table", "CONDITION"]

#: the columns that identify a network's noise condition (all but the seed)
CONDITION = ["noise_family", "noise_kind", "noise_strength", "structure", "trace_scale",
             "train_family", "train_strength", "train_ratio"]
_EVAL = ["eval_family", "eval_kind", "eval_strength", "eval_strength_unit", "eval_protocol"]


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
        frame[col] = frame[col].astype(float).fillna(-1.0)  # NaN keys would be dropped
    grouped = frame.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(mean=("accuracy", "mean"), sd=("accuracy", "std"),
                      n_seeds=("seed", "nunique"), eot_draws=("eot_draws", "max")).reset_index()
    t = stats.t.ppf(0.5 + confidence / 2, np.maximum(out.n_seeds - 1, 1))
    out["ci"] = np.where(out.n_seeds > 1, t * out.sd / np.sqrt(out.n_seeds), np.nan)
    for col in ("noise_strength", "trace_scale", "eval_strength", "train_strength"):
        out[col] = out[col].replace(-1.0, np.nan)
    return out.drop(columns="sd")


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
                    & (results.get("train_family", "standard") == "standard")]
    frame = frame[frame.eval_kind != "clean"]
    if eval_kind is not None:
        frame = frame[frame.eval_kind == eval_kind]
    if trace_scale is not None:
        frame = frame[(frame.trace_scale == trace_scale) | (frame.structure == "none")]
    keep = (frame.structure == structure) | (frame.structure == "none") | (
        (frame.structure == "isotropic") & (frame.noise_family == "any"))
    frame = frame[keep].copy()
    frame["noise_strength"] = frame["noise_strength"].astype(float).fillna(-1.0)
    table = frame.pivot_table(index=["noise_family", "noise_strength", "structure"],
                              columns=["eval_family", "eval_strength"], values="accuracy",
                              aggfunc="mean")
    table.index = table.index.set_levels(
        table.index.levels[1].where(table.index.levels[1] != -1.0, np.nan), level=1)
    return table
