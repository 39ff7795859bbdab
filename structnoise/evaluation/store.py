"""A crash-safe, resumable store of an experiment's results, one directory per configuration.

The configuration (every parameter of the experiment that can change its
results, sources and network template included, a fingerprint of the data
and the store's format) is hashed; its results live in ``<store>/<hash>/``:

``config.json``
    a readable record of the configuration;
``bases/seed<k>.pt``
    each seed's base network, written as soon as it is trained;
``checkpoints/<name>.pt``
    the stacked engine's retraining state of a seed at its last finished
    epoch (weights, optimizer, random streams), removed once the seed's
    networks are stored;
``networks/<key>.csv``, ``checks/<key>.csv`` and ``outcomes/<key>.npz``
    each network's rows, obfuscation-check records and per-image outcomes
    (which test images it got right, per evaluation and protocol, as packed
    bits), written as soon as the network is evaluated (outcomes and checks
    first: a network is done when its rows are there).

Every file is written to a temporary file in the same directory and moved
into place with :func:`os.replace`, so a killed run leaves whole files or
none, and loses at most the networks in flight. Every file also ends in a
seal, a last line with the SHA-256 and the length of what precedes it,
checked on every read: a file cut or altered anywhere (by a full disk, a
copy, a hand) is never read as data. A file that cannot be read
back, or is not what the plan expects (outcomes that disagree with their
rows' accuracies included), is named in a warning, removed and computed
again. A network stored without outcomes (by an older version) keeps its
rows; its worst case cannot be computed, and the report says so.
"""

import hashlib
import io
import json
import os
import tempfile
import warnings

import numpy as np
import pandas as pd

from .schema import CHECK_COLUMNS, COLUMNS

__all__ = ["ResultStore", "config_hash", "write_atomic", "write_sealed", "read_sealed",
           "STORE_FORMAT"]

#: the layout of the files; part of the hash, so an older layout is never mixed in
#: (3: every file sealed with its checksum and length; per-image outcomes)
STORE_FORMAT = 3
_TEMP_PREFIX = ".tmp-"
#: parameters that do not change the results
_NOT_HASHED = ("n_jobs", "verbose", "store")


def _canonical(value):
    """A stable text for parameters: estimators by class and parameters."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        params = {k: _canonical(v) for k, v in sorted(value.get_params(deep=False).items())}
        return f"{type(value).__module__}.{type(value).__qualname__}({params})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_canonical(v)}" for k, v in sorted(
            value.items(), key=lambda kv: repr(kv[0]))) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_canonical(v) for v in value) + "]"
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return repr(value)


def config_hash(experiment, data):
    """Hash of an experiment's parameters, its data and the store format (12 hex digits).

    ``n_jobs``, ``verbose`` and ``store`` do not change results and are left
    out.

    Parameters
    ----------
    experiment : Experiment
        The experiment.
    data : tuple of ndarray
        ``(X_train, y_train, X_test, y_test)``.

    Returns
    -------
    digest : str
        12 hexadecimal digits.

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise.evaluation.store import config_hash
    >>> class E:
    ...     def get_params(self, deep=False):
    ...         return {"seeds": (0,), "n_jobs": 2}
    >>> data = (np.zeros((2, 1, 8, 8)), np.zeros(2), np.zeros((1, 1, 8, 8)), np.zeros(1))
    >>> len(config_hash(E(), data))
    12
    """
    import numpy as np

    params = {k: v for k, v in experiment.get_params(deep=False).items()
              if k not in _NOT_HASHED}
    h = hashlib.sha256(f"format {STORE_FORMAT}: {_canonical(params)}".encode())
    for arr in data:
        arr = np.ascontiguousarray(arr)
        h.update(repr((arr.shape, str(arr.dtype))).encode())
        h.update(hashlib.sha256(arr.tobytes()).digest())
    return h.hexdigest()[:12]


def write_atomic(path, write):
    """Write a file whole or not at all: ``write(fh)`` into a temporary file, then rename.

    Parameters
    ----------
    path : str
        The file's final path.
    write : callable
        Called with a binary file handle.

    Examples
    --------
    >>> import os, tempfile
    >>> from structnoise.evaluation.store import write_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> write_atomic(path, lambda fh: fh.write(b"whole"))
    >>> open(path).read()
    'whole'
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX)
    try:
        # mkstemp makes the file private (0600); results are ordinary files
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _key_name(key):
    """The file name of a network key (a stable digest of its text)."""
    return hashlib.sha256(repr(tuple(key)).encode()).hexdigest()[:20]


#: the text columns: read as text (a label "1" stays "1"), missing as ""
_TEXT = ("noise_family", "noise_label", "noise_kind", "structure", "noise_layers",
         "train_family", "eval_family", "eval_label", "eval_kind", "eval_strength_unit",
         "eval_protocol", "check", "detail", "accuracies")
