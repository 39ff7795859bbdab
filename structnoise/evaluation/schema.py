"""The rows' schema: columns, the sentinel values, and how a source becomes columns.

Every part of the evaluation (plan, store, report, views) reads these names
from here, so a sentinel is spelled once. A missing number (no trace scale,
no strength) is NaN in the rows, whatever the input said (None or NaN).
"""

import math

__all__ = ["COLUMNS", "CHECK_COLUMNS", "NOISE_FREE", "ANY_SOURCE", "STANDARD", "CLEAN",
           "WORST_CASE", "MISSING", "as_number", "key_text", "describe_source", "default_label"]

#: the columns of an experiment's results, in order
COLUMNS = ["seed", "noise_family", "noise_label", "noise_kind", "noise_strength", "structure",
           "trace_scale", "noise_layers", "train_family", "train_strength", "train_ratio",
           "eval_family", "eval_label", "eval_kind", "eval_strength", "eval_strength_unit",
           "eval_protocol", "eot_samples", "eot_draws", "ensemble", "n_images", "accuracy",
           "train_seconds", "eval_seconds"]

#: the columns of the obfuscation-check records
CHECK_COLUMNS = ["seed", "noise_family", "noise_label", "structure", "trace_scale", "ensemble",
                 "check", "passed", "detail", "accuracies", "eot_samples"]

#: ``noise_family`` (and label) of the network without noise
NOISE_FREE = "none"
#: ``noise_family`` (and label) of trace-scaled isotropic noise, which no source shapes
ANY_SOURCE = "any"
#: ``train_family`` of a network trained on clean images only
STANDARD = "standard"
#: ``eval_family`` (and kind and label) of the clean images
CLEAN = "clean"
#: ``eval_family`` of the worst case over the attacks of one budget, image by image
#: (:mod:`~structnoise.evaluation.worst_case`)
WORST_CASE = "worst_case"
#: the one value of a missing number in the rows
MISSING = float("nan")


def as_number(value):
    """``value`` as a float, None and NaN both becoming :data:`MISSING`.

    Parameters
    ----------
    value : float, int or None
        A number of the rows (a strength, a trace scale).

    Returns
    -------
    number : float
        NaN when missing.

    Examples
    --------
    >>> from structnoise.evaluation.schema import as_number
    >>> as_number(None) != as_number(None), as_number(2)
    (True, 2.0)
    """
    if value is None:
        return MISSING
    value = float(value)
    return MISSING if math.isnan(value) else value


def key_text(value):
    """A number as text for keys: missing values (None, NaN) are all ``"nan"``.

    Parameters
    ----------
    value : float, int or None
        A number of a key.

    Returns
    -------
    text : str
        Its ``repr`` as a float, or ``"nan"``.

    Examples
    --------
    >>> from structnoise.evaluation.schema import key_text
    >>> key_text(None), key_text(float("nan")), key_text(0.1)
    ('nan', 'nan', '0.1')
    """
    value = as_number(value)
    return "nan" if math.isnan(value) else repr(value)


def describe_source(source, label=None):
    """The columns a source gives a row: family, kind, strength, its unit and a label.

    Parameters
    ----------
    source : ModificationSource or None
        None describes the clean images.
    label : str, default=None
        The name the experiment knows the source by (the key of a dict of
        sources); default: :func:`default_label`.

    Returns
    -------
    description : dict
        ``family``, ``kind``, ``strength`` (NaN when the source has none),
        ``strength_unit`` (from :meth:`ModificationSource.describe`) and
        ``label``.

    Examples
    --------
    >>> from structnoise.evaluation import describe_source
    >>> from structnoise.sources import Corruption, LinfPGD
    >>> describe_source(LinfPGD(eps=0.1))["strength"]
    0.1
    >>> describe_source(Corruption("rotate", strength=2.0))["strength_unit"]
    'strength'
    >>> describe_source(LinfPGD(eps=0.1, nb_iter=40), label="pgd40")["label"]
    'pgd40'
    """
    if source is None:
        return {"family": CLEAN, "kind": CLEAN, "strength": MISSING, "strength_unit": "",
                "label": CLEAN}
    d = dict(source.describe())
    missing = {"family", "kind", "strength", "strength_unit"} - set(d)
    if missing:
        raise ValueError(f"{type(source).__name__}.describe() must return family, kind, "
                         f"strength and strength_unit; it lacks {sorted(missing)}.")
    d["strength"] = as_number(d["strength"])
    d["label"] = str(label) if label is not None else default_label(d)
    return d


def default_label(description):
    """The label of an unnamed source: its family and strength, e.g. ``FGSM(eps=0.1)``.

    Two unnamed sources of one family and strength get the same label; name
    them (a dict of sources) to compare them in one experiment.

    Parameters
    ----------
    description : dict
        ``family``, ``strength`` and ``strength_unit`` of a source.

    Returns
    -------
    label : str
        The family alone when the strength is missing.

    Examples
    --------
    >>> from structnoise.evaluation.schema import default_label
    >>> default_label({"family": "rotate", "strength": 2.0, "strength_unit": "strength"})
    'rotate(strength=2)'
    """
    strength = as_number(description["strength"])
    if math.isnan(strength):
        return str(description["family"])
    return f"{description['family']}({description['strength_unit']}={strength:g})"
