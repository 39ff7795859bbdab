"""End to end on digits: Pipelines, GridSearchCV (joblib and Dask)."""

import numpy as np
import pytest
import torch
from joblib import parallel_backend
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from structnoise import ActivationPairs, NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.scoring import robust_scoring
from structnoise.sources import FGSM, Corruption


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:300], y[:300]


def _template():
    return NoisyNeuralNetClassifier(
        DigitsMLP, noise=StructuredNoiseFitter(random_state=0), noise_layers="body.2",
        max_epochs=3, lr=0.1, batch_size=64, verbose=0, train_split=None)


GRID = {"noise_scale": [0.0, 1.0],
        "noise_source": [FGSM(eps=0.1), Corruption("gaussian_noise", severity=3)],
        "noise__structure": ["full", "isotropic"]}


def _check_results(search):
    res = search.cv_results_
    assert len(res["params"]) == 8
    for key in ["mean_test_clean", "mean_test_fgsm", "rank_test_fgsm"]:
        assert key in res
    assert np.all((res["mean_test_clean"] >= 0) & (res["mean_test_clean"] <= 1))
    # the attack scorer attacks: the candidates lose accuracy under FGSM (on
    # average: 3 epochs leave some candidates near chance, where one may not)
    assert np.mean(res["mean_test_fgsm"]) < np.mean(res["mean_test_clean"])
    # the ranks follow the scores
    best = np.argmin(res["rank_test_fgsm"])
    assert res["mean_test_fgsm"][best] == np.max(res["mean_test_fgsm"])
    assert search.best_estimator_.noise_


def test_pipeline_pairs_noise_logistic(digits):
    X, y = digits
    torch.manual_seed(0)
    net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=5, lr=0.1, verbose=0,
                                   train_split=None).fit(X, y)
    pipe = make_pipeline(ActivationPairs(net, layers="body.2", source=FGSM(eps=0.1)),
                         StructuredNoiseFitter(random_state=0), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (300,) and (pred == y).mean() > 0.5


@pytest.mark.slow
def test_grid_search_joblib(digits):
    X, y = digits
    search = GridSearchCV(_template(), GRID, cv=2, n_jobs=2, refit="fgsm",
                          scoring=robust_scoring({"fgsm": FGSM(eps=0.1)}, eot_samples=2))
    search.fit(X, y)
    _check_results(search)


@pytest.mark.slow
def test_grid_search_on_dask(digits):
    distributed = pytest.importorskip("distributed", reason="the dask extra")
    X, y = digits
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        # a real cluster: distributed.Client("tcp://scheduler:8786") instead
        search = GridSearchCV(_template(), GRID, cv=2, refit="fgsm",
                              scoring=robust_scoring({"fgsm": FGSM(eps=0.1)}, eot_samples=2))
        with parallel_backend("dask"):
            search.fit(X, y)
    _check_results(search)
