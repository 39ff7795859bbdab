"""Clean accuracy of a full-noise network against retraining epochs, on all 60000 images.

Usage: ``python benchmarks/measured/2026-12-03-cpu/full_noise_epochs_all_images.py
SOURCE TRACE_SCALE EPOCHS [PAIR_IMAGES]`` with SOURCE the index of the main job's
noise source (0 FGSM, 4 rotate, 5 obstruction) and PAIR_IMAGES the training images
the covariance is estimated on (default 5000, the main job's). About 2 minutes for
the base network and 15 to 20 s per epoch on 2 cores. The base network is the main
job's (5 epochs); the retraining is the paper's (Adam, lr 1e-3, batch 64, reshuffled
every epoch) on the frozen front computed once, the noise drawn as the net's hook
draws it; clean accuracy of the 10-draw ensemble on 2000 test images after each epoch.
"""

import math
import sys
import time

import torch

from structnoise import StructuredNoiseFitter
from structnoise._random import scoped_seed
from structnoise.evaluation.plan import NetPlan
from structnoise.evaluation.presets import _main_job_noise_sources, _mnist, _paper_net
from structnoise.evaluation.protocols import get_protocols
from structnoise.evaluation.settings import RunSettings
from structnoise.evaluation.stacked import StackedTrainer, accuracy_on_front
from structnoise.models import PaperCNN
from structnoise.splitting import split_module

SITE = PaperCNN.NOISE_SITES[2]


def main(index, trace_scale, epochs, pair_images=5000):
    X, y, Xt, yt = _mnist(None, 2000)()
    sources = _main_job_noise_sources()
    trainer = StackedTrainer()
    settings = RunSettings(_paper_net("cpu"), (SITE,), {SITE: 3136},
                           StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                           tuple((None, s) for s in sources), (), get_protocols("paper"),
                           base_epochs=5, noise_epochs=1, pair_batch_size=256,
                           pair_images=pair_images)
    base = trainer.train_base(settings, 0, X, y)
    pairs = trainer.activation_pairs(settings, 0, index, base, X, y)
    plan = NetPlan(0, "full", trace_scale, index, "x", "x", "adversarial", 0.1)
    noise = trainer.fitted_noise(settings, plan, pairs)
    H, Ht = (trainer.front_activations(settings, base, A) for A in (X, Xt))
    net = trainer.prepared_net(settings, plan, base, noise, X, y, scoped_seed(1))
    _, back = split_module(net.module_, SITE)
    module = net.noise_modules_[SITE]
    optimizer = torch.optim.Adam([p for p in back.parameters() if p.requires_grad], lr=1e-3)
    order_generator, labels = torch.Generator().manual_seed(1), torch.as_tensor(y).long()
    accuracies, t0 = [], time.perf_counter()
    for _ in range(epochs):
        back.train()
        order = torch.randperm(len(H), generator=order_generator)
        for i in range(0, len(H), 64):
            rows = order[i:i + 64]
            noisy = module.add_noise(H[rows], net.noise_control_.scale * module.scale)
            loss = torch.nn.functional.cross_entropy(back(noisy), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracies.append(accuracy_on_front(net, SITE, Ht, yt))
    print(f"{type(sources[index]).__name__} tr {trace_scale} pairs {pair_images} "
          f"epochs 1..{epochs}: "
          + " ".join(f"{a:.3f}" for a in accuracies)
          + f" ({time.perf_counter() - t0:.0f} s, {math.ceil(len(H) / 64)} steps an epoch)")


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]),
         *(int(a) for a in sys.argv[4:5]))
