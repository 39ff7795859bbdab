"""Clean accuracy of full-noise networks (main-job training) against retraining epochs."""
import time, numpy as np, torch
from structnoise import StructuredNoiseFitter
from structnoise.evaluation.presets import _mnist, _paper_net, _main_job_noise_sources, MAIN_JOB
from structnoise.evaluation.plan import NetPlan
from structnoise.evaluation.protocols import get_protocols
from structnoise.evaluation.settings import RunSettings
from structnoise.evaluation.trainer import SequentialTrainer
from structnoise.models import PaperCNN
SITE = PaperCNN.NOISE_SITES[2]
X, y, Xt, yt = _mnist(MAIN_JOB["n_train"], 2000)()
src = _main_job_noise_sources()
for idx, tr in ((0, 2.0), (4, 0.5)):  # FGSM (tr 2), rotate (tr 0.5)
    settings = RunSettings(_paper_net("cpu"), (SITE,), {SITE: 3136},
                           StructuredNoiseFitter(shrinkage=None, reg_covar=1e-4),
                           tuple((None, s) for s in src), (), get_protocols("paper"),
                           base_epochs=MAIN_JOB["base_epochs"], noise_epochs=1,
                           pair_batch_size=256, pair_images=MAIN_JOB["pair_images"])
    t = SequentialTrainer()
    base = t.train_base(settings, 0, X, y) if idx == 0 else base
    pairs = t.activation_pairs(settings, 0, idx, base, X, y)
    plan = NetPlan(0, "full", tr, idx, "x", "x", "adversarial", 0.1)
    noise = t.fitted_noise(settings, plan, pairs)
    t0 = time.perf_counter()
    net, _ = t.train_network(settings, plan, base, noise, X, y)
    accs = [float(net.score(Xt, yt))]
    for e in range(2, 13):
        net.partial_fit(X, y)
        accs.append(float(net.score(Xt, yt)))
    print(type(src[idx]).__name__, "tr", tr, "epochs 1..12:", " ".join(f"{a:.3f}" for a in accs),
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
