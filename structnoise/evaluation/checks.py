"""Checks that a robustness number is real, not gradient obfuscation.

The checks of Athalye et al. (2018), Carlini et al. (2019) and AutoAttack's
``checks.py``, as functions of any fitted net (or torch module) and data.
Each returns one tidy record: ``check`` (its name), ``passed`` (False flags
a problem), the measured ``values`` and a readable ``detail``;
:func:`run_checks` runs them all into a DataFrame.

A stochastic net is attacked through what it predicts with (its
``noise_ensemble``) with EOT, as the honest protocol does.
"""

import copy

import numpy as np
import pandas as pd
import torch

from .._inference import predict_labels
from .._validation import validate_images, validate_labels
from ..scoring import is_stochastic
from ..sources import LinfPGD, SquareAttack
from ..sources.eot import DEFAULT_EOT_SAMPLES

__all__ = ["check_budget_to_zero", "check_more_iterations", "check_eot_stronger",
           "check_gradient_free_weaker", "check_randomness", "check_unbounded", "run_checks"]


def _data(X, y):
    Xt = validate_images(X).float()
    yt = validate_labels(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y),
                         Xt.shape[0])
    return Xt, yt.numpy()


def _attack_accuracy(net, source, X, y):
    """Accuracy of ``net`` on ``source``'s images of ``X`` (fresh noise draws)."""
    X_adv = source.generate(net, X, y)
    return float(np.mean(predict_labels(net, X_adv) == y))


def _record(check, passed, detail, **values):
    return {"check": check, "passed": bool(passed), "detail": detail, **values}


def _eot(net, eot_samples):
    return int(eot_samples) if is_stochastic(net) else 1


def check_budget_to_zero(net, X, y, *, eps_grid=(0.1, 0.2, 0.3, 0.5), nb_iter=10,
                         eot_samples=DEFAULT_EOT_SAMPLES, threshold=0.1, random_state=0):
    """Accuracy under PGD falls towards 0 as the budget grows.

    Parameters
    ----------
    net : fitted net or torch.nn.Module
        The network.
    X, y : array-like
        Images in [0, 1] and labels.
    eps_grid : tuple of float, default=(0.1, 0.2, 0.3, 0.5)
        L-infinity budgets, increasing.
    nb_iter : int, default=10
        PGD iterations.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        EOT draws for a stochastic net.
    threshold : float, default=0.1
        Accuracy the largest budget must reach.
    random_state : int, default=0
        Seeds the attacks.

    Returns
    -------
    record : dict
        ``passed`` when the largest budget leaves at most ``threshold`` and
        accuracy never rises by more than 0.02 with the budget.

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.checks import check_budget_to_zero
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X, y = torch.rand(16, 1, 8, 8), torch.zeros(16, dtype=torch.long)
    >>> check_budget_to_zero(model, X, y, eps_grid=(0.5, 1.0), nb_iter=5)["check"]
    'budget_to_zero'
    """
    X, y = _data(X, y)
    k = _eot(net, eot_samples)
    accs = [_attack_accuracy(net, LinfPGD(eps=e, nb_iter=nb_iter, eps_iter=2.5 * e / nb_iter,
                                          eot_samples=k, random_state=random_state), X, y)
            for e in eps_grid]
    monotone = all(b <= a + 0.02 for a, b in zip(accs, accs[1:], strict=False))
    passed = accs[-1] <= threshold and monotone
    detail = ", ".join(f"eps {e:g}: {a:.3f}" for e, a in zip(eps_grid, accs, strict=True))
    return _record("budget_to_zero", passed, detail, accuracies=accs, eot_samples=k)


def check_more_iterations(net, X, y, *, eps=0.1, nb_iter=10, factor=4,
                          eot_samples=DEFAULT_EOT_SAMPLES, tol=0.02, random_state=0):
    """More PGD iterations never help the defence (accuracy does not rise).

    Parameters
    ----------
    net : fitted net or torch.nn.Module
        The network.
    X, y : array-like
        Images and labels.
    eps : float, default=0.1
        L-infinity budget.
    nb_iter : int, default=10
        Base iterations (the other run uses ``factor`` times more).
    factor : int, default=4
        Iteration multiplier.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        EOT draws for a stochastic net.
    tol : float, default=0.02
        Allowed rise (noise of the estimate).
    random_state : int, default=0
        Seeds the attacks.

    Returns
    -------
    record : dict
        ``passed`` when ``acc(factor * nb_iter) <= acc(nb_iter) + tol``.

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.checks import check_more_iterations
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X, y = torch.rand(16, 1, 8, 8), torch.zeros(16, dtype=torch.long)
    >>> check_more_iterations(model, X, y, nb_iter=2)["passed"] in (True, False)
    True
    """
    X, y = _data(X, y)
    k = _eot(net, eot_samples)
    accs = [_attack_accuracy(net, LinfPGD(eps=eps, nb_iter=n, eps_iter=2.5 * eps / n,
                                          eot_samples=k, random_state=random_state), X, y)
            for n in (nb_iter, factor * nb_iter)]
    return _record("more_iterations", accs[1] <= accs[0] + tol,
                   f"{nb_iter} it: {accs[0]:.3f}, {factor * nb_iter} it: {accs[1]:.3f}",
                   accuracies=accs, eot_samples=k)


