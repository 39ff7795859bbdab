"""skorch callbacks of structnoise: when a noisy network's noise phase starts."""

from numbers import Integral

from skorch.callbacks import Callback

__all__ = ["LearnNoise"]


class LearnNoise(Callback):
    """Start the noise phase of a :class:`~structnoise.NoisyNeuralNetClassifier`.

    The phase: learn the noise from the net's ``noise_source`` (when its
    fitters are not fitted), install it, and apply ``noise_retrain``. It
    starts after ``at`` clean warm-up epochs, at the end of that epoch; with
    ``at=0`` before the first one; when training ends sooner, at its end (the
    noise is then fitted post hoc on the trained network). The noise is
    always learned on the training split that skorch hands to the epoch
    (``dataset_train``): the validation split, and under cross-validation the
    test fold, never reach it.

    The net adds one by default, named ``"learn_noise"``: change it as any
    skorch callback, e.g. ``net.set_params(callbacks__learn_noise__at=3)``.
    Like skorch's ``Freezer`` or ``LoadInitState`` it acts through the net's
    public methods (:meth:`~structnoise.NoisyNeuralNetClassifier.noise_phase_pending`,
    :meth:`~structnoise.NoisyNeuralNetClassifier.begin_noise_phase`); the
    net calls the same code itself when callbacks are disabled.

    Parameters
    ----------
    at : int >= 0 or None, default=None
        Clean epochs before the phase. None: the net's ``noise_warmup_epochs``
        (see :meth:`~structnoise.NoisyNeuralNetClassifier.warmup_epochs`).

    Examples
    --------
    >>> from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
    >>> from structnoise.callbacks import LearnNoise
    >>> from structnoise.datasets import load_digits_images
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.sources import GaussianNoise
    >>> X, y = load_digits_images()
    >>> net = NoisyNeuralNetClassifier(
    ...     DigitsMLP, noise=StructuredNoiseFitter(random_state=0),
    ...     noise_source=GaussianNoise(0.2, random_state=0), noise_layers="body.2",
    ...     callbacks__learn_noise__at=1, max_epochs=3, lr=0.1, train_split=None,
    ...     verbose=0)
    >>> _ = net.fit(X[:200], y[:200])
    >>> net.noise_phase_started_
    True
    """

    def __init__(self, at=None):
        self.at = at

    def warmup_epochs(self, net):
        """The clean epochs before the phase, for ``net``."""
        if self.at is None:
            return net.warmup_epochs()
        if not isinstance(self.at, Integral) or isinstance(self.at, bool) or self.at < 0:
            raise ValueError(f"LearnNoise(at=...) must be an integer >= 0; got {self.at!r}.")
        return int(self.at)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if net.noise_phase_pending() and self.warmup_epochs(net) == 0:
            # nothing to wait for: the phase starts with training
            _begin_on_training_split(net, X, y)

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        if net.noise_phase_pending() and len(net.history) >= self.warmup_epochs(net):
            net.begin_noise_phase(dataset_train)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # training shorter than the warm-up: fit the noise on the trained
        # network (post-hoc noise), still on the training split only
        if net.noise_phase_pending() and X is not None:
            _begin_on_training_split(net, X, y)


def _begin_on_training_split(net, X, y):
    """Start the phase on the training split of ``(X, y)``, made only when a noise is learned."""
    dataset_train = net.get_split_datasets(X, y)[0] if net.noise_needs_learning() else None
    net.begin_noise_phase(dataset_train)
