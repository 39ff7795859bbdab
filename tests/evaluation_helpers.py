"""Shared by the evaluation tests: a tiny model, digits data, a small experiment."""

import pandas as pd
import torch

from structnoise import NoisyNeuralNetClassifier
from structnoise.evaluation import Experiment
from structnoise.sources import FGSM, Corruption, LinfPGD


class TinyNet(torch.nn.Module):
    """The tests' own model: a small MLP for 1x8x8 images."""

    def __init__(self):
        super().__init__()
        self.flat = torch.nn.Flatten()
        self.fc1 = torch.nn.Linear(64, 32)
        self.act = torch.nn.Tanh()
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.flat(x))))


def digits():
    from structnoise.datasets import load_digits_images

    X, y = load_digits_images()
    return X[:300], y[:300], X[300:360], y[300:360]


def make_experiment(**kw):
    net = NoisyNeuralNetClassifier(TinyNet, optimizer=torch.optim.Adam, lr=1e-2, batch_size=64,
                                   train_split=None, verbose=0, noise_ensemble=3)
    params = dict(noise_layers="act",
                  noise_sources=[FGSM(eps=0.1), Corruption("rotate", strength=2.0)],
                  eval_sources=[FGSM(eps=0.1),
                                LinfPGD(eps=0.1, nb_iter=3, eps_iter=0.1, rand_init=False),
                                Corruption("rotate", strength=2.0),
                                Corruption("gaussian_noise", 5)],
                  seeds=(0,), base_epochs=3, noise_epochs=2, eot_samples=2, verbose=0)
    params.update(kw)
    return Experiment(net, **params)


TIMING = ["train_seconds", "eval_seconds"]
ROW_KEY = ["seed", "noise_family", "noise_label", "noise_strength", "structure", "trace_scale",
           "train_family", "train_strength", "train_ratio", "eval_family", "eval_label",
           "eval_strength", "eval_protocol"]


def same_rows(a, b):
    """The rows agree, timing aside, whatever their order."""
    a = a.drop(columns=TIMING).sort_values(ROW_KEY).reset_index(drop=True)
    b = b.drop(columns=TIMING).sort_values(ROW_KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
