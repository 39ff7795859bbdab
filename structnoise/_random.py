"""Seeds derived from a base seed and a key: one helper for the whole package.

Every stochastic part of an experiment (a layer's noise, a network's
training, an attack's random start) gets its own seed from ``derive_seed``,
so results do not depend on the order or the process in which they run.
"""

import hashlib
from numbers import Integral

from sklearn.utils import check_random_state

__all__ = ["derive_seed", "layer_seeds"]


def derive_seed(base, *keys):
    """A 31-bit seed from ``base`` and any printable ``keys`` (stable across runs).

    Parameters
    ----------
    base : int
        The base seed.
    *keys : object
        What the seed is for (their ``repr`` is hashed).

    Returns
    -------
    seed : int
        In ``[0, 2**31 - 1)``.

    Examples
    --------
    >>> from structnoise._random import derive_seed
    >>> derive_seed(0, "net", "full") == derive_seed(0, "net", "full")
    True
    >>> derive_seed(0, "net", "full") != derive_seed(1, "net", "full")
    True
    """
    text = repr((int(base),) + tuple(keys)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") % (2**31 - 1)


def layer_seeds(random_state, layers):
    """One seed per layer from a fitter's ``random_state`` (None stays None).

    Parameters
    ----------
    random_state : int, RandomState or None
        The fitter's ``random_state``.
    layers : list of str
        Layer names.

    Returns
    -------
    seeds : dict
        layer -> int seed, or layer -> None when ``random_state`` is None.

    Examples
    --------
    >>> from structnoise._random import layer_seeds
    >>> seeds = layer_seeds(0, ["body.1", "body.4"])
    >>> seeds["body.1"] != seeds["body.4"]
    True
    """
    if random_state is None:
        return {name: None for name in layers}
    if isinstance(random_state, Integral):
        return {name: derive_seed(int(random_state), "layer", name) for name in layers}
    base = int(check_random_state(random_state).randint(0, 2**31 - 1))
    return {name: derive_seed(base, "layer", name) for name in layers}
