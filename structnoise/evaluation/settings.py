"""What the work of one network needs to know: a small frozen record.

The jobs (train a base network, train and evaluate a group of networks) run
in other processes under joblib. They take this record, not the whole
:class:`~structnoise.evaluation.Experiment`, so each job's signature shows
everything it reads.
"""

from dataclasses import dataclass

__all__ = ["RunSettings"]


@dataclass(frozen=True)
class RunSettings:
    """The settings of one run, validated by the experiment before any training.

    Parameters
    ----------
    net : NoisyNeuralNetClassifier
        The unfitted template (module, optimizer, device, ``noise_ensemble``).
    layers : tuple of str
        The noise sites.
    widths : dict
        Layer -> flattened width, measured on the untrained module.
    noise : StructuredNoiseFitter
        The fitters' template.
    noise_sources : tuple of (label, ModificationSource)
        Where the noise is learned from.
    eval_sources : tuple of (label, ModificationSource)
        What every network is evaluated on (clean is added).
    protocols : tuple of Protocol
        The evaluation protocols.
    base_epochs, noise_epochs : int
        Epochs of the base network and of the retraining.
    pair_batch_size : int
        Images per batch when collecting activation pairs.
    pair_images : int or None
        Training images the pairs are collected on (None: all).
    augmentations : tuple of (ModificationSource, float)
        Training-time augmentations of the baselines.
    checks : dict or None
        The obfuscation checks' settings (``n_images`` and ``run_checks``'s).

    Examples
    --------
    >>> from structnoise.evaluation.protocols import get_protocols
    >>> from structnoise.evaluation.settings import RunSettings
    >>> from structnoise.sources import FGSM
    >>> settings = RunSettings(net=None, layers=("body.2",), widths={"body.2": 32}, noise=None,
    ...                        noise_sources=(("fgsm", FGSM(eps=0.1)),), eval_sources=(),
    ...                        protocols=get_protocols("paper"), base_epochs=1,
    ...                        noise_epochs=1, pair_batch_size=64)
    >>> settings.noise_sources[0][0]
    'fgsm'
    """

    net: object
    layers: tuple
    widths: dict
    noise: object
    noise_sources: tuple
    eval_sources: tuple
    protocols: tuple
    base_epochs: int
    noise_epochs: int
    pair_batch_size: int
    pair_images: int = None
    augmentations: tuple = ()
    checks: dict = None

    def make_net(self, **params):
        """A fresh, quiet clone of the net template with ``params`` set (template untouched)."""
        from sklearn.base import clone

        net = clone(self.net)
        net.set_params(verbose=0, **params)
        return net
