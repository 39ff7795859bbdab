"""Seeds derived from a base seed and a key: one helper for the whole package.

Every stochastic part of an experiment (a layer's noise, a network's
training, an attack's random start) gets its own seed from ``derive_seed``,
so results do not depend on the order or the process in which they run.
"""

import contextlib
import hashlib
from numbers import Integral

import torch
from sklearn.base import clone
from sklearn.utils import check_random_state

__all__ = ["block_seed", "derive_seed", "layer_seeds", "scoped_seed", "seed_of", "torch_seeded"]


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


def seeded_clone(estimator, seed):
    """A clone of ``estimator`` with ``random_state=seed`` when it takes one.

    Parameters
    ----------
    estimator : estimator
        A scikit-learn-style estimator (a modification source, say).
    seed : int
        The seed (:func:`derive_seed` names what it is for).

    Returns
    -------
    clone : estimator
        Unfitted; the estimator itself is left as it is.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from structnoise._random import seeded_clone
    >>> from structnoise.sources import Corruption
    >>> seeded_clone(Corruption("rotate", strength=1.0), 3).random_state
    3
    >>> seeded_clone(StandardScaler(), 3).get_params() == StandardScaler().get_params()
    True
    """
    estimator = clone(estimator)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    return estimator


def seed_of(random_state):
    """An int seed from a ``random_state`` (None stays None).

    An int is used as it is; a ``RandomState`` instance gives one draw.

    Parameters
    ----------
    random_state : int, RandomState or None
        A scikit-learn ``random_state``.

    Returns
    -------
    seed : int or None
        The seed.

    Examples
    --------
    >>> from structnoise._random import seed_of
    >>> seed_of(7), seed_of(None)
    (7, None)
    """
    if random_state is None:
        return None
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def block_seed(base, index):
    """The seed of block ``index`` of images under the seed ``base``.

    Sources that draw random numbers per batch seed fixed blocks of images
    instead, so their output does not depend on ``batch_size``. The first
    block keeps ``base`` itself: a call on at most one block gives what one
    generator seeded with ``base`` gives.

    Parameters
    ----------
    base : int
        The source's seed.
    index : int
        The block's position.

    Returns
    -------
    seed : int
        The block's seed.

    Examples
    --------
    >>> from structnoise._random import block_seed
    >>> block_seed(3, 0), block_seed(3, 1) != 3
    (3, True)
    """
    return int(base) if index == 0 else derive_seed(int(base), "block", index)


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
    base = seed_of(random_state)
    if base is None:
        return {name: None for name in layers}
    return {name: derive_seed(base, "layer", name) for name in layers}


@contextlib.contextmanager
def torch_seeded(seed, device):
    """Seed torch's default generator of ``device`` inside the block only.

    For libraries that draw from the global generator (advertorch's random
    start). The state is saved and restored, like ``torch.random.fork_rng``
    for the one generator at stake; ``torch.manual_seed`` would also seed
    every other device type and, on a machine without CUDA, record a stack
    trace for its lazy CUDA seeding: about 0.5 ms a call on 2 cores, paid per
    seeded block of images. ``seed=None`` leaves the generators alone.
    """
    if seed is None:
        yield
        return
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        generator = torch.cuda.default_generators[index]
    else:
        generator = torch.default_generator
    state = generator.get_state()
    generator.manual_seed(int(seed))
    try:
        yield
    finally:
        generator.set_state(state)


@contextlib.contextmanager
def scoped_seed(seed, device="cpu"):
    """Seed torch's CPU generator, and ``device``'s when it is another, inside the block only.

    Everything torch draws from its default generators in the block (a
    DataLoader's shuffle, ``reset_parameters``, a noise draw) follows
    ``seed``; the generators are restored on exit, so the caller's global
    stream is neither seeded nor advanced. Inside, the draws are those that
    ``torch.manual_seed(seed)`` would give.

    Examples
    --------
    >>> import torch
    >>> from structnoise._random import scoped_seed
    >>> with scoped_seed(0):
    ...     a = torch.rand(2)
    >>> with scoped_seed(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    device = torch.device(device)
    with torch_seeded(seed, "cpu"):
        if device.type == "cuda":
            with torch_seeded(seed, device):
                yield
        else:
            yield