def check_eot_stronger(net, X, y, *, eps=0.1, nb_iter=10, eot_samples=DEFAULT_EOT_SAMPLES, tol=0.02,
                       random_state=0):
    """An EOT attack on what the net predicts with is at least as strong as a single-draw one.

    The single-draw attack is the paper's: each gradient sees one noise draw
    of the bare module (``net.module_``); the EOT attack targets the net's
    prediction (its noise ensemble) with ``eot_samples`` draws per gradient.
    Both are judged on the net's predictions.

    Parameters
    ----------
    net : fitted net or torch.nn.Module
        The network.
    X, y : array-like
        Images and labels.
    eps : float, default=0.1
        L-infinity budget.
    nb_iter : int, default=10
        PGD iterations.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        EOT draws.
    tol : float, default=0.02
        Allowed excess of the EOT accuracy.
    random_state : int, default=0
        Seeds the attacks.

    Returns
    -------
    record : dict
        ``passed`` when ``acc(EOT) <= acc(single draw) + tol``.

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.checks import check_eot_stronger
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X, y = torch.rand(16, 1, 8, 8), torch.zeros(16, dtype=torch.long)
    >>> check_eot_stronger(model, X, y, nb_iter=2, eot_samples=2)["check"]
    'eot_stronger'
    """
    X, y = _data(X, y)
    pgd = LinfPGD(eps=eps, nb_iter=nb_iter, eps_iter=2.5 * eps / nb_iter,
                  random_state=random_state)
    bare = getattr(net, "module_", net)
    single = float(np.mean(predict_labels(net, pgd.generate(bare, X, y)) == y))
    eot = _attack_accuracy(net, copy.deepcopy(pgd).set_params(eot_samples=int(eot_samples)),
                           X, y)
    return _record("eot_stronger", eot <= single + tol,
                   f"EOT on the prediction ({eot_samples} draws): {eot:.3f}, one draw of "
                   f"the module per gradient: {single:.3f}",
                   accuracies=[single, eot], eot_samples=int(eot_samples))


def check_gradient_free_weaker(net, X, y, *, eps=0.1, nb_iter=10, square_iter=100,
                               eot_samples=DEFAULT_EOT_SAMPLES, tol=0.02, random_state=0):
    """A gradient-free attack (Square) is no stronger than white-box PGD.

    If Square beats PGD, the gradients mislead PGD: obfuscation.

    Parameters
    ----------
    net : fitted net or torch.nn.Module
        The network.
    X, y : array-like
        Images and labels.
    eps : float, default=0.1
        L-infinity budget of both attacks.
    nb_iter : int, default=10
        PGD iterations.
    square_iter : int, default=100
        Square attack iterations.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        EOT draws for a stochastic net (both attacks).
    tol : float, default=0.02
        Allowed excess of the PGD accuracy.
    random_state : int, default=0
        Seeds the attacks.

    Returns
    -------
    record : dict
        ``passed`` when ``acc(PGD) <= acc(Square) + tol``.

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.checks import check_gradient_free_weaker
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X, y = torch.rand(16, 1, 8, 8), torch.zeros(16, dtype=torch.long)
    >>> check_gradient_free_weaker(model, X, y, nb_iter=2, square_iter=5)["check"]
    'gradient_free_weaker'
    """
    X, y = _data(X, y)
    k = _eot(net, eot_samples)
    pgd = _attack_accuracy(net, LinfPGD(eps=eps, nb_iter=nb_iter, eps_iter=2.5 * eps / nb_iter,
                                        eot_samples=k, random_state=random_state), X, y)
    square = _attack_accuracy(net, SquareAttack(eps=eps, max_iter=square_iter, eot_samples=k,
                                                random_state=random_state), X, y)
    return _record("gradient_free_weaker", pgd <= square + tol,
                   f"PGD: {pgd:.3f}, Square: {square:.3f}", accuracies=[pgd, square],
                   eot_samples=k)


