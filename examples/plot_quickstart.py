"""
Quickstart: learn structured noise and look at it
=================================================

Train a small network on digits, collect (clean, attacked) activations at a
hidden layer, fit the Ledoit-Wolf noise and compare its covariance with the
trace-matched isotropic baseline.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from structnoise import ActivationPairs, NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.sources import FGSM

torch.manual_seed(0)
X, y = load_digits_images()
net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=20, lr=0.1, batch_size=32,
                               train_split=None, verbose=0).fit(X[:1200], y[:1200])
print("clean accuracy:", (net.predict(X[1200:]) == y[1200:]).mean())

# %%
# Paired activations at the second hidden layer (64 units) under FGSM
pairs = ActivationPairs(net, "body.4", FGSM(eps=0.1)).fit_transform(X[:1200], y[:1200])
full = StructuredNoiseFitter().fit(pairs)
iso = StructuredNoiseFitter(structure="isotropic").fit(pairs)
print(f"shrinkage {full.shrinkage_:.3f}; trace full {np.trace(full.covariance_):.3f}, "
      f"isotropic {np.trace(iso.covariance_):.3f}")

# %%
# The structured covariance concentrates its variance in few directions
eig = np.linalg.eigvalsh(full.covariance_)[::-1]
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].imshow(full.covariance_, cmap="RdBu", vmin=-abs(full.covariance_).max(),
               vmax=abs(full.covariance_).max())
axes[0].set_title("structured covariance (FGSM)")
axes[1].semilogy(eig, label="full")
axes[1].semilogy(np.linalg.eigvalsh(iso.covariance_)[::-1], label="isotropic")
axes[1].set_xlabel("eigenvalue rank")
axes[1].legend()
fig.tight_layout()
