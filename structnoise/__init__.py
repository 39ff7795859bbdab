"""structnoise: structured noise for robust neural networks, scikit-learn style.

Public API: :class:`StructuredNoiseFitter` (learn the noise),
:class:`ActivationPairs` (images -> paired activations),
:class:`NoisyNeuralNetClassifier` (a skorch net with the noise),
the scorers in :mod:`structnoise.scoring` and the sources in
:mod:`structnoise.sources`.
"""

__version__ = "0.1.0"

from . import sources  # noqa: E402  (also makes ``import advertorch`` work)
from .activations import ActivationPairs  # noqa: E402
from .fitters import NoiseModule, StructuredNoiseFitter  # noqa: E402
from .net import NoisyNeuralNetClassifier  # noqa: E402

__all__ = ["StructuredNoiseFitter", "NoiseModule", "ActivationPairs",
           "NoisyNeuralNetClassifier", "sources", "__version__"]
