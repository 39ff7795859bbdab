"""Evaluation protocols: how an attack is configured against a network, and how it is scored.

A protocol is an object with a ``name`` (the ``eval_protocol`` column), a
:meth:`~Protocol.attack` method that says how an attack source is set up
against a network (its EOT draws per gradient or query, and the module it
attacks), and an :meth:`~Protocol.accuracy` method. Clean and naturalistic
evaluations take no gradient: they are measured once per network and
reported under every protocol. The registry :data:`PROTOCOLS` maps names to
classes; an :class:`Experiment <structnoise.evaluation.Experiment>` takes
names or instances, as scikit-learn's ``scoring`` takes names or callables.

``"paper"``
    the authors' protocol: every gradient or query of an attack sees one
    noise draw of the bare module, and the accuracy is that of the net's
    ``noise_ensemble``-draw prediction;
``"eot"``
    honest evaluation (AutoAttack's "rand" version): each gradient or query
    averages ``eot_samples`` noise draws, and the accuracy is that of the
    ensemble on fresh draws.

A deterministic network gets one draw under every protocol, so protocols
that configure an attack the same way share its measurement.
"""

import copy
from dataclasses import dataclass

import numpy as np

from ..sources.eot import DEFAULT_EOT_SAMPLES

__all__ = ["Protocol", "PaperProtocol", "EOTProtocol", "PROTOCOLS", "AttackSetup",
           "get_protocols"]


@dataclass(frozen=True)
class AttackSetup:
    """How one attack runs under a protocol: the configured source and its target.

    Parameters
    ----------
    source : ModificationSource
        A copy of the attack with the protocol's ``eot_samples``.
    target : torch.nn.Module
        The module the attack's gradients or queries go to.
    eot_samples : int
        Noise draws averaged per gradient or query (the ``eot_samples`` column).
    eot_draws : int
        Draws the attack saw per gradient or query (the ``eot_draws`` column).

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.protocols import PaperProtocol
    >>> from structnoise.sources import FGSM
    >>> class Net:
    ...     module_ = torch.nn.Linear(4, 2)
    >>> setup = PaperProtocol().attack(FGSM(eps=0.1), Net(), stochastic=True)
    >>> setup.eot_samples, setup.source.eot_samples
    (1, 1)
    """

    source: object
    target: object
    eot_samples: int
    eot_draws: int

    def signature(self):
        """What makes two setups the same measurement (they are then run once)."""
        return id(self.target), self.eot_samples


class Protocol:
    """An evaluation protocol (subclass it and register it in :data:`PROTOCOLS`).

    Subclasses set ``name`` and implement :meth:`attack`; :meth:`correct`
    (which images the net gets right) defaults to the net's prediction (its
    noise ensemble), and :meth:`accuracy` is its mean.

    Examples
    --------
    >>> from structnoise.evaluation.protocols import EOTProtocol, Protocol
    >>> class ManyDraws(Protocol):
    ...     name = "eot32"
    ...     def attack(self, source, net, stochastic):
    ...         return EOTProtocol(32).attack(source, net, stochastic)
    >>> ManyDraws().name
    'eot32'
    """

    name = None

    def attack(self, source, net, stochastic):
        """The :class:`AttackSetup` of ``source`` against ``net``."""
        raise NotImplementedError

    def correct(self, net, X_adv, y):
        """Which attacked images ``net`` (its prediction, the noise ensemble) gets right.

        The per-image outcomes an experiment stores: the worst case over
        attacks combines them image by image.

        Parameters
        ----------
        net : NoisyNeuralNetClassifier
            The trained network.
        X_adv : torch.Tensor
            The attacked images.
        y : array-like
            Their labels.

        Returns
        -------
        correct : ndarray of bool, shape (n_images,)
        """
        return np.asarray(net.predict(X_adv.cpu().numpy())) == np.asarray(y)

    def accuracy(self, net, X_adv, y):
        """Accuracy of ``net`` on the attacked images: the mean of :meth:`correct`."""
        return float(np.mean(self.correct(net, X_adv, y)))

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), tuple(sorted(vars(self).items()))))


class PaperProtocol(Protocol):
    """The authors' protocol: one noise draw of the bare module per gradient or query.

    Examples
    --------
    >>> from structnoise.evaluation.protocols import PaperProtocol
    >>> PaperProtocol().name
    'paper'
    """

    name = "paper"

    def attack(self, source, net, stochastic):
        configured = copy.deepcopy(source).set_params(eot_samples=1)
        return AttackSetup(configured, _target(net), 1, 1)


class EOTProtocol(Protocol):
    """Honest evaluation: each gradient or query averages ``eot_samples`` noise draws.

    Parameters
    ----------
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        Draws per gradient or query against a stochastic network (a
        deterministic one gets one: every draw is the same).

    Examples
    --------
    >>> from structnoise.evaluation.protocols import EOTProtocol
    >>> EOTProtocol(eot_samples=4)
    EOTProtocol(eot_samples=4)
    """

    name = "eot"

    def __init__(self, eot_samples=DEFAULT_EOT_SAMPLES):
        self.eot_samples = eot_samples

    def attack(self, source, net, stochastic):
        k = int(self.eot_samples) if stochastic else 1
        configured = copy.deepcopy(source).set_params(eot_samples=k)
        return AttackSetup(configured, _target(net), k, k)


def _target(net):
    """The bare module the attacks see, one draw per pass (its front computed once for k).

    :attr:`~structnoise.NoisyNeuralNetClassifier.draws_module_` where the net
    has it (the same object for every protocol: deterministic nets share
    their measurement), else ``module_``.
    """
    if isinstance(getattr(type(net), "draws_module_", None), property):
        return net.draws_module_
    return net.module_


#: protocol name -> class (constructed with ``eot_samples`` when it takes it)
PROTOCOLS = {"paper": PaperProtocol, "eot": EOTProtocol}


def get_protocols(protocols, eot_samples=DEFAULT_EOT_SAMPLES):
    """Protocol objects from names or instances (validated, before any work).

    Parameters
    ----------
    protocols : str, Protocol or sequence of them
        Names from :data:`PROTOCOLS` or :class:`Protocol` instances.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        Given to the protocols built from names that take it.

    Returns
    -------
    protocols : tuple of Protocol
        In the order given.

    Examples
    --------
    >>> from structnoise.evaluation.protocols import get_protocols
    >>> [p.name for p in get_protocols(("paper", "eot"))]
    ['paper', 'eot']
    """
    if isinstance(protocols, (str, Protocol)):
        protocols = (protocols,)
    out = []
    for p in protocols:
        if isinstance(p, Protocol):
            if not isinstance(p.name, str) or not p.name:
                raise ValueError(f"A protocol needs a name; {p!r} has none.")
            out.append(p)
        elif isinstance(p, str) and p in PROTOCOLS:
            cls = PROTOCOLS[p]
            out.append(cls(eot_samples=eot_samples) if cls is EOTProtocol else cls())
        else:
            raise ValueError(f"protocols must be drawn from {tuple(PROTOCOLS)} or be Protocol "
                             f"instances; got {p!r}.")
    names = [p.name for p in out]
    if not out or len(set(names)) < len(names):
        raise ValueError(f"protocols must be non-empty with distinct names; got {names}.")
    return tuple(out)
