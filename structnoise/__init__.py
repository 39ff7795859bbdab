"""structnoise: structured noise for robust neural networks, scikit-learn style.

Public API: :class:`StructuredNoiseFitter` (learn the noise),
:class:`ActivationPairs` (images -> paired activations),
:class:`NoisyNeuralNetClassifier` (a skorch net with the noise),
the scorers in :mod:`structnoise.scoring`, the sources in
:mod:`structnoise.sources` and the experiment protocol in
:mod:`structnoise.evaluation`.

The names are imported on first use: ``import structnoise`` is cheap, and a
command line (``python -m structnoise.evaluation --help``) answers before
torch loads. Importing :mod:`structnoise.sources` (as any source, net or
fitter does) also makes ``import advertorch`` work on modern torch.
"""

import importlib

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_EXPORTS = {
    "StructuredNoiseFitter": "fitters", "NoiseModule": "fitters",
    "ActivationPairs": "activations", "NoisyNeuralNetClassifier": "net",
}

__all__ = ["StructuredNoiseFitter", "NoiseModule", "ActivationPairs",
           "NoisyNeuralNetClassifier", "sources", "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name == "sources":
        value = importlib.import_module(".sources", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
