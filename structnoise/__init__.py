"""structnoise: structured noise for robust neural networks, scikit-learn style."""

__version__ = "0.1.0"

from . import sources  # noqa: E402  (also makes ``import advertorch`` work)
from .fitters import NoiseModule, StructuredNoiseFitter  # noqa: E402

__all__ = ["StructuredNoiseFitter", "NoiseModule", "sources", "__version__"]
