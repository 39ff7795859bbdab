"""Splitting a network at its noise site: the frozen front and the retrained back.

With the paper's ``noise_retrain="after"``, every layer up to and including
the noise site is frozen and the same for every network of a seed, so its
output on the training images can be computed once and the layers after
the site retrained on it (the stacked engine,
:mod:`structnoise.evaluation.stacked`). That needs the module cut in two at
the site. The protocol, for a module of your own: a method
``split_at(layer) -> (front, back)`` returning two modules that share the
module's parameters, with ``back(front(x))`` equal to ``module(x)`` and
``front`` ending with the output of ``layer``. The reference models
(:mod:`structnoise.models`) implement it, and any :class:`torch.nn.Sequential`
is split at one of its direct children. :func:`split_module` checks the
equality on a probe before anything relies on it.
"""

import torch
from torch import nn

__all__ = ["split_module"]


def _split_sequential(module, layer):
    names = [name for name, _ in module.named_children()]
    if layer not in names:
        return None
    i = names.index(layer)
    children = list(module.children())
    return nn.Sequential(*children[:i + 1]), nn.Sequential(*children[i + 1:])


def split_module(module, layer, probe=None):
    """``(front, back)`` of ``module`` cut after ``layer``, sharing its parameters.

    Parameters
    ----------
    module : torch.nn.Module
        The network: with a ``split_at(layer)`` method, or an
        ``nn.Sequential`` whose direct child ``layer`` is the cut.
    layer : str
        The noise site (dotted name).
    probe : torch.Tensor, default=None
        A few inputs: when given, ``back(front(probe))`` must equal
        ``module(probe)``.

    Returns
    -------
    front, back : torch.nn.Module
        The frozen part up to and including ``layer``, and the rest.

    Raises
    ------
    TypeError
        When the module cannot be split, naming what it needs.

    Examples
    --------
    >>> import torch
    >>> from structnoise.models import PaperCNN
    >>> from structnoise.splitting import split_module
    >>> net = PaperCNN()
    >>> front, back = split_module(net, "body.tanh2", probe=torch.rand(2, 1, 28, 28))
    >>> tuple(front(torch.rand(2, 1, 28, 28)).shape)
    (2, 16, 14, 14)
    """
    split = None
    if callable(getattr(module, "split_at", None)):
        split = module.split_at(layer)
    elif isinstance(module, nn.Sequential):
        split = _split_sequential(module, layer)
    if split is None:
        raise TypeError(
            f"{type(module).__name__} cannot be split at {layer!r}: the stacked engine needs "
            "a module with a split_at(layer) -> (front, back) method (back(front(x)) == "
            "module(x), both sharing the module's parameters), or an nn.Sequential whose "
            f"direct child {layer!r} is the noise site. Use engine='sequential'.")
    front, back = split
    if probe is not None:
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                whole, parts = module(probe), back(front(probe))
        finally:
            module.train(was_training)
        if whole.shape != parts.shape or not torch.allclose(whole, parts, atol=1e-5,
                                                               rtol=1e-4):
            raise TypeError(f"{type(module).__name__}.split_at({layer!r}) does not compose: "
                            "back(front(x)) differs from module(x).")
    return front, back
