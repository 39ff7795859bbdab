"""A resumable store of experiment rows, one directory per configuration.

The configuration (every parameter of the experiment, sources and network
template included, and a fingerprint of the data) is hashed; the rows of a
configuration live in ``<store>/<hash>/results.csv`` beside ``config.json``,
so a changed configuration never mixes its rows with another's. Rows are
appended a group of networks at a time (a finished network is never lost)
and base networks' weights are cached, so a rerun computes only what is
missing.
"""

import hashlib
import json
import os

import numpy as np
import pandas as pd
import torch

__all__ = ["ResultStore", "config_hash"]


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
    """Hash of an experiment's parameters and its data (12 hex digits).

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
    params = {k: v for k, v in experiment.get_params(deep=False).items()
              if k not in ("n_jobs", "verbose", "store")}
    h = hashlib.sha256(_canonical(params).encode())
    for arr in data:
        arr = np.ascontiguousarray(arr)
        h.update(repr((arr.shape, str(arr.dtype))).encode())
        h.update(hashlib.sha256(arr.tobytes()).digest())
    return h.hexdigest()[:12]


def _key_float(v):
    """A float as key text; None (no trace scale) is stored as NaN, so both are "nan"."""
    if v is None:
        return "nan"
    v = float(v)
    return "nan" if v != v else repr(v)


#: the columns of the obfuscation-check records
CHECK_COLUMNS = ["seed", "noise_family", "structure", "trace_scale", "ensemble", "check",
                 "passed", "detail", "accuracies", "eot_samples"]


def _append_csv(path, frame):
    """Append ``frame`` to ``path`` in one write (header when the file is new)."""
    text = frame.to_csv(index=False, header=not os.path.exists(path))
    with open(path, "a") as fh:
        fh.write(text)


class ResultStore:
    """Rows and cached weights of one configuration (in memory when ``root`` is None).

    Parameters
    ----------
    root : str, path-like or None
        The store directory; None keeps everything in memory.
    digest : str
        The configuration's hash (its subdirectory).
    columns : list of str
        The row columns.
    config : dict, default=None
        A readable record of the configuration, written to ``config.json``.

    Examples
    --------
    >>> from structnoise.evaluation.store import ResultStore
    >>> store = ResultStore(None, "abc", ["seed", "accuracy"])
    >>> store.append([{"seed": 0, "accuracy": 0.5}])
    >>> len(store.rows())
    1
    """

    def __init__(self, root, digest, columns, config=None):
        self.columns = list(columns)
        self.digest = digest
        self._memory = []
        self._checks = []
        self._states = {}
        self.path = None
        if root is not None:
            self.path = os.path.join(os.fspath(root), digest)
            os.makedirs(self.path, exist_ok=True)
            meta = os.path.join(self.path, "config.json")
            if not os.path.exists(meta):
                with open(meta, "w") as fh:
                    json.dump({"hash": digest, "config": config or {}}, fh, indent=1)

    @property
    def csv(self):
        return None if self.path is None else os.path.join(self.path, "results.csv")

    def rows(self):
        """Every stored row, as a DataFrame with the store's columns."""
        if self.path is None:
            return pd.DataFrame(self._memory, columns=self.columns)
        if not os.path.exists(self.csv):
            return pd.DataFrame(columns=self.columns)
        frame = pd.read_csv(self.csv, keep_default_na=True)
        for col in ("eval_strength_unit",):
            if col in frame:
                frame[col] = frame[col].fillna("")
        return frame[self.columns]

    def append(self, rows, check_rows=()):
        """Add rows (written at once: a group of networks is kept whole).

        The checks' records are written first: a group whose rows are stored
        is complete, checks included.
        """
        if check_rows:
            checks = pd.DataFrame(list(check_rows), columns=CHECK_COLUMNS)
            if self.path is None:
                self._checks += checks.to_dict("records")
            else:
                _append_csv(os.path.join(self.path, "checks.csv"), checks)
        if not rows:
            return
        frame = pd.DataFrame(rows, columns=self.columns)
        if self.path is None:
            self._memory += frame.to_dict("records")
            return
        _append_csv(self.csv, frame)

    def checks(self):
        """The stored obfuscation-check records."""
        if self.path is None:
            return pd.DataFrame(self._checks, columns=CHECK_COLUMNS)
        path = os.path.join(self.path, "checks.csv")
        if not os.path.exists(path):
            return pd.DataFrame(columns=CHECK_COLUMNS)
        return pd.read_csv(path)

    def done_keys(self):
        """Keys of the networks whose rows are stored."""
        frame = self.rows()
        return {(int(r.seed), str(r.noise_family), _key_float(r.noise_strength),
                 str(r.structure), _key_float(r.trace_scale), str(r.train_family),
                 _key_float(r.train_strength), _key_float(r.train_ratio))
                for r in frame.itertuples()} if len(frame) else set()

    def save_state(self, name, state):
        """Cache a network's weights (a state dict) under ``name``."""
        if self.path is None:
            self._states[name] = state
            return
        torch.save(state, os.path.join(self.path, f"{name}.pt"))

    def load_state(self, name):
        """The cached weights ``name``, or None."""
        if self.path is None:
            return self._states.get(name)
        path = os.path.join(self.path, f"{name}.pt")
        return torch.load(path, weights_only=True) if os.path.exists(path) else None
