"""
Robust accuracy of a noisy network: AutoAttack's version for randomized defences
=================================================================================

A network with structured noise in a hidden layer draws new noise at every
pass. An attack that sees one draw per gradient follows the noise and can
make the network look robust. AutoAttack's ``version="rand"`` attacks such a
network with APGD on the cross-entropy loss and then APGD on the DLR loss,
each averaging its gradients over 20 noise draws, and counts an image as
robust only if both attacks leave it correct.
:func:`~structnoise.sources.autoattack_rand` builds that ensemble. Here it
is set beside each of its attacks alone and beside one-draw attacks.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.sources import FGSM, autoattack_rand

X, y = load_digits_images()
X_train, y_train = X[:1200], y[:1200]
X_test, y_test = torch.from_numpy(X[1200:1320]), y[1200:1320]
with torch.random.fork_rng():  # seeded here, the caller's stream left as it was
    torch.manual_seed(0)
    net = NoisyNeuralNetClassifier(
        DigitsMLP, noise=StructuredNoiseFitter(trace_scale=2.0, random_state=0),
        noise_source=FGSM(eps=0.1, random_state=0), noise_layers="body.2", max_epochs=20,
        lr=0.1, batch_size=32, train_split=None, verbose=0, noise_ensemble=4,
    ).fit(X_train, y_train)


def accuracy(images):
    return float(np.mean(net.predict(images.numpy()) == y_test))


# %%
# Each attack alone, with one noise draw per gradient (how the paper attacks
# its networks) and with 20 (EOT). An image is robust only if both attacks
# leave it correct: the worst case, image by image, is what AutoAttack
# reports, and what an experiment's ``worst_case`` rows hold.
eps = 0.1
results = {"clean": float(np.mean(net.predict(X_test.numpy()) == y_test))}
for draws in (1, 20):
    ensemble = autoattack_rand(eps, eot_samples=draws, max_iter=10, random_state=0)
    outcomes = []
    for member in ensemble.attacks:
        member = member.set_params(random_state=0)
        name = "APGD-DLR" if member.loss_type == "difference_logits_ratio" else "APGD-CE"
        correct = net.predict(member.generate(net, X_test, y_test).numpy()) == y_test
        outcomes.append(correct)
        results[f"{name}, {draws} draw(s)"] = float(correct.mean())
    results[f"worst case, {draws} draw(s)"] = float(np.logical_and(*outcomes).mean())
    # the cascade runs the second attack only on the images the first left
    # standing; its output is judged again here, on fresh noise draws
    cascade = ensemble.generate(net, X_test, y_test)
    results[f"cascade's output, {draws} draw(s)"] = float(
        np.mean(net.predict(cascade.numpy()) == y_test))
for name, value in results.items():
    print(f"{name:34s} {value:.3f}")

# %%
# On a deterministic network the cascade's output scores exactly the worst
# case. On a noisy one every judgement draws fresh noise, which moves both
# numbers: an image the cascade saw fooled can be classified correctly when
# judged again (the cascade's output scores higher), and an image near its
# decision boundary is more likely to be judged wrong once in two
# judgements than in one (the worst case of separate judgements scores
# lower, as AutoAttack's rand version counts it). More draws in the
# network's prediction (``noise_ensemble``) shrink both effects.
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.barh(list(results), list(results.values()), color="C0")
ax.invert_yaxis()
ax.set_xlim(0, 1)
ax.set_xlabel(f"accuracy of the 4-draw ensemble (eps = {eps})")
fig.tight_layout()
