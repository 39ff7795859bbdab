"""
Noise in a scikit-learn Pipeline
================================

``ActivationPairs`` turns images into paired activations of a trained
network; ``StructuredNoiseFitter`` learns the noise and, as a transformer,
adds it to the clean activations; a logistic regression reads them out.
"""

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from structnoise import ActivationPairs, NoisyNeuralNetClassifier, StructuredNoiseFitter
from structnoise.datasets import load_digits_images
from structnoise.models import DigitsMLP
from structnoise.sources import FGSM

torch.manual_seed(0)
X, y = load_digits_images()
X_train, y_train, X_test, y_test = X[:1200], y[:1200], X[1200:], y[1200:]
net = NoisyNeuralNetClassifier(DigitsMLP, max_epochs=15, lr=0.1, batch_size=32,
                               train_split=None, verbose=0).fit(X_train, y_train)

pipe = make_pipeline(ActivationPairs(net, layers="body.2", source=FGSM(eps=0.1)),
                     StructuredNoiseFitter(random_state=0),
                     LogisticRegression(max_iter=1000))
pipe.fit(X_train, y_train)
print("read-out accuracy on noisy activations:", pipe.score(X_test, y_test))
