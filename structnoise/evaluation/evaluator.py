"""Evaluating a trained network: clean, every evaluation source, every protocol; the checks.

Besides its rows, a network's evaluation returns its per-image outcomes:
which test images it got right under each evaluation and protocol. The
images are the same for every evaluation of a seed, so the store keeps them
and the worst case over attacks combines them image by image
(:mod:`~structnoise.evaluation.worst_case`).

One network's evaluation runs in one scoped seed derived from its
identity, so its rows do not depend on what ran before. Clean and
naturalistic accuracies take no gradient: measured once and reported under
every protocol. Attacks are configured by each protocol
(:mod:`~structnoise.evaluation.protocols`); two protocols that configure an
attack the same way (a deterministic network) share one measurement.
"""

import time

import numpy as np

from .._random import derive_seed, scoped_seed, seeded_clone
from .schema import as_number, describe_source

__all__ = ["evaluate_network", "evaluation_images"]


def _eval_columns(d):
    return {"eval_family": d["family"], "eval_label": d["label"], "eval_kind": d["kind"],
            "eval_strength": d["strength"], "eval_strength_unit": d["strength_unit"]}


def evaluate_network(settings, plan, net, X, y, train_seconds, measured=None):
    """Rows of one network, the records of its obfuscation checks, its per-image outcomes.

    Parameters
    ----------
    settings : RunSettings
        The run's settings (evaluation sources, protocols, checks).
    plan : NetPlan
        The network's plan.
    net : NoisyNeuralNetClassifier
        The trained network.
    X, y : ndarray
        Test images and labels.
    train_seconds : float
        Written in every row.
    measured : dict, default=None
        Clean and naturalistic accuracies measured beforehand (the stacked
        engine measures them for a seed's networks together, on the front
        computed once): ``{None: (correct, seconds)}`` for the clean images
        and ``{j: (correct, seconds)}`` for evaluation source ``j``, where
        ``correct`` says per image whether the network got it right. The
        rest are measured here.

    Returns
    -------
    rows, check_rows : list of dict
        One row per (evaluation, protocol); one record per check.
    outcomes : dict
        ``(eval_label, eval_protocol) -> ndarray of bool`` (one per test
        image, in order): which images the network got right, one entry
        per row.

    Examples
    --------
    >>> from structnoise import NoisyNeuralNetClassifier
    >>> from structnoise.datasets import load_digits_images
    >>> from structnoise.evaluation.evaluator import evaluate_network
    >>> from structnoise.evaluation.plan import NetPlan
    >>> from structnoise.evaluation.protocols import get_protocols
    >>> from structnoise.evaluation.settings import RunSettings
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.sources import FGSM
    >>> X, y = load_digits_images()
    >>> net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=1, lr=0.1, train_split=None,
    ...                                verbose=0).fit(X[:200], y[:200])
    >>> settings = RunSettings(net, ("body.2",), {}, None, (), (("fgsm", FGSM(eps=0.1)),),
    ...                        get_protocols(("paper", "eot")), 1, 1, 64)
    >>> plan = NetPlan(0, "none", None, None, "none", "none", "any", float("nan"), evals=(0,))
    >>> rows, _, outcomes = evaluate_network(settings, plan, net, X[200:260], y[200:260], 0.0)
    >>> [(r["eval_label"], r["eval_protocol"]) for r in rows]
    [('clean', 'paper'), ('clean', 'eot'), ('fgsm', 'paper'), ('fgsm', 'eot')]
    >>> bool(outcomes["fgsm", "eot"].mean() == rows[3]["accuracy"])
    True
    """
    stochastic = bool(net.noise_active_in_eval)
    k = int(net.noise_ensemble)
    base_row = {"seed": plan.seed, "noise_family": plan.noise_family,
                "noise_label": plan.noise_label, "noise_kind": plan.noise_kind,
                "noise_strength": plan.noise_strength, "structure": plan.structure,
                "trace_scale": as_number(plan.trace_scale),
                "noise_layers": ",".join(settings.layers),
                "train_family": plan.train_family, "train_strength": plan.train_strength,
                "train_ratio": plan.train_ratio, "ensemble": k if stochastic else 1,
                "n_images": int(X.shape[0]), "train_seconds": train_seconds}
    rows, outcomes = [], {}

    def add(description, protocol, correct, eot_samples, eot_draws, t0, seconds=None):
        correct = np.asarray(correct, dtype=bool)
        outcomes[description["label"], protocol.name] = correct
        rows.append({**base_row, **_eval_columns(description), "eval_protocol": protocol.name,
                     "eot_samples": eot_samples, "eot_draws": eot_draws,
                     "accuracy": float(correct.mean()),
                     "eval_seconds": time.perf_counter() - t0 if seconds is None
                     else seconds})

    measured = measured or {}
    seed = derive_seed(plan.seed, "eval", plan.noise_family, plan.structure, plan.augment)
    with scoped_seed(seed, net.device):
        t0 = time.perf_counter()
        clean, seconds = measured[None] if None in measured else (_correct(net, X, y), None)
        for protocol in settings.protocols:
            add(describe_source(None), protocol, clean, 0, 0, t0, seconds)
        for j in plan.evals:
            label, source = settings.eval_sources[j]
            d = describe_source(source, label)
            if source.kind != "adversarial":
                t0 = time.perf_counter()
                correct, seconds = measured[j] if j in measured else (
                    _correct(net, evaluation_images(plan.seed, j, source, X), y), None)
                for protocol in settings.protocols:
                    add(d, protocol, correct, 0, 0, t0, seconds)
                continue
            source = _seeded(source, plan.seed, j)
            by_setup = {}  # protocols that configure the attack alike share it
            for protocol in settings.protocols:
                t0 = time.perf_counter()
                setup = protocol.attack(source, net, stochastic)
                if setup.signature() not in by_setup:
                    X_adv = setup.source.generate(setup.target, X, y)
                    by_setup[setup.signature()] = protocol.correct(net, X_adv, y)
                add(d, protocol, by_setup[setup.signature()], setup.eot_samples,
                    setup.eot_draws, t0)
        # the checks draw on in the same stream, after the evaluation
        check_rows = _checks(settings, plan, net, X, y) if plan.check else []
    return rows, check_rows, outcomes


