"""structnoise.evaluation.checks: the obfuscation checks flag what they should."""

import pytest
import torch
from evaluation_helpers import TinyNet, digits

from structnoise import NoisyNeuralNetClassifier
from structnoise.evaluation import checks as ck


class MaskedNet(torch.nn.Module):
    """Gradient masking: the input is quantised (zero gradient almost everywhere)."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(torch.round(x * 4) / 4)


class RandomNet(torch.nn.Module):
    """Large hidden noise: predictions change from call to call."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        h = self.base.act(self.base.fc1(self.base.flat(x)))
        return self.base.fc2(h + 3 * torch.randn_like(h))


@pytest.fixture(scope="module")
def sound():
    X, y, Xt, yt = digits()
    from structnoise._random import scoped_seed

    with scoped_seed(0):
        net = NoisyNeuralNetClassifier(TinyNet, optimizer=torch.optim.Adam, lr=1e-2,
                                       max_epochs=20, train_split=None, verbose=0).fit(X, y)
    return net.module_.eval(), Xt[:40], yt[:40]


def test_checks_pass_a_sound_network(sound):
    model, X, y = sound
    frame = ck.run_checks(model, X, y, eps=0.1, nb_iter=10, square_iter=50)
    assert list(frame.check) == ["randomness", "budget_to_zero", "more_iterations",
                                 "eot_stronger", "gradient_free_weaker", "unbounded"]
    assert frame.passed.all(), frame[["check", "detail"]].to_string()


def test_checks_flag_gradient_masking(sound):
    model, X, y = sound
    masked = MaskedNet(model)
    assert not ck.check_budget_to_zero(masked, X, y)["passed"]
    assert not ck.check_unbounded(masked, X, y)["passed"]
    assert not ck.check_gradient_free_weaker(masked, X, y, square_iter=200)["passed"]


def test_randomness_check_flags_a_random_net_evaluated_without_eot(sound):
    model, X, _ = sound
    noisy = RandomNet(model)
    assert not ck.check_randomness(noisy, X, eot_samples=1)["passed"]
    assert ck.check_randomness(noisy, X, eot_samples=8)["passed"]
    record = ck.check_randomness(model, X)
    assert record["passed"] and record["accuracies"] == [0.0]


def test_iteration_and_eot_checks_flag_when_the_stronger_attack_does_worse(sound, monkeypatch):
    model, X, y = sound
    rising = iter([0.30, 0.50])
    monkeypatch.setattr(ck, "_attack_accuracy", lambda *a: next(rising))
    assert not ck.check_more_iterations(model, X, y)["passed"]
    monkeypatch.undo()
    # EOT weaker than one draw: flagged; stronger: passes (the single-draw
    # accuracy of this deterministic model is measured, EOT's is rigged)
    single = ck.check_eot_stronger(model, X, y)["accuracies"][0]
    monkeypatch.setattr(ck, "_attack_accuracy", lambda *a: single + 0.2)
    assert not ck.check_eot_stronger(model, X, y)["passed"]
    monkeypatch.setattr(ck, "_attack_accuracy", lambda *a: max(single - 0.2, 0.0))
    assert ck.check_eot_stronger(model, X, y)["passed"]