#: the integer columns
_INTEGER = ("seed", "eot_samples", "eot_draws", "ensemble", "n_images")


def _typed(frame, columns):
    """``frame`` with exactly ``columns``, each of its type, whether built in memory or read."""
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"columns {missing} are missing")
    frame = frame[columns].copy()
    for col in columns:
        if col in _TEXT:
            frame[col] = frame[col].fillna("").astype(str)
        elif col in _INTEGER:
            frame[col] = frame[col].astype("int64")
        elif col == "passed":
            frame[col] = frame[col].astype(bool)
        else:
            frame[col] = frame[col].astype("float64")
    return frame.reset_index(drop=True)


def _read_frame(data, columns):
    frame = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values={
        c: ["", "nan", "NaN"] for c in columns if c not in _TEXT}, dtype={
        c: str for c in columns if c in _TEXT})
    return _typed(frame, columns)


_SEAL_PREFIX = b"\n#structnoise-seal sha256="
#: the seal's length: prefix, 64 hex digits, " length=", 20 digits, newline
_SEAL_SIZE = len(_SEAL_PREFIX) + 64 + len(b" length=") + 20 + 1


def _seal(data):
    """``data`` followed by its seal line (SHA-256 and length)."""
    digest = hashlib.sha256(data).hexdigest().encode()
    return data + _SEAL_PREFIX + digest + b" length=" + b"%020d" % len(data) + b"\n"


def _unseal(raw):
    """What a sealed file holds; ValueError when the seal is missing or does not match."""
    if len(raw) < _SEAL_SIZE or not raw[-_SEAL_SIZE:].startswith(_SEAL_PREFIX):
        raise ValueError(f"its seal is missing ({len(raw)} bytes): the file was cut")
    data, seal = raw[:-_SEAL_SIZE], raw[-_SEAL_SIZE:]
    digest, _, length = seal[len(_SEAL_PREFIX):].strip().partition(b" length=")
    if not length.isdigit() or int(length) != len(data):
        raise ValueError(f"it holds {len(data)} bytes where its seal says {length.decode()!r}")
    if hashlib.sha256(data).hexdigest().encode() != digest:
        raise ValueError("its checksum does not match its contents")
    return data


def read_sealed(path):
    r"""The contents of a file written by :func:`write_sealed`, checked whole.

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    data : bytes
        What was written, without the seal.

    Raises
    ------
    ValueError
        When the file is cut or altered (seal missing, length or checksum off).

    Examples
    --------
    >>> import os, tempfile
    >>> from structnoise.evaluation.store import read_sealed, write_sealed
    >>> path = os.path.join(tempfile.mkdtemp(), "a.csv")
    >>> write_sealed(path, b"a,b\n1,2\n")
    >>> read_sealed(path)
    b'a,b\n1,2\n'
    """
    with open(path, "rb") as fh:
        return _unseal(fh.read())


def write_sealed(path, data):
    r"""Write ``data`` atomically, followed by a seal line: its SHA-256 and length.

    Parameters
    ----------
    path : str
        The file's final path.
    data : bytes
        The contents (:func:`read_sealed` gives them back, checked).

    Examples
    --------
    >>> import os, tempfile
    >>> from structnoise.evaluation.store import write_sealed
    >>> path = os.path.join(tempfile.mkdtemp(), "a.csv")
    >>> write_sealed(path, b"x\n")
    >>> open(path, "rb").read().startswith(b"x\n\n#structnoise-seal sha256=")
    True
    """
    sealed = _seal(bytes(data))
    write_atomic(path, lambda fh: fh.write(sealed))


