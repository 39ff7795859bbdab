"""The covariance core against scikit-learn and a naive reference."""

import numpy as np
import pytest
import torch
from sklearn import covariance as skcov

from structnoise.covariance import (
    CovarianceMemoryError,
    MomentAccumulator,
    check_covariance_memory,
    ledoit_wolf,
    oas,
    shrunk_from_moments,
)


def naive_shrunk(X, method, assume_centered=False):
    """Textbook Ledoit-Wolf / OAS, straight from the formulas (no blocking)."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    Y = X if assume_centered else X - X.mean(0)
    S = Y.T @ Y / n
    mu = np.trace(S) / d
    if d == 1:
        return S, 0.0
    if method == "ledoit_wolf":
        # pi-hat / d: mean squared deviation of the rank-one terms from S
        beta = sum(np.sum((np.outer(y, y) - S) ** 2) for y in Y) / n**2 / d
        delta = np.sum((S - mu * np.eye(d)) ** 2) / d
        s = min(beta, delta) / delta
    else:
        alpha = np.mean(S**2)
        num = alpha + mu**2
        den = (n + 1) * (alpha - mu**2 / d)
        s = min(num / den, 1.0)
    return (1 - s) * S + s * mu * np.eye(d), s


def _relerr(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max()


CASES = [(60, 5, 0.0), (12, 40, 3.0), (300, 64, 1.0), (2000, 30, 1e3), (50, 1, 2.0)]


@pytest.mark.parametrize("n,d,offset", CASES)
@pytest.mark.parametrize("assume_centered", [False, True])
@pytest.mark.parametrize("ours,theirs,method", [
    (ledoit_wolf, skcov.ledoit_wolf, "ledoit_wolf"), (oas, skcov.oas, "oas")])
def test_matches_sklearn_and_naive(rng, n, d, offset, assume_centered, ours, theirs, method):
    X = rng.randn(n, d) @ rng.randn(d, d) + offset
    cov, s = ours(X, assume_centered=assume_centered)
    cov_sk, s_sk = theirs(X, assume_centered=assume_centered)
    assert _relerr(cov, cov_sk) < 1e-6
    assert s == pytest.approx(s_sk, rel=1e-6, abs=1e-12)
    cov_nv, s_nv = naive_shrunk(X, method, assume_centered)
    assert _relerr(cov, cov_nv) < 1e-6
    assert s == pytest.approx(s_nv, rel=1e-6, abs=1e-12)
    assert np.allclose(cov, cov.T)


def test_torch_input_keeps_type_and_values(rng):
    X = rng.randn(100, 8)
    cov_np, s_np = ledoit_wolf(X)
    cov_t, s_t = ledoit_wolf(torch.from_numpy(X))
    assert isinstance(cov_t, torch.Tensor) and cov_t.dtype == torch.float64
    np.testing.assert_allclose(cov_t.numpy(), cov_np, rtol=1e-12)
    assert s_t == s_np


def test_float32_stays_float32(rng):
    X = (rng.randn(500, 16) + 2).astype(np.float32)
    cov, s = oas(X)
    assert cov.dtype == np.float32
    cov64, s64 = oas(X.astype(np.float64))
    assert _relerr(cov, cov64) < 1e-4
    assert s == pytest.approx(s64, rel=1e-4)


def test_input_not_modified(rng):
    X = rng.randn(50, 4) + 1
    X0 = X.copy()
    ledoit_wolf(X)
    np.testing.assert_array_equal(X, X0)


@pytest.mark.parametrize("full", [True, False])
def test_streaming_equals_batch(rng, full):
    X = rng.randn(997, 12) * 3 + 5
    acc = MomentAccumulator(12, full=full, block_size=64)
    for batch in np.array_split(X, 9):
        acc.update(batch)
    m, mean = acc.centred_moments()
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-12)
    Y = X - X.mean(0)
    expected = Y.T @ Y if full else (Y**2).sum(0)
    np.testing.assert_allclose(m["moment"], expected, rtol=1e-9)
    if full:
        cov, s = acc.ledoit_wolf()
        cov_sk, s_sk = skcov.ledoit_wolf(X)
        assert _relerr(cov, cov_sk) < 1e-9 and s == pytest.approx(s_sk, rel=1e-9)


@pytest.mark.parametrize("assume_centered", [False, True])
def test_merge_is_exact(rng, assume_centered):
    X = rng.randn(600, 10) * 2 + 7
    a = MomentAccumulator(10).update(X[:100])
    b = MomentAccumulator(10).update(X[100:350])
    c = MomentAccumulator(10).update(X[350:])
    a.merge(b).merge(c)
    for method, ref in [("ledoit_wolf", skcov.ledoit_wolf), ("oas", skcov.oas)]:
        cov, s = getattr(a, method)(assume_centered)
        cov_sk, s_sk = ref(X, assume_centered=assume_centered)
        assert _relerr(cov, cov_sk) < 1e-9
        assert s == pytest.approx(s_sk, rel=1e-8)
    assert a.count == 600


def test_merge_into_empty_and_shape_mismatch(rng):
    X = rng.randn(30, 3)
    empty = MomentAccumulator(3).merge(MomentAccumulator(3).update(X))
    assert _relerr(empty.ledoit_wolf()[0], skcov.ledoit_wolf(X)[0]) < 1e-12
    with pytest.raises(ValueError, match="different shapes"):
        MomentAccumulator(3).merge(MomentAccumulator(4))


def test_memory_guard_suggests_structures():
    with pytest.raises(CovarianceMemoryError, match="structure='diagonal'") as err:
        check_covariance_memory(10_000_000)
    assert isinstance(err.value, ValueError)


def test_memory_guard_env_override(monkeypatch):
    monkeypatch.setenv("STRUCTNOISE_MAX_MEMORY_BYTES", "1000")
    with pytest.raises(CovarianceMemoryError):
        MomentAccumulator(100)


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4)), np.zeros((0, 3))])
def test_bad_shapes(bad):
    with pytest.raises(ValueError, match="dim 3|0 sample"):
        ledoit_wolf(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(rng):  # pragma: no cover - no GPU in CI
    X = rng.randn(500, 32) + 1
    cov, s = ledoit_wolf(torch.from_numpy(X).cuda())
    assert cov.device.type == "cuda"
    cov_sk, s_sk = skcov.ledoit_wolf(X)
    assert _relerr(cov.cpu().numpy(), cov_sk) < 1e-6 and s == pytest.approx(s_sk, rel=1e-6)


def test_float32_uncentred_fast_path_accuracy():
    # a small mean (within a standard deviation) takes the raw-sum path
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((3000, 64)) + 0.3).astype(np.float32)
    for fn in (ledoit_wolf, oas):
        cov32, s32 = fn(X)
        cov64, s64 = fn(X.astype(np.float64))
        assert _relerr(cov32, cov64) < 1e-5
        assert s32 == pytest.approx(s64, rel=1e-5)


def _torch_namespace_accumulator(d, full, dtype=np.float64):
    """An accumulator running the accelerator (torch) namespace on the CPU."""
    from structnoise.covariance import _TorchOps

    acc = MomentAccumulator(d, full=full, dtype=dtype)
    acc._ops = _TorchOps(torch.device("cpu"))
    acc.moment = acc._ops.zeros((d, d) if full else d, dtype if full else np.float64)
    acc.sum = acc._ops.zeros(d, np.float64)
    acc.norm2_y = acc._ops.zeros(d, np.float64)
    return acc


@pytest.mark.parametrize("full", [True, False])
def test_torch_namespace_gives_the_host_numbers(rng, full):
    # the CUDA path is the same code over torch's operations: run it on the
    # CPU against the host (numpy) namespace, streaming and merging
    X = rng.randn(300, 7) * 3 + 5
    host, dev = MomentAccumulator(7, full=full), _torch_namespace_accumulator(7, full)
    other_host = MomentAccumulator(7, full=full).update(X[200:])
    other_dev = _torch_namespace_accumulator(7, full).update(torch.from_numpy(X[200:]))
    for part in np.array_split(X[:200], 3):
        host.update(part)
        dev.update(torch.from_numpy(part))
    host.merge(other_host)
    dev.merge(other_dev)
    for assume_centered in (False, True):
        mh, _ = host.centred_moments(assume_centered)
        md, _ = dev.centred_moments(assume_centered)
        np.testing.assert_allclose(md["moment"].numpy(), mh["moment"], rtol=1e-10)
        assert md["trace"] == pytest.approx(mh["trace"], rel=1e-12)
        if full:
            assert md["norm4"] == pytest.approx(mh["norm4"], rel=1e-10)
            cov_d, s_d = shrunk_from_moments(md, "ledoit_wolf")
            cov_h, s_h = shrunk_from_moments(mh, "ledoit_wolf")
            assert s_d == pytest.approx(s_h, rel=1e-10)
            np.testing.assert_allclose(cov_d.numpy(), cov_h, rtol=1e-10)
