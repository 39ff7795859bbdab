"""skorch's own NeuralNetClassifier tests, run against NoisyNeuralNetClassifier.

skorch ships its tests inside the package (``skorch/tests``): the classifier
test class (``test_classifier.TestNeuralNet``) runs here with our class
substituted, once without noise and
once with a pre-fitted noise at the toy module's first Linear layer
(``noise_mode="train"``, so predictions are deterministic as the tests
expect). Intentional differences are listed in ``INTENTIONAL`` with the
reason; every other skorch test must pass.
"""

import numpy as np
import pytest
import torch

# skorch's test classes use module-scoped fixtures as methods (pytest deprecates it)
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning")

skorch_tests = pytest.importorskip("skorch.tests.test_classifier")
from skorch.tests.conftest import (  # noqa: E402,F401 - skorch's fixtures, used by its tests
    classifier_data,
    classifier_module,
    seeds_fixed,
)

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter  # noqa: E402

#: skorch tests whose expectation we change on purpose -> why
INTENTIONAL = {
    "test_pass_empty_classes_raises": "the error message names our class, not "
                                      "NeuralNetClassifier",
    "test_error_when_classes_could_not_be_inferred": "the error message names our class",
}


class _Plain(NoisyNeuralNetClassifier):
    """Our class with skorch's classifier defaults, no noise."""

    def __init__(self, module, *args, criterion=torch.nn.NLLLoss, **kwargs):
        super().__init__(module, *args, criterion=criterion, **kwargs)


def _fitted_noise(width=10):
    rng = np.random.RandomState(0)
    return StructuredNoiseFitter(random_state=0).fit(rng.randn(200, width) * 0.1)


class _WithNoise(_Plain):
    """Our class with a pre-fitted noise at the first Linear layer (train mode only)."""

    def __init__(self, module, *args, noise=None, noise_layers="sequential.0",
                 noise_mode="train", **kwargs):
        from sklearn.frozen import FrozenEstimator

        noise = FrozenEstimator(_fitted_noise()) if noise is None else noise
        super().__init__(module, *args, noise=noise, noise_layers=noise_layers,
                         noise_mode=noise_mode, **kwargs)


def _skip_intentional(request):
    name = request.node.originalname or request.node.name
    if name in INTENTIONAL:
        pytest.skip(f"intentional difference: {INTENTIONAL[name]}")


class TestSkorchClassifierSuitePlain(skorch_tests.TestNeuralNet):
    @pytest.fixture(autouse=True)
    def _intentional(self, request):
        _skip_intentional(request)

    @pytest.fixture(scope="module")
    def net_cls(self):
        return _Plain


class TestSkorchClassifierSuiteWithNoise(skorch_tests.TestNeuralNet):
    @pytest.fixture(autouse=True)
    def _intentional(self, request):
        _skip_intentional(request)

    @pytest.fixture(scope="module")
    def net_cls(self):
        return _WithNoise

    def test_noise_is_installed(self, net_fit):
        assert "sequential.0" in net_fit.noise_
        assert len(net_fit.module_.sequential[0]._forward_hooks) == 1