class ResultStore:
    """Rows, check records and base weights of one configuration (in memory when ``root`` is None).

    Parameters
    ----------
    root : str, path-like or None
        The store directory; None keeps everything in memory.
    digest : str
        The configuration's hash (its subdirectory).
    config : dict, default=None
        A readable record of the configuration, written to ``config.json``.

    Examples
    --------
    >>> from structnoise.evaluation.store import ResultStore
    >>> store = ResultStore(None, "abc")
    >>> store.save_base(0, {"w": 1})
    >>> store.load_base(0)
    {'w': 1}
    """

    def __init__(self, root, digest, config=None):
        self.digest = digest
        self._networks = {}
        self._bases = {}
        self.path = None
        if root is None:
            return
        self.path = os.path.join(os.fspath(root), digest)
        for sub in ("bases", "networks", "checks", "outcomes", "checkpoints"):
            os.makedirs(os.path.join(self.path, sub), exist_ok=True)
            # temporary files of a killed run: never complete, never read
            for name in os.listdir(os.path.join(self.path, sub)):
                if name.startswith(_TEMP_PREFIX):
                    os.remove(os.path.join(self.path, sub, name))
        meta = os.path.join(self.path, "config.json")
        if not os.path.exists(meta):
            text = json.dumps({"hash": digest, "format": STORE_FORMAT, "config": config or {}},
                              indent=1)
            write_atomic(meta, lambda fh: fh.write(text.encode()))

    @property
    def persistent(self):
        """Whether the store is on disk (workers in other processes can write to it)."""
        return self.path is not None

    def _file(self, sub, name):
        return os.path.join(self.path, sub, name)

    def _damaged(self, path, why):
        warnings.warn(f"The stored file {path} is damaged ({why}); it is removed and computed "
                      "again.", RuntimeWarning, stacklevel=3)
        if os.path.exists(path):
            os.remove(path)

    # ------------------------------------------------------------ torch files
    @staticmethod
    def _save_torch(path, state):
        """``state`` (tensors and plain values) in a sealed file."""
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_sealed(path, buffer.getvalue())

    def _load_torch(self, path):
        """What :meth:`_save_torch` wrote, or None (missing; damaged: named and removed)."""
        if not os.path.exists(path):
            return None
        import torch

        try:
            return torch.load(io.BytesIO(read_sealed(path)), weights_only=True)
        except Exception as exc:  # the seal, torch's RuntimeError, pickle's errors...
            self._damaged(path, f"{type(exc).__name__}: {exc}")
            return None

    # ------------------------------------------------------------------ bases
    def save_base(self, seed, state):
        """Keep the base network of ``seed`` (a state dict)."""
        if not self.persistent:
            self._bases[int(seed)] = state
            return
        self._save_torch(self._file("bases", f"seed{int(seed)}.pt"), state)

    def load_base(self, seed):
        """The base network of ``seed``, or None (missing or damaged)."""
        if not self.persistent:
            return self._bases.get(int(seed))
        return self._load_torch(self._file("bases", f"seed{int(seed)}.pt"))

    def check_base(self, seed):
        """Whether the stored base of ``seed`` is whole (a damaged one is named and removed).

        For a base no network needs any more: it is checked all the same, so
        that no damaged file stays in the store unreported.

        Parameters
        ----------
        seed : int
            The seed.

        Returns
        -------
        whole : bool or None
            None when no base is stored for ``seed``.
        """
        if not self.persistent:
            return None if int(seed) not in self._bases else True
        path = self._file("bases", f"seed{int(seed)}.pt")
        if not os.path.exists(path):
            return None
        try:
            read_sealed(path)
        except (OSError, ValueError) as exc:
            self._damaged(path, f"{type(exc).__name__}: {exc}")
            return False
        return True

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name, state):
        """Keep a training checkpoint (a dict of tensors and plain values), sealed.

        The stacked engine writes one per seed at the end of each retraining
        epoch (:meth:`~structnoise.evaluation.stacked.StackedTrainer.train_networks`),
        so a killed run resumes from the last finished epoch. In memory
        (``root=None``) nothing is kept.

        Parameters
        ----------
        name : str
            The checkpoint's name (a file name).
        state : dict
            What :meth:`load_checkpoint` gives back.
        """
        if self.persistent:
            self._save_torch(self._file("checkpoints", f"{name}.pt"), state)

    def load_checkpoint(self, name):
        """A checkpoint written by :meth:`save_checkpoint`, or None (missing or damaged)."""
        if not self.persistent:
            return None
        return self._load_torch(self._file("checkpoints", f"{name}.pt"))

    def remove_checkpoint(self, name):
        """Drop a checkpoint whose work is stored for good."""
        if self.persistent and os.path.exists(self._file("checkpoints", f"{name}.pt")):
            os.remove(self._file("checkpoints", f"{name}.pt"))

    # --------------------------------------------------------------- networks
    def save_network(self, key, rows, check_rows=(), outcomes=None):
        """Keep one network's rows, check records and outcomes (the rows last).

        Parameters
        ----------
        key : tuple
            The network's key (:attr:`NetPlan.key`).
        rows : list of dict or pandas.DataFrame
            Its rows (:data:`COLUMNS`).
        check_rows : list of dict, default=()
            Its obfuscation-check records.
        outcomes : dict, default=None
            ``(eval_label, eval_protocol) -> ndarray of bool``: which test
            images it got right (:func:`evaluate_network`).
        """
        rows = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows
        checks = pd.DataFrame(list(check_rows), columns=CHECK_COLUMNS) if check_rows else None
        if outcomes is not None:
            outcomes = {tuple(k): np.asarray(v, dtype=bool) for k, v in outcomes.items()}
        if not self.persistent:
            self._networks[tuple(key)] = (rows, checks, outcomes)
            return
        name = _key_name(key) + ".csv"
        if outcomes is not None:
            write_sealed(self._file("outcomes", _key_name(key) + ".npz"),
                         _pack_outcomes(outcomes))
        if checks is not None:
            write_sealed(self._file("checks", name), checks.to_csv(index=False).encode())
        write_sealed(self._file("networks", name), rows.to_csv(index=False).encode())

    def load_network(self, key, n_rows=None, with_checks=False):
        """``(rows, checks, outcomes)`` of a stored network, or None (missing, damaged, incomplete).

        ``outcomes`` is None for a network stored without them (an older
        version); outcomes that are damaged, or disagree with the rows
        (an image count, an accuracy, a missing evaluation), make the whole
        network count as damaged.

        Parameters
        ----------
        key : tuple
            The network's key (:attr:`NetPlan.key`).
        n_rows : int, default=None
            The rows the plan expects; other counts count as damage.
        with_checks : bool, default=False
            Whether the network's check records must be there too.
        """
        if not self.persistent:
            found = self._networks.get(tuple(key))
            if found is None or (with_checks and found[1] is None):
                return None
            rows, checks, outcomes = found
            return (_typed(rows, COLUMNS),
                    None if checks is None else _typed(checks, CHECK_COLUMNS), outcomes)
        name = _key_name(key) + ".csv"
        path = self._file("networks", name)
        if not os.path.exists(path):
            return None
        try:
            rows = _read_frame(read_sealed(path), COLUMNS)
        except Exception as exc:  # the seal, pandas' parser errors, missing columns
            self._damaged(path, f"{type(exc).__name__}: {exc}")
            return None
        if n_rows is not None and len(rows) != n_rows:
            self._damaged(path, f"{len(rows)} rows where the plan has {n_rows}")
            return None
        if rows["accuracy"].isna().any():
            self._damaged(path, "an accuracy is missing")
            return None
        checks = None
        if with_checks:
            check_path = self._file("checks", name)
            try:
                checks = _read_frame(read_sealed(check_path), CHECK_COLUMNS)
            except FileNotFoundError:
                self._damaged(path, "its obfuscation checks are missing")
                return None
            except Exception as exc:
                self._damaged(check_path, f"{type(exc).__name__}: {exc}")
                self._damaged(path, "its obfuscation checks are damaged")
                return None
        outcomes = None
        outcome_path = self._file("outcomes", _key_name(key) + ".npz")
        if os.path.exists(outcome_path):
            try:
                outcomes = _unpack_outcomes(read_sealed(outcome_path))
                _check_outcomes(outcomes, rows)
            except Exception as exc:  # a cut or altered archive, or disagreeing rows
                self._damaged(outcome_path, f"{type(exc).__name__}: {exc}")
                self._damaged(path, "its per-image outcomes are damaged")
                return None
        return rows, checks, outcomes


