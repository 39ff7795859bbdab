"""EOT: stacked draws run in passes that fit a CPU's cache, with the same result."""

import torch

from structnoise import _inference
from structnoise._inference import stacked_draws
from structnoise.sources import EOTLoss, EOTModel


class _CountingLinear(torch.nn.Linear):
    """A deterministic module that records the rows of every pass."""

    def __init__(self):
        super().__init__(6, 3)
        self.rows = []

    def forward(self, x):
        self.rows.append(x.shape[0])
        return super().forward(x)


def test_cpu_passes_stay_within_the_row_budget(monkeypatch):
    monkeypatch.setattr(_inference, "_CPU_ROWS_PER_PASS", 8)
    module = _CountingLinear()
    out = stacked_draws(module, torch.randn(3, 6), 7)
    assert out.shape == (21, 3)
    assert sum(module.rows) == 21
    assert max(module.rows) <= 8 and len(module.rows) == 4  # 2 + 2 + 2 + 1 draws of 3 rows


def test_a_batch_wider_than_the_budget_runs_one_draw_per_pass(monkeypatch):
    monkeypatch.setattr(_inference, "_CPU_ROWS_PER_PASS", 8)
    module = _CountingLinear()
    stacked_draws(module, torch.randn(20, 6), 3)
    assert module.rows == [20, 20, 20]


def test_passes_give_the_outputs_and_gradient_of_one_stacked_pass(monkeypatch):
    torch.manual_seed(0)
    module = _CountingLinear()
    x = torch.randn(5, 6)
    y = torch.tensor([0, 1, 2, 0, 1])
    results = {}
    for budget in (5, 10_000):  # one draw per pass, all draws in one pass
        monkeypatch.setattr(_inference, "_CPU_ROWS_PER_PASS", budget)
        xi = x.clone().requires_grad_(True)
        out = EOTModel(module, 4)(xi)
        (grad,) = torch.autograd.grad(EOTLoss(4)(out, y), xi)
        mean = EOTModel(module, 4, average="logits")(x)
        results[budget] = (out.detach(), grad, mean)
    for a, b in zip(results[5], results[10_000], strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(results[5][2], module(x).detach())


def test_one_draw_is_one_plain_call():
    module = _CountingLinear()
    x = torch.randn(4, 6)
    torch.testing.assert_close(stacked_draws(module, x, 1), module(x))
    assert module.rows == [4, 4]
