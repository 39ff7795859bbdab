"""structnoise.evaluation.evaluator: one network's rows, measured or taken as given."""

import numpy as np
import pytest

from structnoise import NoisyNeuralNetClassifier
from structnoise.datasets import load_digits_images
from structnoise.evaluation.evaluator import evaluate_network, evaluation_images
from structnoise.evaluation.plan import NetPlan
from structnoise.evaluation.protocols import get_protocols
from structnoise.evaluation.settings import RunSettings
from structnoise.models import DigitsMLP
from structnoise.sources import FGSM, Corruption


@pytest.fixture(scope="module")
def case():
    X, y = load_digits_images()
    net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=2, lr=0.1, train_split=None,
                                   verbose=0).fit(X[:300], y[:300])
    # an attack between two modifications: the measured values must hold after it
    sources = (("rot1", Corruption("rotate", strength=1.0)), ("fgsm", FGSM(eps=0.1)),
               ("rot2", Corruption("rotate", strength=2.0)))
    settings = RunSettings(net, ("body.2",), {}, None, (), sources,
                           get_protocols(("paper", "eot")), 1, 1, 64)
    plan = NetPlan(0, "none", None, None, "none", "none", "any", float("nan"), evals=(0, 1, 2))
    return settings, plan, net, X[300:400], y[300:400]


def _accuracy(rows, label):
    values = {r["accuracy"] for r in rows if r["eval_label"] == label}
    assert len(values) == 1  # one measurement under every protocol
    return values.pop()


def test_clean_and_naturalistic_accuracies_given_are_used_after_an_attack_too(case):
    settings, plan, net, X, y = case
    measured = {None: (np.arange(100) < 12, 1.5), 0: (np.arange(100) < 25, 2.5),
                2: (np.arange(100) < 37, 3.5)}
    rows, _, outcomes = evaluate_network(settings, plan, net, X, y, 0.0, measured)
    assert _accuracy(rows, "clean") == 0.12
    assert _accuracy(rows, "rot1") == 0.25
    assert _accuracy(rows, "rot2") == 0.37
    # the given per-image outcomes are kept as they are, under every protocol
    for protocol in ("paper", "eot"):
        np.testing.assert_array_equal(outcomes["rot2", protocol], measured[2][0])
    seconds = {r["eval_label"]: r["eval_seconds"] for r in rows}
    assert (seconds["clean"], seconds["rot1"], seconds["rot2"]) == (1.5, 2.5, 3.5)
    # the attack is measured here, under both protocols
    assert sum(r["eval_label"] == "fgsm" for r in rows) == 2


def test_without_measurements_each_is_the_nets_score_on_the_seeds_images(case):
    settings, plan, net, X, y = case
    rows, _, _ = evaluate_network(settings, plan, net, X, y, 0.0)
    assert _accuracy(rows, "clean") == pytest.approx(float(net.score(X, y)))
    for j, label in ((0, "rot1"), (2, "rot2")):
        images = evaluation_images(plan.seed, j, settings.eval_sources[j][1], X)
        assert _accuracy(rows, label) == pytest.approx(float(net.score(images, y)))


def test_outcomes_hold_one_image_vector_per_row_whose_mean_is_its_accuracy(case):
    settings, plan, net, X, y = case
    rows, _, outcomes = evaluate_network(settings, plan, net, X, y, 0.0)
    assert set(outcomes) == {(r["eval_label"], r["eval_protocol"]) for r in rows}
    for r in rows:
        correct = outcomes[r["eval_label"], r["eval_protocol"]]
        assert correct.dtype == bool and correct.shape == (len(X),)
        assert correct.mean() == r["accuracy"]
    # a deterministic net: the clean outcomes are its predictions, image by image
    np.testing.assert_array_equal(outcomes["clean", "paper"], net.predict(X) == y)
