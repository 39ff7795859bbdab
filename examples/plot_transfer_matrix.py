"""
Transfer matrix: does structure learned from one modification help another?
===========================================================================

One network per noise source (plus the noise-free one and the trace-matched
isotropic noise), each evaluated on every evaluation source.
"""

import torch

from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.evaluation import transfer_matrix
from structnoise.models import DigitsMLP
from structnoise.plotting import plot_transfer_matrix
from structnoise.sources import FGSM, Corruption

torch.manual_seed(0)
X, y = load_digits_images()
net = NoisyNeuralNetClassifier(DigitsMLP, noise=StructuredNoiseFitter(random_state=0),
                               noise_layers="body.2", max_epochs=12, lr=0.1, batch_size=32,
                               train_split=None, verbose=0)
sources = {"fgsm": FGSM(eps=0.1), "blur": Corruption("gaussian_blur", 3, random_state=0)}
matrix = transfer_matrix(net, X[:1000], y[:1000], sources,
                         {**sources, "contrast": Corruption("contrast", 3)}, eot_samples=4)
print(matrix.round(3))
fig = plot_transfer_matrix(matrix, baseline="none")
