"""scikit-learn's own covariance tests, pointed at structnoise's ledoit_wolf and oas.

scikit-learn ships its tests inside the package: the ones that call the
``ledoit_wolf`` and ``oas`` functions run here with ours substituted (each
call also checked against scikit-learn's value at rtol 1e-6), and every
input scikit-learn rejects is rejected by ours.
"""

import numpy as np
import pytest
import sklearn.covariance as skcov
import torch

from structnoise import covariance as ours

suite = pytest.importorskip("sklearn.covariance.tests.test_covariance")


def _checked(ours_fn, sk_fn):
    def fn(X, *, assume_centered=False, block_size=None):
        cov, s = ours_fn(X, assume_centered=assume_centered, block_size=block_size)
        ref_cov, ref_s = sk_fn(X, assume_centered=assume_centered)
        np.testing.assert_allclose(cov, ref_cov, rtol=1e-6, atol=1e-12)
        assert s == pytest.approx(ref_s, rel=1e-6, abs=1e-12)
        return cov, s
    return fn


@pytest.mark.parametrize("test_name", ["test_ledoit_wolf", "test_oas"])
def test_sklearn_suite_with_our_functions(test_name, monkeypatch):
    monkeypatch.setattr(suite, "ledoit_wolf", _checked(ours.ledoit_wolf, skcov.ledoit_wolf))
    monkeypatch.setattr(suite, "oas", _checked(ours.oas, skcov.oas))
    getattr(suite, test_name)()


BAD_INPUTS = {
    "nan": np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.5]]),
    "inf": np.array([[0.0, 1.0], [np.inf, 2.0], [1.0, 0.5]]),
    "complex": np.array([[1 + 1j, 2.0], [0.5, 1.0], [0.0, 1.0]]),
    "1-D": np.arange(5.0),
    "3-D": np.zeros((2, 3, 4)),
    "no sample": np.zeros((0, 3)),
    "strings": np.array([["a", "b"], ["c", "d"]]),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
@pytest.mark.parametrize("fn", ["ledoit_wolf", "oas"])
def test_same_inputs_rejected(name, fn):
    X = BAD_INPUTS[name]
    with pytest.raises(ValueError):
        getattr(skcov, fn)(X)
    with pytest.raises(ValueError) as info:
        getattr(ours, fn)(X)
    assert str(info.value)  # a message, not a bare error
    if name in ("nan", "inf", "complex", "1-D", "3-D"):
        Xt = torch.from_numpy(X)
        with pytest.raises(ValueError, match="NaN|Complex|2D"):
            getattr(ours, fn)(Xt)


def test_block_size_is_accepted_and_changes_nothing():
    X = np.random.RandomState(0).randn(50, 7)
    a = ours.ledoit_wolf(X, block_size=6)
    b = ours.ledoit_wolf(X, block_size=1000)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    assert a[1] == pytest.approx(b[1], rel=1e-12)
    with pytest.raises(ValueError, match="block_size"):
        ours.oas(X, block_size=0)
