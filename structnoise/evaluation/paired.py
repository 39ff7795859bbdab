"""Paired per-seed comparisons of conditions, their t-intervals and three-way verdicts.

Every network of a seed starts from that seed's base network and is scored
on the same test images, so two conditions are compared through their
per-seed differences (``full - identity`` on seed 0, on seed 1, ...), not
through two independent means: the seed-to-seed spread of the base
networks cancels. A comparison's verdict is "supported" when its
t-interval over seeds lies above 0, "contradicted" when below, and
"inconclusive" when it straddles 0 (or rests on one seed). A comparison
that involves a condition missing its clean-accuracy reference is
"inconclusive: undertrained" whatever its interval
(:mod:`~structnoise.evaluation.adequacy`).
"""

import numpy as np
import pandas as pd
from scipy import stats

from .schema import ANY_SOURCE, NOISE_FREE, STANDARD, key_text

__all__ = ["COMPARISONS", "SUPPORTED", "CONTRADICTED", "INCONCLUSIVE", "UNDERTRAINED",
           "COMBINE_RULE", "condition_key", "paired_differences", "t_interval", "verdict",
           "combine", "weakest"]

#: comparison name -> (condition, baseline) structures; "isotropic" is the
#: trace-matched identity noise, "none" the noise-free network
COMPARISONS = {"full - identity": ("full", "isotropic"), "full - none": ("full", "none"),
               "diagonal - identity": ("diagonal", "isotropic"),
               "identity - none": ("isotropic", "none")}
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
UNDERTRAINED = "inconclusive: undertrained"


def condition_key(structure, noise_label, trace_scale):
    """The key of a condition (what the adequacy references are keyed by).

    Parameters
    ----------
    structure : str
        Its structure.
    noise_label : str
        Its noise source's label (``NOISE_FREE``, ``ANY_SOURCE``).
    trace_scale : float or None
        Its trace scale.

    Returns
    -------
    key : tuple
        ``(structure, noise_label, trace scale as text)``.

    Examples
    --------
    >>> from structnoise.evaluation.paired import condition_key
    >>> condition_key("none", "none", None)
    ('none', 'none', 'nan')
    """
    if structure == "none":
        return ("none", NOISE_FREE, "nan")
    return (str(structure), str(noise_label), key_text(trace_scale))


def verdict(low, high, n_seeds):
    """The three-way verdict of an interval.

    Parameters
    ----------
    low, high : float
        The interval's ends.
    n_seeds : int
        The seeds it rests on (one seed gives no interval).

    Returns
    -------
    verdict : str
        "supported" (above 0), "contradicted" (below 0) or "inconclusive".

    Examples
    --------
    >>> from structnoise.evaluation.paired import verdict
    >>> verdict(0.01, 0.2, 3), verdict(-0.1, 0.2, 3), verdict(-0.3, -0.1, 3)
    ('supported', 'inconclusive', 'contradicted')
    """
    if n_seeds < 2 or not np.isfinite(low) or not np.isfinite(high):
        return INCONCLUSIVE
    if low > 0:
        return SUPPORTED
    if high < 0:
        return CONTRADICTED
    return INCONCLUSIVE


def t_interval(diffs, confidence=0.95):
    """Mean of per-seed differences and its t-interval over seeds.

    Parameters
    ----------
    diffs : array-like
        One difference per seed.
    confidence : float, default=0.95
        The interval's level.

    Returns
    -------
    mean, low, high : float
        The interval's ends are NaN with fewer than two seeds.

    Examples
    --------
    >>> from structnoise.evaluation.paired import t_interval
    >>> mean, low, high = t_interval([0.1, 0.2, 0.3])
    >>> round(mean, 3), bool(low < mean < high)
    (0.2, True)
    """
    diffs = np.asarray(diffs, dtype=float)
    n = len(diffs)
    mean = float(diffs.mean()) if n else np.nan
    if n < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * diffs.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def _standard(results):
    return results[results.train_family == STANDARD] if "train_family" in results else results


def _per_seed(frame, structure, noise_label, trace_scale):
    """Accuracy per (seed, eval_label) of one condition."""
    if structure == "none":
        part = frame[frame.noise_family == NOISE_FREE]
    elif structure == "isotropic" and trace_scale is not None and trace_scale == trace_scale:
        part = frame[(frame.structure == "isotropic") & (frame.noise_family == ANY_SOURCE)
                     & np.isclose(frame.trace_scale.astype(float), trace_scale)]
    else:  # source-shaped noise (and unscaled isotropic noise, which is per source)
        part = frame[(frame.structure == structure) & (frame.noise_label == noise_label)]
        if trace_scale is None or trace_scale != trace_scale:
            part = part[part.trace_scale.isna()]
        else:
            part = part[np.isclose(part.trace_scale.astype(float), trace_scale)]
    return part.set_index(["seed", "eval_label"]).accuracy


