"""Expectation over transformation (EOT): attacking a stochastic network.

A noisy network gives a different output at every pass. An attack that sees
one draw per gradient follows the noise, not the network, and can make the
network look robust when it is not (gradient obfuscation; Athalye et al.,
2018). EOT averages ``k`` draws: :class:`EOTModel` runs them, stacked,
:class:`EOTLoss` averages their losses.
"""

import torch

from .._inference import stacked_draws

__all__ = ["EOTModel", "EOTLoss", "DEFAULT_EOT_SAMPLES"]

#: noise draws averaged per gradient or query against a stochastic network,
#: wherever the caller does not say: the scorers, the experiment's "eot"
#: protocol and the obfuscation checks (AutoAttack's "rand" version uses 20)
DEFAULT_EOT_SAMPLES = 8


class EOTModel(torch.nn.Module):
    """Expectation over transformation for a stochastic network.

    The ``eot_samples`` draws run as stacked copies of the batch, so each
    copy gets fresh noise (a CPU runs them in passes of a few hundred rows,
    where its cache is fastest; a GPU in one pass).

    Parameters
    ----------
    module : torch.nn.Module
        The (stochastic) network.
    eot_samples : int
        Number of noise draws ``k``.
    average : {"loss", "logits"}, default="loss"
        "loss": return all ``k * N`` outputs; with :class:`EOTLoss` the
        gradient is then the mean of the ``k`` single-draw loss gradients
        (the EOT of Athalye et al., 2018). "logits": return the mean of the
        ``k`` logits, for attacks that use the outputs beyond a loss.

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import EOTModel
    >>> eot = EOTModel(torch.nn.Linear(4, 3), eot_samples=5, average="logits")
    >>> eot(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, module, eot_samples, average="loss"):
        super().__init__()
        self.module = module
        self.eot_samples = int(eot_samples)
        self.average = average

    def forward(self, x):
        return stacked_draws(self.module, x, self.eot_samples,
                             mean=self.average == "logits")


class EOTLoss(torch.nn.Module):
    """Cross-entropy averaged over the ``k`` stacked outputs of :class:`EOTModel`.

    Parameters
    ----------
    eot_samples : int
        Number of noise draws ``k``.
    reduction : {"sum", "mean", "none"}, default="sum"
        Reduction over the images (advertorch's attacks use "sum").

    Examples
    --------
    >>> import torch
    >>> from structnoise.sources import EOTLoss
    >>> loss = EOTLoss(eot_samples=2)
    >>> float(loss(torch.zeros(4, 3), torch.tensor([0, 1]))) > 0
    True
    """

    def __init__(self, eot_samples, reduction="sum"):
        super().__init__()
        self.eot_samples = int(eot_samples)
        self.reduction = reduction

    def forward(self, outputs, y):
        k = self.eot_samples
        per = torch.nn.functional.cross_entropy(outputs, y.repeat(k), reduction="none")
        per = per.reshape(k, -1).mean(0)
        if self.reduction == "sum":
            return per.sum()
        if self.reduction == "mean":
            return per.mean()
        return per
