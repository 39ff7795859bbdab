"""Did each condition's networks learn their task? Clean accuracy beside a reference.

A network that has not learned its task proves nothing about robustness:
an attack has little to take away. Each condition (structure, noise
source, trace scale) has a reference, the clean accuracy of the same
condition trained at full size (the ``adequacy`` preset: all training
images, the paper's 10 + 10 epochs). A run's networks are adequate when
their mean clean accuracy over seeds is within ``tolerance`` of it: one
point for the noise-free network, three for the noisy ones. Conditions
that miss it are "undertrained", and the report makes no robustness
verdict on them.
"""

import numpy as np
import pandas as pd

from .paired import condition_key
from .schema import CLEAN, NOISE_FREE, STANDARD

__all__ = ["TOLERANCE", "adequacy_table", "undertrained_conditions"]

#: allowed shortfall of the mean clean accuracy below the reference
TOLERANCE = {"none": 0.01, "noisy": 0.03}


def adequacy_table(results, references, tolerance=None):
    """Each condition's clean accuracy beside its reference, and whether it is adequate.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run` (standard training only is used).
    references : dict or None
        :func:`~structnoise.evaluation.paired.condition_key` -> reference
        clean accuracy; None when no full run has measured them.
    tolerance : dict, default=None
        ``{"none": ..., "noisy": ...}`` (:data:`TOLERANCE` when None).

    Returns
    -------
    table : pandas.DataFrame
        One row per condition: ``structure``, ``noise_label``,
        ``trace_scale``, ``n_seeds``, ``clean`` (mean over seeds),
        ``reference``, ``gap`` (clean - reference), ``tolerance`` and
        ``status`` ("adequate", "undertrained" or "no reference").

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation.adequacy import adequacy_table
    >>> rows = pd.DataFrame({"seed": [0, 1], "noise_family": "none", "noise_label": "none",
    ...                      "structure": "none", "trace_scale": float("nan"),
    ...                      "train_family": "standard", "eval_kind": "clean",
    ...                      "eval_protocol": "paper", "accuracy": [0.97, 0.99]})
    >>> adequacy_table(rows, {("none", "none", "nan"): 0.985}).status.tolist()
    ['adequate']
    """
    tolerance = dict(TOLERANCE if tolerance is None else tolerance)
    columns = ["structure", "noise_label", "trace_scale", "n_seeds", "clean", "reference",
               "gap", "tolerance", "status"]
    frame = results[(results.eval_kind == CLEAN)]
    if "train_family" in frame:
        frame = frame[frame.train_family == STANDARD]
    if not len(frame):
        return pd.DataFrame(columns=columns)
    # clean accuracy is one measurement, reported under every protocol: take one
    frame = frame[frame.eval_protocol == frame.eval_protocol.iloc[0]]
    out = []
    for (structure, label, ts), part in frame.groupby(
            ["structure", "noise_label", "trace_scale"], sort=False, dropna=False):
        trace_scale = None if ts != ts else float(ts)
        key = condition_key(structure, label, trace_scale)
        clean = float(part.accuracy.mean())
        reference = None if references is None else references.get(key)
        tol = tolerance["none" if structure == "none" else "noisy"]
        if reference is None:
            gap, status = np.nan, "no reference"
        else:
            gap = clean - float(reference)
            status = "adequate" if gap >= -tol else "undertrained"
        out.append([structure, NOISE_FREE if structure == "none" else label,
                    np.nan if trace_scale is None else trace_scale, int(part.seed.nunique()),
                    clean, np.nan if reference is None else float(reference), gap, tol,
                    status])
    return pd.DataFrame(out, columns=columns)


def undertrained_conditions(table):
    """The condition keys a table marks undertrained (for the paired verdicts).

    Parameters
    ----------
    table : pandas.DataFrame
        An :func:`adequacy_table`.

    Returns
    -------
    keys : set of tuple
        Their :func:`~structnoise.evaluation.paired.condition_key`.

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation.adequacy import undertrained_conditions
    >>> table = pd.DataFrame({"structure": ["full"], "noise_label": ["fgsm"],
    ...                       "trace_scale": [2.0], "status": ["undertrained"]})
    >>> undertrained_conditions(table)
    {('full', 'fgsm', '2.0')}
    """
    return {condition_key(r.structure, r.noise_label,
                          None if r.trace_scale != r.trace_scale else r.trace_scale)
            for r in table.itertuples(index=False) if r.status == "undertrained"}