def _correct(net, X, y):
    """Which images the net's prediction gets right (what ``net.score`` averages)."""
    return np.asarray(net.predict(X)) == np.asarray(y)


def _seeded(source, seed, j):
    """A copy of evaluation source ``j`` with its seed's own random state."""
    return seeded_clone(source, derive_seed(seed, "eval-source", j))


def evaluation_images(seed, j, source, X):
    """The test images of naturalistic evaluation source ``j`` for ``seed`` (an array).

    The source draws from its own random state, derived from the seed and
    ``j``, so every network of a seed is evaluated on the same images.

    Parameters
    ----------
    seed : int
        The network's seed.
    j : int
        The source's index among the run's evaluation sources.
    source : ModificationSource
        A naturalistic source (a copy is seeded; the source is left as it is).
    X : ndarray
        The test images.

    Returns
    -------
    images : ndarray
        The modified images, shaped as ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise.evaluation.evaluator import evaluation_images
    >>> from structnoise.sources import Corruption
    >>> X = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    >>> a = evaluation_images(0, 1, Corruption("gaussian_noise", 3), X)
    >>> bool(np.array_equal(a, evaluation_images(0, 1, Corruption("gaussian_noise", 3), X)))
    True
    """
    return _seeded(source, seed, j).generate(None, X).numpy()


def _checks(settings, plan, net, X, y):
    from .checks import run_checks

    options = dict(settings.checks)
    n = int(options.pop("n_images", 100))
    frame = run_checks(net, X[:n], y[:n], **options)
    return [{"seed": plan.seed, "noise_family": plan.noise_family, "noise_label": plan.noise_label,
             "structure": plan.structure, "trace_scale": as_number(plan.trace_scale),
             "ensemble": int(net.noise_ensemble), **record,
             "accuracies": " ".join(f"{a:.4f}" for a in record["accuracies"])}
            for record in frame.to_dict("records")]
