"""ModificationSource.generate: one template (validate, prepare once, blocks, check)."""

import contextlib

import numpy as np
import pytest
import torch

from structnoise.sources import ModificationSource


class Invert(ModificationSource):
    """The user guide's example source, recording what the template does."""

    kind = "naturalistic"

    def __init__(self, amount=1.0, batch_size=256):
        self.amount = amount
        self.batch_size = batch_size

    @contextlib.contextmanager
    def _prepare(self, model, X, y):
        self.prepared = getattr(self, "prepared", 0) + 1
        self.blocks_seen = []
        yield "state"

    def _generate_batch(self, state, X, y, *, index, rows):
        assert state == "state"
        self.blocks_seen.append((index, rows.start, rows.stop, X.shape[0]))
        return (1 - self.amount) * X + self.amount * (1 - X)


def test_the_template_prepares_once_and_runs_every_block():
    X = torch.rand(600, 1, 8, 8)
    src = Invert()
    out = src.generate(None, X)
    torch.testing.assert_close(out, 1 - X)
    assert src.prepared == 1
    assert src.blocks_seen == [(0, 0, 256, 256), (1, 256, 512, 256), (2, 512, 600, 88)]


def test_inputs_are_checked_before_any_work():
    src = Invert()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        src.generate(None, np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match="clip_min, clip_max"):
        src.generate(None, torch.full((2, 1, 8, 8), 3.0))
    with pytest.raises(ValueError, match="labels"):
        src.generate(None, torch.rand(2, 1, 8, 8), y=[0, 1, 2])
    assert not hasattr(src, "prepared")


def test_output_keeps_the_input_dtype_and_device_and_numpy_gives_a_tensor():
    X = np.random.default_rng(0).random((5, 1, 8, 8))
    out = Invert(amount=0.5).generate(None, X)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), 0.5 * X + 0.5 * (1 - X))


def test_attack_mode_restores_each_submodule_and_freezes_only_for_the_attack():
    from structnoise.sources._utils import attack_mode

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(), torch.nn.Linear(4, 2))
    model.eval()
    model[1].train()  # one submodule left training on purpose
    model[2].weight.requires_grad_(False)
    before = [m.training for m in model.modules()]
    with attack_mode(model):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
    assert [m.training for m in model.modules()] == before
    assert [p.requires_grad for p in model.parameters()] == [True, True, False, True]


def test_a_source_returning_its_input_gives_a_copy():
    class Identity(ModificationSource):
        def __init__(self, batch_size=256):
            self.batch_size = batch_size

        def _generate_batch(self, state, X, y, *, index, rows):
            return X  # a view of the caller's images

    X = torch.rand(10, 1, 8, 8)
    out = Identity().generate(None, X)
    torch.testing.assert_close(out, X)
    out += 1.0
    assert X.max() <= 1.0  # the caller's images are untouched


class _InRangeButNaN(ModificationSource):
    """Claims its values are in range (the cheap NaN-only check) and returns a NaN."""

    _output_in_range = True

    def __init__(self, batch_size=256):
        self.batch_size = batch_size

    def _generate_batch(self, state, X, y, *, index, rows):
        out = 1 - X
        out[0, 0, 0, 0] = float("nan")
        return out


def test_a_source_keeping_its_range_still_gets_its_nan_images_replaced():
    X = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning, match="NaN"):
        out = _InRangeButNaN().generate(None, X)
    torch.testing.assert_close(out[0], X[0])          # the clean image
    torch.testing.assert_close(out[1:], 1 - X[1:])


def test_corruptions_claim_their_range_only_in_unit_range():
    from structnoise.sources import Corruption

    assert Corruption("fog")._output_in_range
    assert not Corruption("fog", clip_min=-1.0, clip_max=1.0)._output_in_range
    # and the claim holds: values in [0, 1] for every corruption
    X = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    from structnoise.sources import CORRUPTIONS

    for name in CORRUPTIONS:
        out = Corruption(name, severity=5, random_state=0).generate(None, X)
        assert float(out.min()) >= 0 and float(out.max()) <= 1, name