def _pack_outcomes(outcomes):
    """Outcomes as an ``.npz`` archive: labels, protocols and one row of packed bits each."""
    keys = list(outcomes)
    n = {len(v) for v in outcomes.values()}
    if len(n) > 1:
        raise ValueError(f"outcomes of one network must cover the same images; got sizes {n}")
    n_images = n.pop() if n else 0
    bits = np.stack([np.packbits(outcomes[k]) for k in keys]) if keys else \
        np.zeros((0, 0), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, eval_label=np.array([k[0] for k in keys], dtype=str),
             eval_protocol=np.array([k[1] for k in keys], dtype=str), bits=bits,
             n_images=np.int64(n_images))
    return buffer.getvalue()


def _unpack_outcomes(data):
    """The inverse of :func:`_pack_outcomes` (raises on a cut or altered archive)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        labels, protocols = archive["eval_label"], archive["eval_protocol"]
        bits, n_images = archive["bits"], int(archive["n_images"])
    if bits.shape != (len(labels), (n_images + 7) // 8) or len(protocols) != len(labels):
        raise ValueError(f"packed bits of shape {bits.shape} for {len(labels)} evaluations of "
                         f"{n_images} images")
    return {(str(a), str(p)): np.unpackbits(b, count=n_images).astype(bool)
            for a, p, b in zip(labels, protocols, bits, strict=True)}


def _check_outcomes(outcomes, rows):
    """Outcomes must hold every row's evaluation, on its images, at its accuracy."""
    for r in rows[["eval_label", "eval_protocol", "n_images", "accuracy"]].itertuples(
            index=False):
        found = outcomes.get((r.eval_label, r.eval_protocol))
        if found is None:
            raise ValueError(f"no outcomes for {r.eval_label} under {r.eval_protocol}")
        if len(found) != r.n_images or not np.isclose(found.mean() if len(found) else np.nan,
                                                       r.accuracy, rtol=0, atol=1e-9):
            raise ValueError(f"the outcomes of {r.eval_label} under {r.eval_protocol} "
                             f"({found.mean():.6f} of {len(found)} images) disagree with its "
                             f"row ({r.accuracy:.6f} of {r.n_images})")
