"""structnoise.evaluation.trainer: the sequential engine's steps."""

import numpy as np
import pytest
import torch
from evaluation_helpers import TinyNet, digits, make_experiment

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.evaluation.plan import NetPlan
from structnoise.evaluation.protocols import get_protocols
from structnoise.evaluation.settings import RunSettings
from structnoise.evaluation.trainer import SequentialTrainer
from structnoise.sources import GaussianNoise


def _settings(**kw):
    net = NoisyNeuralNetClassifier(TinyNet, optimizer=torch.optim.Adam, lr=1e-2,
                                   train_split=None, verbose=0)
    params = dict(net=net, layers=("act",), widths={"act": 32},
                  noise=StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                  noise_sources=(("g", GaussianNoise(0.3)),), eval_sources=(),
                  protocols=get_protocols("paper"), base_epochs=1, noise_epochs=1,
                  pair_batch_size=64)
    params.update(kw)
    return RunSettings(**params)


def test_pairs_on_a_subset_of_the_training_images_drawn_per_seed():
    X, y, _, _ = digits()
    trainer = SequentialTrainer()
    settings = _settings(pair_images=50)
    base = trainer.train_base(settings, 0, X, y)
    pairs = trainer.activation_pairs(settings, 0, 0, base, X, y)
    assert pairs["act"].shape[:2] == (50, 2)
    again = trainer.activation_pairs(settings, 0, 0, base, X, y)
    np.testing.assert_array_equal(np.asarray(pairs["act"]), np.asarray(again["act"]))
    everything = trainer.activation_pairs(_settings(), 0, 0, base, X, y)
    assert everything["act"].shape[0] == len(X)
    with pytest.raises(ValueError, match="pair_images"):
        make_experiment(pair_images=1).run(*digits())


def test_trace_scaled_isotropic_noise_needs_no_pairs():
    plan = NetPlan(0, "isotropic", 2.0, 0, "any", "any", "any", float("nan"))
    [fitter] = SequentialTrainer().fitted_noise(_settings(), plan, None).values()
    np.testing.assert_allclose(fitter.covariance_, 2.0 * np.eye(32))
