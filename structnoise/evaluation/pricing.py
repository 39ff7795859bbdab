"""A run priced before it runs: what a configuration means, and about how long it takes here.

:meth:`Experiment.price <structnoise.evaluation.Experiment.price>` counts
what a configuration trains and evaluates (networks, training passes over
images, attack evaluations, test images) and multiplies each phase's work
by unit costs measured on this machine by :func:`calibrate`: a few training
steps of the experiment's own network, a few input gradients and a few
forward passes at an attack's batch size (seconds, not minutes).

The model is deliberately simple, and its assumptions are stated here so
that its error can be read against a measurement (``benchmarks/perf_plan.py``
compares it with measured runs):

- a training pass costs the whole network's step per image, for the base
  networks and for the retraining (which trains only the layers after the
  noise site); the stacked engine trains a seed's networks together at
  :data:`STACKED_SPEEDUP` times the sequential rate (measured on 2 cores:
  1.9x at 11 networks, 2.2x at 16);
- a network with full (or low-rank) noise also draws it, per image trained
  on and per prediction draw: a product with a ``d x d`` triangular factor,
  timed at the site's width ``d``; fitting that noise costs a Cholesky
  factorisation of a ``d x d`` matrix;
- an attack costs its gradient steps (or, for Square, its queries) per
  image, times the noise draws each sees under the protocol; a deterministic
  network is attacked once for every protocol;
- every prediction costs ``noise_ensemble`` forward passes per image;
- activation pairs cost the noise source's attack on the pair images; the
  obfuscation checks cost their attacks on their images.
"""

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from .._random import scoped_seed

__all__ = ["Calibration", "calibrate", "attack_steps", "price_plan", "STACKED_SPEEDUP"]

#: retraining rate of the stacked engine over the sequential one (2 cores, 11 networks)
STACKED_SPEEDUP = 1.9
#: gradient steps assumed for an attack whose cost is unknown to the model
_UNKNOWN_STEPS = 100


