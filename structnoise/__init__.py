"""structnoise: structured noise for robust neural networks, scikit-learn style."""

__version__ = "0.1.0"

from .fitters import StructuredNoiseFitter  # noqa: E402

__all__ = ["StructuredNoiseFitter", "__version__"]
