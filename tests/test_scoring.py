import numpy as np
import pytest
import torch
from sklearn.model_selection import cross_validate

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.scoring import (
    DEFAULT_EOT_SAMPLES,
    RobustScorer,
    robust_scoring,
    robustness_report,
)
from structnoise.sources import FGSM, Corruption, GaussianNoise, LinfPGD


@pytest.fixture(scope="module")
def data():
    X, y = load_digits_images()
    return X[:360], y[:360]


@pytest.fixture(scope="module")
def noisy_net(data):
    X, y = data
    torch.manual_seed(0)
    return NoisyNeuralNetClassifier(
        DigitsMLP, noise=StructuredNoiseFitter(random_state=0), noise_source=FGSM(eps=0.1),
        noise_layers="body.2", max_epochs=8, lr=0.1, batch_size=32, verbose=0,
        train_split=None).fit(X, y)


def test_scorer_equals_manual_accuracy(data):
    X, y = data
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    src = Corruption("gaussian_blur", 2)
    manual = float((model(src.generate(None, torch.from_numpy(X))).argmax(1).numpy() == y).mean())
    assert RobustScorer(src)(model, X, y) == pytest.approx(manual)
    assert RobustScorer(None)(model, X, y) == pytest.approx(
        float((model(torch.from_numpy(X)).argmax(1).numpy() == y).mean()))


def test_eot_used_for_stochastic_net(noisy_net, data, monkeypatch):
    X, y = data
    seen = []
    original = LinfPGD.generate

    def spy(self, model, X, y=None):
        seen.append(self.eot_samples)
        return original(self, model, X, y)

    monkeypatch.setattr(LinfPGD, "generate", spy)
    RobustScorer(LinfPGD(eps=0.1, nb_iter=2))(noisy_net, X[:20], y[:20])
    noisy_net.set_params(noise_scale=0.0)
    RobustScorer(LinfPGD(eps=0.1, nb_iter=2))(noisy_net, X[:20], y[:20])
    noisy_net.set_params(noise_scale=1.0)
    RobustScorer(LinfPGD(eps=0.1, nb_iter=2), eot_samples=3)(noisy_net, X[:20], y[:20])
    assert seen == [DEFAULT_EOT_SAMPLES, 1, 3]


def test_robust_scoring_in_cross_validate(data):
    X, y = data
    net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=4, lr=0.1, verbose=0, train_split=None)
    scores = cross_validate(net, X, y, cv=2, scoring=robust_scoring(
        {"fgsm": FGSM(eps=0.1), "noise": GaussianNoise(0.2, random_state=0)}))
    for key in ["test_clean", "test_fgsm", "test_noise"]:
        assert len(scores[key]) == 2 and np.all((scores[key] >= 0) & (scores[key] <= 1))
    assert np.mean(scores["test_fgsm"]) <= np.mean(scores["test_clean"])


def test_robustness_report(noisy_net, data):
    X, y = data
    report = robustness_report(noisy_net, X[:60], y[:60],
                               [FGSM(eps=0.1), Corruption("contrast", 3)], n_repeats=3)
    assert list(report["kind"]) == ["clean", "adversarial", "naturalistic"]
    assert list(report["eot_samples"]) == [1, DEFAULT_EOT_SAMPLES, 1]
    assert (report["accuracy_std"] >= 0).all() and (report["n_repeats"] == 3).all()
    assert report.loc[1, "params"]["eps"] == 0.1


def test_robustness_report_numbers_are_the_accuracies(data):
    # a deterministic network: every repeat gives the same accuracy, which
    # must be the accuracy on the source's images computed by hand
    X, y = data
    torch.manual_seed(0)
    net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=4, lr=0.1, verbose=0,
                                   train_split=None).fit(X, y)
    blur = Corruption("gaussian_blur", 3)
    fgsm = FGSM(eps=0.1)
    report = robustness_report(net, X[:90], y[:90], [fgsm, blur], n_repeats=2)
    expected = [(net.predict(X[:90]) == y[:90]).mean(),
                (net.predict(fgsm.generate(net, X[:90], y[:90])) == y[:90]).mean(),
                (net.predict(blur.generate(None, X[:90])) == y[:90]).mean()]
    np.testing.assert_allclose(report["accuracy_mean"], expected)
    assert (report["accuracy_std"] == 0).all()
    assert report.loc[1, "accuracy_mean"] < report.loc[0, "accuracy_mean"]


def test_bad_arguments(data):
    with pytest.raises(TypeError, match="structnoise source"):
        RobustScorer("fgsm")
    with pytest.raises(ValueError, match="eot_samples"):
        RobustScorer(FGSM(), eot_samples=0)
    with pytest.raises(ValueError, match="reserved"):
        robust_scoring({"clean": FGSM()})
    X, y = data
    with pytest.raises(ValueError, match="labels"):
        RobustScorer(FGSM())(DigitsMLP(), X[:10], y[:5])