def paired_differences(results, confidence=0.95, undertrained=()):
    """Per-seed paired differences of every comparison, with t-intervals and verdicts.

    For every protocol, every noise source (its label and trace scale) and
    every evaluation its networks get, each comparison of :data:`COMPARISONS`
    whose two conditions are both in the rows.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :meth:`Experiment.run` (standard training only is used).
    confidence : float, default=0.95
        Level of the t-intervals over seeds.
    undertrained : collection of tuple, default=()
        :func:`condition_key` of the conditions that miss their reference:
        their comparisons are "inconclusive: undertrained".

    Returns
    -------
    diffs : pandas.DataFrame
        One row per (protocol, noise source, evaluation, comparison):
        ``eval_protocol``, ``noise_label``, ``noise_kind``, ``noise_strength``,
        ``trace_scale``, ``eval_label``, ``eval_family``, ``eval_kind``,
        ``eval_strength``, ``matched`` (the evaluation is the noise's own
        source), ``comparison``, ``n_seeds``, ``mean``, ``low``, ``high``,
        ``verdict`` and ``per_seed`` (the differences, seed order).

    Examples
    --------
    >>> import pandas as pd
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.paired import paired_differences
    >>> len(paired_differences(pd.DataFrame(columns=COLUMNS)))
    0
    """
    columns = ["eval_protocol", "noise_label", "noise_kind", "noise_strength", "trace_scale",
               "eval_label", "eval_family", "eval_kind", "eval_strength", "matched",
               "comparison", "n_seeds", "mean", "low", "high", "verdict", "per_seed"]
    results = _standard(results)
    if not len(results):
        return pd.DataFrame(columns=columns)
    undertrained = set(undertrained)
    out = []
    sources = results[~results.noise_family.isin([NOISE_FREE, ANY_SOURCE])][
        ["noise_label", "noise_kind", "noise_strength", "trace_scale"]].drop_duplicates()
    evals = results[["eval_label", "eval_family", "eval_kind", "eval_strength"]] \
        .drop_duplicates("eval_label").set_index("eval_label")
    for protocol in dict.fromkeys(results.eval_protocol):
        frame = results[results.eval_protocol == protocol]
        for label, kind, strength, ts in sources.itertuples(index=False):
            trace_scale = None if ts != ts else float(ts)
            for name, (a, b) in COMPARISONS.items():
                left = _per_seed(frame, a, label, trace_scale)
                right = _per_seed(frame, b, label, trace_scale)
                # the evaluations of this source's own networks
                own = frame[(frame.noise_label == label)].eval_label.unique()
                both = left.index.intersection(right.index)
                both = both[both.get_level_values("eval_label").isin(own)]
                if not len(both):
                    continue
                keys = {condition_key(a, label, trace_scale), condition_key(b, label,
                                                                            trace_scale)}
                diff = (left.loc[both] - right.loc[both]).sort_index()
                for eval_label, per_seed in diff.groupby(level="eval_label", sort=False):
                    if eval_label == "clean":
                        continue
                    mean, low, high = t_interval(per_seed.values, confidence)
                    n = len(per_seed)
                    v = UNDERTRAINED if keys & undertrained else verdict(low, high, n)
                    e = evals.loc[eval_label]
                    out.append([protocol, label, kind, strength, ts, eval_label,
                                e.eval_family, e.eval_kind, e.eval_strength,
                                eval_label == label, name, n, mean, low, high, v,
                                tuple(float(x) for x in per_seed.values)])
    return pd.DataFrame(out, columns=columns)


def combine(verdicts):
    """A claim's verdict from its comparisons' verdicts (the rule the report prints).

    Supported when at least half of the comparisons that are not undertrained
    are supported and none is contradicted; contradicted when at least half
    are contradicted; inconclusive otherwise ("inconclusive: undertrained"
    when every comparison is undertrained).

    Parameters
    ----------
    verdicts : list of str
        The comparisons' verdicts.

    Returns
    -------
    verdict : str
        The claim's verdict, or "not measured" without comparisons.

    Examples
    --------
    >>> from structnoise.evaluation.paired import combine
    >>> combine(["supported", "supported", "inconclusive"])
    'supported'
    >>> combine(["supported", "contradicted"])
    'contradicted'
    """
    verdicts = list(verdicts)
    if not verdicts:
        return "not measured"
    judged = [v for v in verdicts if v != UNDERTRAINED]
    if not judged:
        return UNDERTRAINED
    n_sup = sum(v == SUPPORTED for v in judged)
    n_con = sum(v == CONTRADICTED for v in judged)
    if n_con * 2 >= len(judged):
        return CONTRADICTED
    if n_sup * 2 >= len(judged) and n_con == 0:
        return SUPPORTED
    return INCONCLUSIVE


def weakest(parts):
    """A joined claim's verdict: the weakest of its parts' verdicts.

    A claim such as "more than no noise and more than isotropic noise" holds
    only if each part does: contradicted is weaker than inconclusive, which
    is weaker than "inconclusive: undertrained" (no evidence either way),
    which is weaker than supported. Parts not measured are left out.

    Parameters
    ----------
    parts : list of str
        The parts' verdicts (each from :func:`combine`).

    Returns
    -------
    verdict : str
        The weakest part's, or "not measured" when no part was.

    Examples
    --------
    >>> from structnoise.evaluation.paired import weakest
    >>> weakest(["supported", "inconclusive"])
    'inconclusive'
    >>> weakest(["supported", "not measured"])
    'supported'
    """
    order = {CONTRADICTED: 0, INCONCLUSIVE: 1, UNDERTRAINED: 2, SUPPORTED: 3}
    measured = [v for v in parts if v in order]
    return min(measured, key=order.__getitem__) if measured else "not measured"


#: the rule :func:`combine` applies, as the report prints it
COMBINE_RULE = ("supported when at least half of its comparisons (undertrained ones left "
                "out) are supported and none is contradicted; contradicted when at least half "
                "are contradicted; inconclusive otherwise")
