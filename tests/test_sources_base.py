"""ModificationSource.generate: one template (validate, prepare once, blocks, check)."""

import contextlib
import warnings

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
    from structnoise._inference import attack_mode

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


class _NaNSource(ModificationSource):
    """Returns one NaN among values in range."""

    def __init__(self, batch_size=256):
        self.batch_size = batch_size

    def _generate_batch(self, state, X, y, *, index, rows):
        out = 1 - X
        out[0, 0, 0, 0] = float("nan")
        return out


def test_nan_images_are_replaced_by_their_clean_images():
    X = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning, match="NaN"):
        out = _NaNSource().generate(None, X)
    torch.testing.assert_close(out[0], X[0])          # the clean image
    torch.testing.assert_close(out[1:], 1 - X[1:])


def test_every_corruption_stays_in_the_unit_range():
    from structnoise.sources import CORRUPTIONS, Corruption

    X = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for name in CORRUPTIONS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no clipping warning from the output check
            out = Corruption(name, severity=5, random_state=0).generate(None, X)
        assert float(out.min()) >= 0 and float(out.max()) <= 1, name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_bit_range_check_agrees_with_the_float_minimum_and_maximum(dtype):
    # naive reference: aminmax on the floats, finite and inside [lo, hi]
    from structnoise._validation import bits_within

    rng = np.random.default_rng(0)
    specials = [0.0, -0.0, 1.0, 1.0 + 1e-6, 1.0 + 1e-5, 1.0 + 2e-5, -1e-6, -1e-5, -2e-5,
                1e-8, 0.5, 2.0, float("nan"), float("inf"), -float("inf"), 254.9, 255.0]
    # (lo, hi, tol): the checked range is [lo - tol, hi + tol]
    for lo, hi, tol in [(0.0, 1.0, 0.0), (0.0, 1.0, 1e-5), (0.25, 0.75, 0.0),
                        (0.0, 255.0, 0.00255), (1e-5, 1.0, 0.0)]:
        for _ in range(40):
            values = rng.uniform(0, 1, 50).tolist() + \
                rng.choice(specials, rng.integers(0, 3)).tolist()
            X = torch.tensor(values, dtype=torch.float64).to(dtype)
            wide = X.double()
            inside = bool(torch.isfinite(wide).all()) and float(wide.min()) >= lo - tol \
                and float(wide.max()) <= hi + tol
            fast = bits_within(X, lo, hi, tol)
            # never a false "inside"; a miss only where a sign bit is set
            # (negatives, -0.0), which the float check then looks at
            assert not fast or inside, (lo, hi, values)
            assert fast or not inside or bool(torch.signbit(X).any()), (lo, hi, values)
    # a range reaching below zero gets no bit check: "look closer" at once
    assert not bits_within(torch.rand(10, dtype=dtype), -1.0, 1.0)


def test_images_in_range_pass_and_outside_fail_with_the_bit_check():
    from structnoise.sources import validate_images

    X = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert validate_images(X) is not None
    for bad, match in [(1.01, "lie in"), (-0.01, "lie in"), (float("nan"), "NaN"),
                       (float("inf"), "NaN")]:
        Y = X.clone()
        Y[1, 0, 3, 3] = bad
        with pytest.raises(ValueError, match=match):
            validate_images(Y)
    Y = X.clone()
    Y[0, 0, 0, 0] = -0.0          # inside: found by the float check after the bits
    validate_images(Y)
    validate_images(X * 2 - 1, clip_min=-1.0, clip_max=1.0)


def test_parameters_are_validated_again_once_changed():
    # validation is skipped only for the very objects last validated
    from sklearn.utils._param_validation import InvalidParameterError

    from structnoise.sources import FGSM

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    X = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    src = FGSM(eps=0.1)
    src.generate(model, X)
    src.generate(model, X)                  # the same objects: not checked again
    src.set_params(eps=-1.0)
    with pytest.raises(InvalidParameterError, match="eps"):
        src.generate(model, X)
    src.eps = 0.2                           # plain assignment counts too
    assert src.generate(model, X).shape == X.shape
    src.eps = "big"
    with pytest.raises(InvalidParameterError, match="eps"):
        src.generate(model, X)
