"""The worst case over attacks, image by image: robust accuracy as AutoAttack counts it.

An image is robust only if it survives every attack of a threat model
(one budget in one norm). Each attack's accuracy on its own overstates
robustness whenever different attacks fool different images. A network's
stored per-image outcomes (:mod:`~structnoise.evaluation.store`) give the
worst case without running any attack again: for each protocol and each
threat model with two or more attacks among the network's evaluations, the
images that every one of them left correct. These are rows with
``eval_family="worst_case"`` (:data:`~structnoise.evaluation.schema.WORST_CASE`).

A threat model with a single attack gets no worst-case row: its worst case
is that attack's own row. A network whose outcomes miss one of the attacks
(stored by an older version, say) gets no row either, and a note naming the
missing attack: the worst case is never computed over fewer attacks than
the network was evaluated on without saying so.

On a stochastic network each attack's outcomes come from the protocol's own
prediction on fresh noise draws, as AutoAttack's rand version scores each of
its attacks, and the worst case combines those judgements. Each judgement
draws its own noise, so an image near its decision boundary is more likely
to be judged wrong once in several judgements than in one: part of the gap
between the worst case and the weakest single attack on a noisy network is
that chance, not a stronger adversary. More draws in the network's
prediction (``noise_ensemble``) shrink it.
"""

import numpy as np

from ..sources.ensemble import threat_model
from .schema import WORST_CASE

__all__ = ["threat_models", "worst_case_rows", "worst_case_label"]


def threat_models(eval_sources):
    """``eval_label -> (eps, norm)`` of the run's budgeted attacks.

    Parameters
    ----------
    eval_sources : sequence of (str, ModificationSource)
        The run's labelled evaluation sources.

    Returns
    -------
    models : dict
        One entry per attack with a budget (corruptions and minimum-norm
        attacks, which have none, are left out).

    Examples
    --------
    >>> from structnoise.evaluation.worst_case import threat_models
    >>> from structnoise.sources import FGSM, Corruption
    >>> threat_models([("fgsm", FGSM(eps=0.1)), ("rot", Corruption("rotate", 2))])
    {'fgsm': (0.1, inf)}
    """
    out = {}
    for label, source in eval_sources:
        if source.kind != "adversarial":
            continue
        try:
            out[label] = threat_model(source)
        except ValueError:
            continue  # a minimum-norm attack belongs to no budget
    return out


def worst_case_label(eps, norm):
    """The ``eval_label`` of the worst case at one threat model, e.g. ``worst_case(eps=0.1)``.

    Parameters
    ----------
    eps : float
        The budget.
    norm : float
        Its norm (``numpy.inf`` for L-infinity, which the label leaves implicit).

    Returns
    -------
    label : str

    Examples
    --------
    >>> from structnoise.evaluation.worst_case import worst_case_label
    >>> worst_case_label(0.1, float("inf")), worst_case_label(1.5, 2.0)
    ('worst_case(eps=0.1)', 'worst_case(L2, eps=1.5)')
    """
    if np.isinf(norm):
        return f"{WORST_CASE}(eps={eps:g})"
    return f"{WORST_CASE}(L{norm:g}, eps={eps:g})"


def worst_case_rows(rows, outcomes, models):
    """One network's worst-case rows from its rows and per-image outcomes.

    Parameters
    ----------
    rows : pandas.DataFrame
        The network's rows (:data:`~structnoise.evaluation.schema.COLUMNS`).
    outcomes : dict or None
        ``(eval_label, eval_protocol) -> ndarray of bool``; None when the
        network was stored without them.
    models : dict
        ``eval_label -> (eps, norm)`` (:func:`threat_models`).

    Returns
    -------
    worst : list of dict
        One row per (protocol, threat model with two or more attacks among
        the network's evaluations): the network's columns, ``eval_family``
        "worst_case", the budget as ``eval_strength``, the most draws any
        member attack saw, ``accuracy`` the fraction of images every member
        left correct and ``eval_seconds`` 0 (no attack runs again).
    notes : list of str
        Why a worst case was not computed (a member's outcomes missing).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from structnoise.evaluation import COLUMNS
    >>> from structnoise.evaluation.worst_case import worst_case_rows
    >>> base = dict.fromkeys(COLUMNS, 0) | {"eval_kind": "adversarial", "eval_protocol": "eot",
    ...                                     "n_images": 4}
    >>> rows = pd.DataFrame([base | {"eval_label": "a", "accuracy": 0.5},
    ...                      base | {"eval_label": "b", "accuracy": 0.5}])
    >>> outcomes = {("a", "eot"): np.array([1, 1, 0, 0], bool),
    ...             ("b", "eot"): np.array([0, 1, 1, 0], bool)}
    >>> worst, notes = worst_case_rows(rows, outcomes, {"a": (0.1, np.inf), "b": (0.1, np.inf)})
    >>> worst[0]["eval_label"], worst[0]["accuracy"], notes
    ('worst_case(eps=0.1)', 0.25, [])
    """
    attacks = rows[(rows.eval_kind == "adversarial") & rows.eval_label.isin(list(models))]
    worst, notes = [], []
    for protocol in dict.fromkeys(attacks.eval_protocol):
        part = attacks[attacks.eval_protocol == protocol]
        groups = {}
        for label in dict.fromkeys(part.eval_label):
            groups.setdefault(models[label], []).append(label)
        for (eps, norm), labels in groups.items():
            if len(labels) < 2:
                continue
            name = worst_case_label(eps, norm)
            missing = [lab for lab in labels
                       if outcomes is None or (lab, protocol) not in outcomes]
            if missing:
                notes.append(f"{name} under {protocol} not computed for "
                             f"{_network_text(part.iloc[0])}: no per-image outcomes for "
                             f"{', '.join(missing)} (stored by an older version); the worst "
                             "case is never taken over fewer attacks")
                continue
            correct = np.logical_and.reduce([outcomes[lab, protocol] for lab in labels])
            members = part[part.eval_label.isin(labels)]
            first = members.iloc[0].to_dict()
            worst.append({**first, "eval_family": WORST_CASE, "eval_label": name,
                          "eval_kind": "adversarial", "eval_strength": float(eps),
                          "eval_strength_unit": "eps",
                          "eot_samples": int(members.eot_samples.max()),
                          "eot_draws": int(members.eot_draws.max()),
                          "accuracy": float(correct.mean()), "eval_seconds": 0.0})
    return worst, notes


def _network_text(row):
    tr = row["trace_scale"]
    tr = "" if tr != tr else f", tr={tr:g}"
    return f"seed {row['seed']}, {row['structure']} noise from {row['noise_label']}{tr}"