@dataclass(frozen=True)
class Calibration:
    """Unit costs measured on this machine, in seconds per image.

    Parameters
    ----------
    train : float
        One training step of the whole network, per image.
    gradient : float
        One input gradient (forward and backward) at the attack batch size, per image.
    forward : float
        One forward pass without gradient, per image.
    seconds : float
        How long the calibration took.
    full_draw : float, default=0.0
        One full-noise draw at the noise site, per image.
    factorise : float, default=0.0
        One Cholesky factorisation of the site's covariance.

    Examples
    --------
    >>> from structnoise.evaluation.pricing import Calibration
    >>> Calibration(train=1e-4, gradient=5e-5, forward=2e-5, seconds=1.0).gradient
    5e-05
    """

    train: float
    gradient: float
    forward: float
    seconds: float
    full_draw: float = 0.0
    factorise: float = 0.0


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def calibrate(net, X, *, attack_batch=256, repeats=3, width=None):
    """Measure a training step, an input gradient and a forward pass of ``net``'s module.

    Parameters
    ----------
    net : NoisyNeuralNetClassifier
        The experiment's (unfitted) template: its module, optimizer, batch
        size and device. A clone is initialised; nothing is trained.
    X : ndarray of shape (N, C, H, W)
        Images of the run (the first batch is used).
    attack_batch : int, default=256
        Images per attack batch.
    repeats : int, default=3
        Each cost is the best of this many timings (after one warm-up).
    width : int, default=None
        The noise site's width ``d``: full-noise draws and the factorisation
        are timed at it (not timed when None).

    Returns
    -------
    calibration : Calibration

    Examples
    --------
    >>> import numpy as np
    >>> from structnoise import NoisyNeuralNetClassifier
    >>> from structnoise.evaluation.pricing import calibrate
    >>> from structnoise.models import DigitsMLP
    >>> X = np.random.default_rng(0).random((64, 1, 8, 8), dtype=np.float32)
    >>> cal = calibrate(NoisyNeuralNetClassifier(DigitsMLP, batch_size=32), X, attack_batch=64)
    >>> cal.train > 0 and cal.gradient > 0 and cal.forward > 0
    True
    """
    t0 = time.perf_counter()
    net = clone(net).set_params(verbose=0, noise=None, noise_source=None)
    with scoped_seed(0, net.device):
        net.initialize()
        module = net.module_
        device = next(module.parameters()).device
        batch = min(len(X), int(net.batch_size) if int(net.batch_size) > 0 else len(X))
        xb = torch.as_tensor(X[:batch]).to(device)
        with torch.no_grad():
            n_classes = module(xb[:1]).shape[-1]
        yb = torch.randint(0, n_classes, (batch,), device=device)
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = net.optimizer_

        def step():
            optimizer.zero_grad()
            criterion(module(xb), yb).backward()
            optimizer.step()

        reps = -(-min(attack_batch, 4 * len(X)) // len(X))
        xa = torch.as_tensor(np.concatenate([X] * reps)[:attack_batch]).to(device)
        ya = torch.randint(0, n_classes, (len(xa),), device=device)

        def gradient():
            x = xa.clone().requires_grad_(True)
            criterion(module(x), ya).backward()

        def forward():
            with torch.no_grad():
                module(xa)

        module.train()
        step()
        train = _best(step, repeats) / batch
        module.eval()
        gradient()
        forward()
        grad = _best(gradient, repeats) / len(xa)
        fwd = _best(forward, repeats) / len(xa)
        draw = factorise = 0.0
        if width:
            from ..fitters import NoiseModule

            d = int(width)
            g = torch.Generator().manual_seed(0)
            A = torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5
            cov = A @ A.T + torch.eye(d, dtype=torch.float64)
            factorise = _best(lambda: torch.linalg.cholesky(cov), 1)
            noise = NoiseModule(torch.linalg.cholesky(cov).float().numpy(), n_features=d)
            h = torch.zeros(attack_batch, d)
            noise(h)
            draw = _best(lambda: noise(h), repeats) / attack_batch
    return Calibration(train=train, gradient=grad, forward=fwd,
                       seconds=time.perf_counter() - t0, full_draw=draw, factorise=factorise)


def attack_steps(source):
    """``(gradient steps, forward queries)`` per image of one run of an attack.

    Parameters
    ----------
    source : ModificationSource
        An attack (a corruption costs nothing here).

    Returns
    -------
    steps : tuple of int

    Examples
    --------
    >>> from structnoise.evaluation.pricing import attack_steps
    >>> from structnoise.sources import AutoPGD, FGSM, SquareAttack
    >>> attack_steps(FGSM()), attack_steps(AutoPGD(max_iter=10, nb_random_init=2))
    ((1, 0), (20, 0))
    >>> attack_steps(SquareAttack(max_iter=30))
    (0, 30)
    """
    if source.kind != "adversarial":
        return 0, 0
    members = getattr(source, "attacks", None)
    if isinstance(members, (list, tuple)):
        grads, queries = zip(*(attack_steps(m) for m in members), strict=True)
        return sum(grads), sum(queries)
    params = source.get_params(deep=False)
    name = type(source).__name__
    if name == "FGSM":
        return 1, 0
    if name == "SquareAttack":
        return 0, int(params["max_iter"]) * int(params["nb_restarts"])
    if name == "AutoPGD":
        return int(params["max_iter"]) * int(params["nb_random_init"]), 0
    for key in ("nb_iter", "max_iterations", "n_iter"):
        if key in params:
            return int(params[key]), 0
    return _UNKNOWN_STEPS, 0


def price_plan(settings, plans, n_train, n_test, stochastic, calibration, *, stacked=True):
    """Counts and estimated seconds per phase of a planned run.

    Parameters
    ----------
    settings : RunSettings
        The run's settings.
    plans : list of NetPlan
        Its networks.
    n_train, n_test : int
        Training and test images.
    stochastic : callable
        ``stochastic(plan) -> bool``: whether the network draws noise when
        evaluated (a deterministic one is attacked once for every protocol).
    calibration : Calibration
        Unit costs (:func:`calibrate`).
    stacked : bool, default=True
        Whether the stacked engine retrains.

    Returns
    -------
    price : pandas.DataFrame
        Columns ``phase``, ``count`` (what the phase does, as a number),
        ``unit`` and ``seconds``; a last row "total".

    Examples
    --------
    >>> from structnoise.evaluation.pricing import Calibration, price_plan
    >>> from structnoise.evaluation.plan import NetPlan
    >>> from structnoise.evaluation.protocols import get_protocols
    >>> from structnoise.evaluation.settings import RunSettings
    >>> from structnoise import NoisyNeuralNetClassifier
    >>> from structnoise.models import DigitsMLP
    >>> from structnoise.sources import FGSM
    >>> settings = RunSettings(NoisyNeuralNetClassifier(DigitsMLP), ("body.2",), {}, None, (),
    ...                        (("fgsm", FGSM(eps=0.1)),), get_protocols("paper"), 2, 3, 64)
    >>> plans = [NetPlan(0, "none", None, None, "none", "none", "any", float("nan"),
    ...                  evals=(0,))]
    >>> cal = Calibration(train=1e-4, gradient=1e-4, forward=1e-5, seconds=0.1)
    >>> table = price_plan(settings, plans, 1000, 100, lambda p: False, cal)
    >>> table.phase.tolist()[-1], round(float(table.seconds.iloc[-1]), 3)
    ('total', 0.37)
    """
    cal = calibration
    seeds = sorted({p.seed for p in plans})
    k = int(settings.net.noise_ensemble)
    rows = []

    def add(phase, count, unit, seconds):
        rows.append({"phase": phase, "count": count, "unit": unit, "seconds": float(seconds)})

    add("base networks", len(seeds), "networks",
        len(seeds) * settings.base_epochs * n_train * cal.train)
    pair_images = n_train if settings.pair_images is None else min(n_train, settings.pair_images)
    sources = {(p.seed, p.noise_index) for p in plans if not p.shared and p.noise_index is not None}
    pair_seconds = 0.0
    for _, index in sources:
        grads, queries = attack_steps(settings.noise_sources[index][1])
        pair_seconds += pair_images * (grads * cal.gradient + queries * cal.forward
                                       + 2 * cal.forward)
    add("activation pairs", len(sources), "noise sources x seeds", pair_seconds)
    full = [p for p in plans if p.structure in ("full", "lowrank")]
    add("noise fits", len(full), "full-noise factorisations", len(full) * cal.factorise)
    speedup = STACKED_SPEEDUP if stacked else 1.0
    add("retraining", len(plans), "networks",
        len(plans) * settings.noise_epochs * n_train * cal.train / speedup
        + len(full) * settings.noise_epochs * n_train * cal.full_draw)
    # the draws each protocol's attack sees per gradient or query (paper: 1)
    protocol_draws = [int(getattr(p, "eot_samples", 1) or 1) for p in settings.protocols]
    attack_rows, attack_seconds, other_seconds = 0, 0.0, 0.0
    for plan in plans:
        noisy = stochastic(plan)
        draws_pred = k if noisy else 1
        # a prediction: its forward passes, and the full noise drawn in each
        predict = draws_pred * (cal.forward + (cal.full_draw if plan in full else 0.0))
        other_seconds += n_test * predict  # clean
        for j in plan.evals:
            source = settings.eval_sources[j][1]
            if source.kind != "adversarial":
                other_seconds += n_test * predict
                continue
            grads, queries = attack_steps(source)
            drawn = cal.full_draw if plan in full else 0.0
            for draws in (protocol_draws if noisy else [1]):
                attack_rows += 1
                attack_seconds += n_test * draws * (grads * (cal.gradient + drawn)
                                                    + queries * (cal.forward + drawn))
                attack_seconds += n_test * predict
    add("attacks", attack_rows, "attack runs", attack_seconds)
    add("clean and naturalistic", len(plans), "networks", other_seconds)
    if settings.checks is not None:
        checked = [p for p in plans if p.check]
        options = dict(settings.checks)
        n_images = int(options.get("n_images", 100))
        nb_iter = int(options.get("nb_iter", 10))
        eot = int(options.get("eot_samples", 8))
        square = int(options.get("square_iter", 100))
        # run_checks: about six PGD-sized attacks (some with EOT) and one Square
        per_net = n_images * (6 * nb_iter * eot * cal.gradient + square * eot * cal.forward)
        add("obfuscation checks", len(checked), "networks", len(checked) * per_net)
    table = pd.DataFrame(rows)
    total = pd.DataFrame([{"phase": "total", "count": len(plans) + len(seeds),
                           "unit": "networks with the bases", "seconds": table.seconds.sum()}])
    return pd.concat([table, total], ignore_index=True)
