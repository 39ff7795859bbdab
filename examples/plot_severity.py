"""
Accuracy against corruption severity
====================================

A network with noise learned from Gaussian blur, its isotropic twin and the
noise-free network, on blur and on contrast at severities 1-5.
"""

import pandas as pd
import torch

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.plotting import plot_accuracy_curves
from structnoise.scoring import robustness_report
from structnoise.sources import Corruption

X, y = load_digits_images()
X_train, y_train, X_test, y_test = X[:1200], y[:1200], X[1200:], y[1200:]
rows = []
for label, structure in [("none", None), ("full", "full"), ("isotropic", "isotropic")]:
    torch.manual_seed(0)
    kw = {} if structure is None else dict(
        noise=StructuredNoiseFitter(structure=structure, random_state=0),
        noise_source=Corruption("gaussian_blur", 3, random_state=0), noise_layers="body.2")
    net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=15, lr=0.1, batch_size=32,
                                   train_split=None, verbose=0, **kw).fit(X_train, y_train)
    for name in ["gaussian_blur", "contrast"]:
        report = robustness_report(
            net, X_test, y_test, {s: Corruption(name, s, random_state=0) for s in range(1, 6)},
            n_repeats=3, clean=False)
        for _, r in report.iterrows():
            rows.append({"corruption": name, "severity": r.source, "noise": label,
                         "accuracy": r.accuracy_mean})
frame = pd.DataFrame(rows)

# %%
for name, g in frame.groupby("corruption"):
    plot_accuracy_curves(g, x="severity", hue="noise", title=name)
