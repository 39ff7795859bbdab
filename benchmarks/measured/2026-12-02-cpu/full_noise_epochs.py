"""Clean accuracy of a full-noise network against retraining epochs, at the main job's size.

Usage: ``python benchmarks/measured/2026-12-02-cpu/full_noise_epochs.py`` (about 5 minutes
on 2 cores). The main job's training (20000 MNIST images, base network 5 epochs,
activation pairs on 5000 images) and full noise from FGSM (tr 2) and rotate
(tr 0.5), retrained with the sequential engine one epoch at a time and scored on
2000 test images after each.
"""

import time

from structnoise import StructuredNoiseFitter
from structnoise.evaluation.plan import NetPlan
from structnoise.evaluation.presets import (
    _main_job_noise_sources,
    _mnist,
    _paper_net,
)
from structnoise.evaluation.protocols import get_protocols
from structnoise.evaluation.settings import RunSettings
from structnoise.evaluation.trainer import SequentialTrainer
from structnoise.models import PaperCNN

SITE = PaperCNN.NOISE_SITES[2]
#: the main job's size on 2026-12-02, when this ran (it has since moved to all 60000 images)
MAIN_JOB = dict(n_train=20000, base_epochs=5, pair_images=5000)


def main(max_epochs=12):
    X, y, Xt, yt = _mnist(MAIN_JOB["n_train"], 2000)()
    sources = _main_job_noise_sources()
    trainer = SequentialTrainer()
    base = None
    for index, trace_scale in ((0, 2.0), (4, 0.5)):  # FGSM, rotate
        settings = RunSettings(_paper_net("cpu"), (SITE,), {SITE: 3136},
                               StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                               tuple((None, s) for s in sources), (), get_protocols("paper"),
                               base_epochs=MAIN_JOB["base_epochs"], noise_epochs=1,
                               pair_batch_size=256, pair_images=MAIN_JOB["pair_images"])
        if base is None:
            base = trainer.train_base(settings, 0, X, y)
        pairs = trainer.activation_pairs(settings, 0, index, base, X, y)
        plan = NetPlan(0, "full", trace_scale, index, "x", "x", "adversarial", 0.1)
        noise = trainer.fitted_noise(settings, plan, pairs)
        t0 = time.perf_counter()
        net, _ = trainer.train_network(settings, plan, base, noise, X, y)
        accuracies = [float(net.score(Xt, yt))]
        for _ in range(max_epochs - 1):
            net.partial_fit(X, y)
            accuracies.append(float(net.score(Xt, yt)))
        print(f"{type(sources[index]).__name__} tr {trace_scale} epochs 1..{max_epochs}: "
              + " ".join(f"{a:.3f}" for a in accuracies)
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
