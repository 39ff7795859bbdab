"""structnoise.evaluation.pricing: the retraining is priced at the stack the run makes."""

import numpy as np
import pytest
import torch

from structnoise import NoisyNeuralNetClassifier
from structnoise.evaluation import Experiment
from structnoise.evaluation.presets import _digits28
from structnoise.evaluation.pricing import STACKED_SPEEDUP, Calibration, stacked_speedup
from structnoise.models import PaperCNN
from structnoise.sources import GaussianNoise


def test_larger_stacks_are_priced_faster_up_to_the_measured_sizes():
    sizes = [1, 11, 16, 22, 33, 66]
    speed = [stacked_speedup(n) for n in sizes]
    assert speed[0] == speed[1] == STACKED_SPEEDUP
    assert all(a <= b for a, b in zip(speed, speed[1:], strict=False))
    assert speed[-1] == speed[-2] == pytest.approx(STACKED_SPEEDUP * 476 / 413)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_the_price_uses_one_stack_of_every_seed_or_one_per_seed_with_jobs(n_jobs):
    data = _digits28(200, 20)()
    net = NoisyNeuralNetClassifier(PaperCNN, optimizer=torch.optim.Adam, lr=1e-3, batch_size=64,
                                   train_split=None, noise_ensemble=2, verbose=0)
    exp = Experiment(net, "body.tanh2", [GaussianNoise(0.3)], [GaussianNoise(0.3)],
                     protocols=("paper",), seeds=(0, 1, 2), base_epochs=1, noise_epochs=2,
                     engine="stacked", n_jobs=n_jobs, verbose=0)
    cal = Calibration(train=1e-3, gradient=1e-3, forward=1e-4, seconds=0.0)
    price = exp.price(*data, calibration=cal).set_index("phase")
    networks = int(price.loc["retraining", "count"])
    assert networks == 3 * 4  # none, full, diagonal, isotropic per seed
    stack = networks if n_jobs == 1 else networks // 3
    expected = networks * 2 * 200 * cal.train / stacked_speedup(stack)
    np.testing.assert_allclose(price.loc["retraining", "seconds"], expected)
