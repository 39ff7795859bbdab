import os

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# two cores: keep torch from oversubscribing when pytest and BLAS share them
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def rng():
    return np.random.RandomState(0)


# the evaluation tests share one small experiment (tests/evaluation_helpers.py)
@pytest.fixture(scope="session")
def digits_data():
    from evaluation_helpers import digits

    return digits()


@pytest.fixture(scope="session")
def small_run(digits_data):
    from evaluation_helpers import make_experiment

    exp = make_experiment()
    return exp, exp.run(*digits_data)
