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

The same cut, one layer earlier, serves noise draws at evaluation: a
network whose noise starts at layer ``L`` computes the same front for every
draw, so ``k`` draws need the front once and the back ``k`` times
(:func:`split_before`, :class:`SharedFront`; the noise's hook sits in the
back and draws afresh for every row it sees). Where one layer carries the
noise, the cut can fall after it: the layer runs once in the front, its
noise is added first thing in the back (:func:`split_after`), and each draw
skips the layer (PaperCNN with full noise drawn after ``conv3``: that
convolution, in every draw of every attack step).
"""

import torch
from torch import nn

__all__ = ["split_module", "split_before", "split_after", "SharedFront"]


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


class SharedFront(nn.Module):
    """A network as ``back(front(x))``, its front deterministic: noise draws start in the back.

    ``forward`` is the network's. Where several noise draws of one batch are
    run (EOT, the noise ensemble:
    :func:`~structnoise._inference.stacked_draws`), the front runs once on
    the batch and the back once per draw, on copies of the front's output:
    the same outputs in distribution (the draws are the back's), the
    gradient through the front taken once for all of them.

    Parameters
    ----------
    front, back : torch.nn.Module
        The two parts (:func:`split_before`), sharing the network's parameters.

    Examples
    --------
    >>> import torch
    >>> from structnoise.models import PaperCNN
    >>> from structnoise.splitting import split_before
    >>> net = PaperCNN().eval()
    >>> shared = split_before(net, ["body.tanh2"])
    >>> x = torch.rand(2, 1, 28, 28)
    >>> bool(torch.allclose(shared(x), net(x)))
    True
    """

    def __init__(self, front, back):
        super().__init__()
        self.front = front
        self.back = back

    def forward(self, x):
        return self.back(self.front(x))


def split_before(module, layers):
    """``module`` cut just before the first of ``layers``, as a :class:`SharedFront`, or None.

    The cut falls after the layer that precedes the first of ``layers``
    among its siblings (:func:`split_module` with that layer), so every
    one of ``layers`` runs in the back.

    Parameters
    ----------
    module : torch.nn.Module
        The network (splittable as :func:`split_module` requires).
    layers : list of str
        The noisy layers (dotted names).

    Returns
    -------
    shared : SharedFront or None
        None when the module cannot be cut there, the first noisy layer has
        nothing before it, or a noisy layer would fall in the front.

    Examples
    --------
    >>> from structnoise.models import PaperCNN
    >>> from structnoise.splitting import split_before
    >>> net = PaperCNN()
    >>> shared = split_before(net, ["body.tanh2"])
    >>> shared.front[-1] is net.body.conv2, shared.back[0] is net.body.tanh2
    (True, True)
    """
    names = [name for name, _ in module.named_modules()]
    noisy = {id(module.get_submodule(layer)) for layer in layers if layer in names}
    if not layers or len(noisy) < len(set(layers)):
        return None
    first = min(layers, key=names.index)
    parent, _, child = first.rpartition(".")
    siblings = [name for name, _ in module.get_submodule(parent).named_children()]
    i = siblings.index(child)
    if i == 0:
        return None
    cut = f"{parent}.{siblings[i - 1]}" if parent else siblings[i - 1]
    try:
        front, back = split_module(module, cut)
    except TypeError:
        return None
    if any(id(m) in noisy for m in front.modules()) or \
            sum(id(m) in noisy for m in back.modules()) < len(noisy):
        return None
    return SharedFront(front, back)


class _SilencedFront(nn.Module):
    """A front run with its noise off (``silenced()``): its last layer's noise is the back's."""

    def __init__(self, front, silenced):
        super().__init__()
        self.front = front
        self._silenced = silenced

    def forward(self, x):
        with self._silenced():
            return self.front(x)


class _SiteNoise(nn.Module):
    """The noise a layer's forward hook adds to its output, as the first module of the back.

    The layer is held outside the module tree (its parameters are the
    front's); the hook reads its ``training`` flag, as it does when it runs
    on the layer itself.
    """

    def __init__(self, layer, hook):
        super().__init__()
        self._layer = (layer,)  # a tuple: not registered as a child
        self.hook = hook

    def forward(self, h):
        out = self.hook(self._layer[0], (h,), h)
        return h if out is None else out


def split_after(module, layer, hook, silenced):
    """``module`` cut just after its noisy ``layer``, the layer's noise added in the back.

    The front runs up to and including ``layer`` with the noise off; the
    back adds the layer's noise (``hook``, the forward hook the layer
    carries) to each row it sees, then runs the rest. Each noise draw then
    skips ``layer`` itself, and the draws are those the layer's hook makes:
    the same rows in the same order.

    Parameters
    ----------
    module : torch.nn.Module
        The network (splittable as :func:`split_module` requires).
    layer : str
        The one layer carrying noise.
    hook : callable
        ``hook(layer_module, inputs, output) -> noisy output or None``: the
        forward hook registered on ``layer``.
    silenced : callable
        A context manager factory in which that hook adds nothing.

    Returns
    -------
    shared : SharedFront or None
        None when the module cannot be cut after ``layer``.

    Examples
    --------
    >>> import contextlib, torch
    >>> from structnoise.models import PaperCNN
    >>> from structnoise.splitting import split_after
    >>> net = PaperCNN().eval()
    >>> shared = split_after(net, "body.conv3", lambda m, i, o: None, contextlib.nullcontext)
    >>> shared.front.front[-1] is net.body.conv3
    True
    >>> x = torch.rand(2, 1, 28, 28)
    >>> bool(torch.allclose(shared(x), net(x)))
    True
    """
    try:
        front, back = split_module(module, layer)
        site = module.get_submodule(layer)
    except (TypeError, AttributeError):
        return None
    return SharedFront(_SilencedFront(front, silenced), nn.Sequential(_SiteNoise(site, hook),
                                                                      back))
