"""
The paper's protocol, then honestly
===================================

The authors' recipe on digits (upsampled to 28x28 for their network): a
noise-free base network, the covariance of the L=2 activation deltas under
FGSM (plain sample covariance plus ``1e-4`` on the diagonal, trace scaled to
``2 d``), freeze the layers up to the noisy one, re-initialise and retrain
the rest with the noise, and predict with the mean logits of 10 noise draws.
Full, diagonal and isotropic noise of the same trace are compared with the
"No Noise" network, which goes through the same freeze and re-initialisation.

Each network is attacked twice with the paper's PGD (ART's defaults: step
0.1, no random start; 10 iterations here): as the paper does, every gradient
seeing one noise draw of ``net.module_``, and with EOT against the 10-draw
ensemble that makes the predictions (``eot_samples=2``: each gradient averages 2 x 10 draws).
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import PaperCNN
from structnoise.sources import FGSM, LinfPGD

X8, y = load_digits_images()
X = F.interpolate(torch.from_numpy(X8), size=(28, 28), mode="bilinear").clamp(0, 1).numpy()
X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:1550], y[1400:1550]


def paper_net(structure):
    noise = None if structure == "none" else StructuredNoiseFitter(
        shrinkage=None, reg_covar=1e-4, trace_scale=2.0, structure=structure, random_state=0)
    return NoisyNeuralNetClassifier(
        PaperCNN, noise=noise, noise_source=None if noise is None else FGSM(eps=0.1),
        noise_layers=PaperCNN.NOISE_SITES[2], noise_retrain="after", noise_warmup_epochs=10,
        noise_ensemble=10, max_epochs=20, optimizer=torch.optim.Adam, lr=1e-3,
        batch_size=64, train_split=None, verbose=0)


pgd = dict(eps=0.1, nb_iter=10, eps_iter=0.1, rand_init=False, random_state=0)
results = {}
for structure in ("none", "full", "diagonal", "isotropic"):
    torch.manual_seed(0)  # the same base network for every condition
    net = paper_net(structure).fit(X_train, y_train)
    paper = LinfPGD(**pgd).generate(net.module_, X_test, y_test)  # one draw per gradient
    stochastic = structure != "none"
    honest = LinfPGD(**pgd, eot_samples=2 if stochastic else 1).generate(net, X_test, y_test)
    results[structure] = [net.score(X_test, y_test), net.score(paper.numpy(), y_test),
                          net.score(honest.numpy(), y_test)]
    print(f"{structure:>9}: clean {results[structure][0]:.2f}  PGD (paper) "
          f"{results[structure][1]:.2f}  PGD (EOT) {results[structure][2]:.2f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
labels = ["clean", "PGD, paper protocol", "PGD, EOT on the ensemble"]
width = 0.2
for i, (structure, accs) in enumerate(results.items()):
    ax.bar(np.arange(3) + (i - 1.5) * width, accs, width, label=structure)
ax.set_xticks(np.arange(3), labels)
ax.set_ylabel("accuracy (10-draw ensemble)")
ax.set_ylim(0, 1)
ax.legend(fontsize=8)
fig.tight_layout()