def check_randomness(net, X, *, n_repeats=3, eot_samples=1):
    """AutoAttack's randomness check: do repeated predictions differ?

    A net whose predictions change from call to call must be attacked with
    EOT (AutoAttack's "rand" version); the check flags a random net
    evaluated with ``eot_samples=1``.

    Parameters
    ----------
    net : fitted net or torch.nn.Module
        The network.
    X : array-like
        Images.
    n_repeats : int, default=3
        Prediction repeats.
    eot_samples : int, default=1
        The EOT draws the evaluation uses.

    Returns
    -------
    record : dict
        ``passed`` unless the predictions differ and ``eot_samples == 1``;
        ``values`` holds the fraction of images whose prediction changed.

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.checks import check_randomness
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> check_randomness(model, torch.rand(8, 1, 8, 8))["passed"]
    True
    """
    Xt = validate_images(X).float()
    preds = np.stack([predict_labels(net, Xt) for _ in range(int(n_repeats))])
    changed = float(np.mean((preds != preds[0]).any(0)))
    random = changed > 0
    passed = not random or int(eot_samples) > 1
    detail = (f"{100 * changed:.1f}% of predictions change between calls; "
              + ("evaluate with EOT" if random else "deterministic"))
    return _record("randomness", passed, detail, accuracies=[changed],
                   eot_samples=int(eot_samples))


def check_unbounded(net, X, y, *, nb_iter=20, eot_samples=DEFAULT_EOT_SAMPLES, threshold=0.05,
                    random_state=0, clip_min=0.0, clip_max=1.0):
    """An unbounded attack (budget = the whole pixel range) reaches 0 accuracy.

    Parameters
    ----------
    net : fitted net or torch.nn.Module
        The network.
    X, y : array-like
        Images and labels.
    nb_iter : int, default=20
        PGD iterations.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        EOT draws for a stochastic net.
    threshold : float, default=0.05
        Accuracy the attack must reach.
    random_state : int, default=0
        Seeds the attack.
    clip_min, clip_max : float, default=0.0, 1.0
        Pixel range (the budget is its width).

    Returns
    -------
    record : dict
        ``passed`` when the accuracy is at most ``threshold``.

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.checks import check_unbounded
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X, y = torch.rand(16, 1, 8, 8), torch.zeros(16, dtype=torch.long)
    >>> check_unbounded(model, X, y, nb_iter=10)["passed"]
    True
    """
    X, y = _data(X, y)
    k = _eot(net, eot_samples)
    eps = float(clip_max - clip_min)
    acc = _attack_accuracy(net, LinfPGD(eps=eps, nb_iter=nb_iter, eps_iter=eps / 4,
                                        eot_samples=k, clip_min=clip_min, clip_max=clip_max,
                                        random_state=random_state), X, y)
    return _record("unbounded", acc <= threshold, f"eps {eps:g}: {acc:.3f}", accuracies=[acc],
                   eot_samples=k)


def run_checks(net, X, y, *, eps=0.1, nb_iter=10, eot_samples=DEFAULT_EOT_SAMPLES,
               square_iter=100, tol=0.02, random_state=0):
    """Every check on one network; one row per check.

    Parameters
    ----------
    net : fitted net or torch.nn.Module
        The network.
    X, y : array-like
        Images in [0, 1] and labels (a small subset suffices).
    eps : float, default=0.1
        The evaluation budget.
    nb_iter : int, default=10
        PGD iterations.
    eot_samples : int, default=DEFAULT_EOT_SAMPLES
        EOT draws for a stochastic net.
    square_iter : int, default=100
        Square attack iterations.
    tol : float, default=0.02
        Tolerance of the comparisons.
    random_state : int, default=0
        Seeds the attacks.

    Returns
    -------
    checks : pandas.DataFrame
        Columns ``check``, ``passed``, ``detail``, ``accuracies``,
        ``eot_samples``.

    Examples
    --------
    >>> import torch
    >>> from structnoise.evaluation.checks import run_checks
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> X, y = torch.rand(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)
    >>> list(run_checks(model, X, y, nb_iter=2, square_iter=5).check)[:2]
    ['randomness', 'budget_to_zero']
    """
    k = _eot(net, eot_samples)
    common = dict(random_state=random_state)
    records = [
        check_randomness(net, X, eot_samples=k),
        check_budget_to_zero(net, X, y, eps_grid=tuple(sorted({round(eps, 6),
                                                               round(2 * eps, 6),
                                                               round(3 * eps, 6), 0.5})),
                             nb_iter=nb_iter, eot_samples=k, **common),
        check_more_iterations(net, X, y, eps=eps, nb_iter=nb_iter, eot_samples=k, tol=tol,
                              **common),
        check_eot_stronger(net, X, y, eps=eps, nb_iter=nb_iter, eot_samples=max(k, 2),
                           tol=tol, **common),
        check_gradient_free_weaker(net, X, y, eps=eps, nb_iter=nb_iter,
                                   square_iter=square_iter, eot_samples=k, tol=tol, **common),
        check_unbounded(net, X, y, nb_iter=2 * nb_iter, eot_samples=k, **common),
    ]
    return pd.DataFrame(records)
