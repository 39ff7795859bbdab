"""The experiment engines side by side: stacked against sequential, in the same run.

Two measurements on the paper's network (PaperCNN, noise at body.tanh2,
d = 3136), digits upsampled to 28x28, batch 64, Adam:

* **retraining**: N networks of one seed (structures cycling full,
  diagonal, isotropic, none, as a seed's networks do), one epoch each,
  trained one skorch net at a time (sequential) or together on their
  frozen front (stacked), for N = 1, 2, 4, 8, 16: networks per minute;
* **the seeds together**: the networks of S seeds (11 each, the main job's
  mix: 4 full, 4 diagonal, 2 isotropic, 1 without noise) retrained one
  epoch as S stacks of one seed each or as one stack of all (each network
  on its own seed's front and order, the same steps either way): networks
  per minute;
* **a whole experiment** (pairs, retraining, evaluation on clean images,
  a modification and FGSM under both protocols): networks per minute and
  attack evaluations per minute, ``Experiment(engine=...)`` each way.

Both are timed with ``_common.interleaved``: one untimed call of each side,
then the sides alternate and each keeps its best time.

Usage: ``python benchmarks/perf_engine.py [--quick] [--out DIR]``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, interleaved, print_table, write_csv  # noqa: E402

SITE = "body.tanh2"
STRUCTURES = ("full", "diagonal", "isotropic", "none")


def _data(n_train, n_test):
    from structnoise.evaluation.presets import _digits28

    return _digits28(n_train, n_test)()


def _net(ensemble=2):
    import torch

    from structnoise import NoisyNeuralNetClassifier
    from structnoise.models import PaperCNN

    return NoisyNeuralNetClassifier(PaperCNN, optimizer=torch.optim.Adam, lr=1e-3,
                                    batch_size=64, train_split=None,
                                    iterator_train__shuffle=True, noise_ensemble=ensemble,
                                    verbose=0)


def seed_setup(n_train, seed=0):
    """One seed to retrain on: its settings, trainer, base network and activation pairs.

    Digits at 28x28 (``n_train`` of them), noise learned from
    ``GaussianNoise(0.3)`` at :data:`SITE`, one epoch each way.

    Returns
    -------
    settings, sequential, base, pairs, X, y
    """
    from structnoise import StructuredNoiseFitter
    from structnoise.evaluation.protocols import get_protocols
    from structnoise.evaluation.settings import RunSettings
    from structnoise.evaluation.trainer import SequentialTrainer
    from structnoise.sources import GaussianNoise

    X, y, _, _ = _data(n_train, 10)
    settings = RunSettings(_net(), (SITE,), {SITE: 3136},
                           StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                           (("noise", GaussianNoise(0.3)),), (), get_protocols("paper"),
                           base_epochs=1, noise_epochs=1, pair_batch_size=256)
    sequential = SequentialTrainer()
    base = sequential.train_base(settings, seed, X, y)
    pairs = sequential.activation_pairs(settings, seed, 0, base, X, y)
    return settings, sequential, base, pairs, X, y


#: the main job's stack of one seed: (structure, how many)
MAIN_JOB_STACK = (("full", 4), ("diagonal", 4), ("isotropic", 2), ("none", 1))


def main_job_plans(seed=0):
    """The main job's networks of one seed (:data:`MAIN_JOB_STACK`), noise from GaussianNoise.

    Each noisy network has its own strength, so its own retraining seed and noise draws.
    """
    from structnoise.evaluation.plan import NetPlan

    plans = []
    for structure, count in MAIN_JOB_STACK:
        for i in range(count):
            if structure == "none":
                plans.append(NetPlan(seed, "none", None, None, "none", f"none{i}", "any",
                                     float("nan")))
            else:
                plans.append(NetPlan(seed, structure, 2.0, 0, "GaussianNoise", f"noise{i}",
                                     "naturalistic", 0.3 + 0.01 * i))
    return plans


def seeds_together(n_train, n_seeds=3, repeats=2):
    """One epoch of ``n_seeds`` seeds' networks: a stack per seed against one stack of all.

    Returns one row per way, networks a minute and the ratio.
    """
    from structnoise._random import derive_seed
    from structnoise.evaluation.stacked import StackedTrainer

    stacked = StackedTrainer()
    bases, plans, noises = {}, [], []
    for seed in range(n_seeds):
        settings, sequential, bases[seed], pairs, X, y = seed_setup(n_train, seed)
        mine = main_job_plans(seed)
        plans += mine
        noises += [sequential.fitted_noise(settings, p, pairs) for p in mine]
    orders = {s: derive_seed(s, "stacked-order") for s in bases}

    def per_seed():
        for seed in bases:
            mine = [k for k, p in enumerate(plans) if p.seed == seed]
            stacked.train_networks(settings, [plans[k] for k in mine], bases[seed],
                                   [noises[k] for k in mine], X, y, order_seed=orders[seed])

    def all_seeds():
        stacked.train_networks(settings, plans, bases, noises, X, y, order_seed=orders)

    best = interleaved({"a stack per seed": per_seed, "one stack": all_seeds}, repeats=repeats)
    # the digits hold 1797 images: n_train beyond that trains on what there is
    rows = [{"way": way, "seeds": n_seeds, "networks": len(plans), "images": len(X),
             "seconds": sec, "nets_per_min": 60 * len(plans) / sec}
            for way, sec in best.items()]
    rows.append({"way": "one stack / a stack per seed", "seeds": n_seeds,
                 "networks": len(plans), "images": len(X),
                 "seconds": best["one stack"] / best["a stack per seed"],
                 "nets_per_min": best["a stack per seed"] / best["one stack"]})
    return rows


def retraining(n_train, counts, repeats=3):
    """Seconds to retrain N networks one epoch, each engine, for each N (best of ``repeats``)."""
    from structnoise.evaluation.plan import NetPlan
    from structnoise.evaluation.stacked import StackedTrainer

    settings, sequential, base, pairs, X, y = seed_setup(n_train)
    stacked = StackedTrainer()
    rows = []
    for n in counts:
        plans = []
        for i in range(n):
            structure = STRUCTURES[i % len(STRUCTURES)]
            if structure == "none":
                plans.append(NetPlan(0, "none", None, None, "none", f"none{i}", "any",
                                     float("nan")))
            else:
                plans.append(NetPlan(0, structure, 2.0, 0, "GaussianNoise", f"noise{i}",
                                     "naturalistic", 0.3))
        noises = [sequential.fitted_noise(settings, p, pairs) for p in plans]

        def one_at_a_time(plans=plans, noises=noises):
            for plan, noise in zip(plans, noises, strict=True):
                sequential.train_network(settings, plan, base, noise, X, y)

        def together(plans=plans, noises=noises):
            stacked.train_networks(settings, plans, base, noises, X, y, order_seed=0)

        best = interleaved({"sequential": one_at_a_time, "stacked": together}, repeats=repeats)
        seq, stk = best["sequential"], best["stacked"]
        rows.append({"networks": n, "sequential_s": seq, "stacked_s": stk,
                     "sequential_nets_per_min": 60 * n / seq,
                     "stacked_nets_per_min": 60 * n / stk, "stacked_over_sequential": seq / stk})
    return rows


def experiment(n_train, n_test, seeds, repeats=2):
    """A whole small experiment each way: networks and attack evaluations per minute.

    Each engine runs once untimed first, then the two alternate ``repeats``
    times and each keeps its best: timed once, in a fixed order, the first
    engine paid the process's warm-up (a stacked run took 12.8 s first and
    9.2 s second, same configuration).
    """
    from structnoise import StructuredNoiseFitter
    from structnoise.evaluation import Experiment
    from structnoise.sources import FGSM, Corruption

    X, y, Xt, yt = _data(n_train, n_test)
    done = {}

    def run(engine):
        exp = Experiment(_net(), SITE, [FGSM(eps=0.1), Corruption("rotate", strength=2.0)],
                         [FGSM(eps=0.1), Corruption("rotate", strength=2.0)],
                         noise=StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                         seeds=tuple(range(seeds)), base_epochs=1, noise_epochs=1,
                         eot_samples=2, engine=engine, verbose=0)
        done[engine] = (exp, exp.run(X, y, Xt, yt))

    best = interleaved({engine: (lambda e=engine: run(e)) for engine in ("sequential", "stacked")},
                       repeats=repeats)
    rows = []
    for engine in ("sequential", "stacked"):
        exp, out = done[engine]
        seconds = best[engine]
        attacks = len(out[out.eval_kind == "adversarial"])
        n_nets = exp.n_networks_trained_
        rows.append({"engine": engine, "seconds": seconds, "networks": n_nets,
                     "nets_per_min": 60 * n_nets / seconds,
                     "attack_evaluations_per_min": 60 * attacks / seconds})
    rows.append({"engine": "stacked / sequential", "seconds": rows[0]["seconds"]
                 / rows[1]["seconds"], "networks": rows[1]["networks"],
                 "nets_per_min": rows[1]["nets_per_min"] / rows[0]["nets_per_min"],
                 "attack_evaluations_per_min": rows[1]["attack_evaluations_per_min"]
                 / rows[0]["attack_evaluations_per_min"]})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    if args.quick:
        train = retraining(200, (1, 2, 4), repeats=1)
        seeds = seeds_together(128, 2, repeats=1)
        whole = experiment(200, 40, 1, repeats=1)
    else:
        train = retraining(1000, (1, 2, 4, 8, 16))
        seeds = seeds_together(1787, 3)
        whole = experiment(1000, 200, 2)
    write_csv(os.path.join(args.out, "engine_retraining.csv"), train)
    write_csv(os.path.join(args.out, "engine_seeds.csv"), seeds)
    write_csv(os.path.join(args.out, "engine_experiment.csv"), whole)
    print_table(train, "Retraining N networks one epoch: stacked vs sequential")
    print_table(seeds, "The seeds' networks one epoch: a stack per seed or one stack")
    print_table(whole, "A whole experiment, each engine")
    return train, seeds, whole


if __name__ == "__main__":
    main()
