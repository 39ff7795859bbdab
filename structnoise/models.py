"""Small reference networks with named layers to point noise at.

Every network is ``body`` (an ``nn.Sequential``, so its layers are named
``body.0``, ``body.1``, ...) followed by a linear ``head``. Pass the dotted
names to ``noise_layers`` or ``ActivationPairs(layers=...)``.
"""

from collections import OrderedDict

from torch import nn

__all__ = ["DigitsMLP", "DigitsCNN", "MNISTCNN", "ColourCNN", "PaperCNN"]


class _BodyHead(nn.Module):
    def forward(self, x):
        return self.head(self.body(x))

    def split_at(self, layer):
        """``(front, back)`` cut after ``body.<name>``: the split protocol of
        :func:`structnoise.splitting.split_module` (both share the parameters)."""
        prefix = "body."
        if not layer.startswith(prefix):
            return None
        names = [name for name, _ in self.body.named_children()]
        name = layer[len(prefix):]
        if name not in names:
            return None
        i = names.index(name)
        children = list(self.body.children())
        return nn.Sequential(*children[:i + 1]), nn.Sequential(*children[i + 1:], self.head)


class DigitsMLP(_BodyHead):
    """Two-hidden-layer perceptron for 1x8x8 digits.

    Layers: ``body.1`` Linear (hidden1), ``body.2`` ReLU (hidden1 wide),
    ``body.3`` Linear (hidden2), ``body.4`` ReLU (hidden2 wide), ``head``
    Linear (n_classes).

    Parameters
    ----------
    hidden1 : int, default=128
        Width of the first hidden layer.
    hidden2 : int, default=64
        Width of the second hidden layer.
    n_classes : int, default=10
        Number of outputs.

    Examples
    --------
    >>> import torch
    >>> from structnoise.models import DigitsMLP
    >>> DigitsMLP()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, hidden1=128, hidden2=64, n_classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden1), nn.ReLU(),
                                  nn.Linear(hidden1, hidden2), nn.ReLU())
        self.head = nn.Linear(hidden2, n_classes)


class DigitsCNN(_BodyHead):
    """Small convolutional network for 1x8x8 digits.

    Layers: ``body.0`` Conv (16x8x8), ``body.1`` ReLU (16x8x8 = 1024),
    ``body.2`` Conv (32x8x8), ``body.3`` ReLU (2048), ``body.4`` MaxPool
    (32x4x4 = 512), ``body.5`` Flatten, ``body.6`` Linear (hidden),
    ``body.7`` ReLU (hidden), ``head`` Linear (n_classes).

    Parameters
    ----------
    channels : int, default=16
        Channels of the first convolution (the second has twice as many).
    hidden : int, default=64
        Width of the dense hidden layer.
    n_classes : int, default=10
        Number of outputs.

    Examples
    --------
    >>> import torch
    >>> from structnoise.models import DigitsCNN
    >>> DigitsCNN()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, channels=16, hidden=64, n_classes=10):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * c * 16, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)


class MNISTCNN(_BodyHead):
    """Convolutional network for 1x28x28 MNIST.

    Layers: ``body.1`` ReLU (32x28x28), ``body.2`` MaxPool (32x14x14),
    ``body.4`` ReLU (64x14x14), ``body.5`` MaxPool (64x7x7 = 3136),
    ``body.7`` Linear (hidden), ``body.8`` ReLU (hidden), ``head``.

    Parameters
    ----------
    hidden : int, default=128
        Width of the dense hidden layer.
    n_classes : int, default=10
        Number of outputs.

    Examples
    --------
    >>> import torch
    >>> from structnoise.models import MNISTCNN
    >>> MNISTCNN()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, hidden=128, n_classes=10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)


class ColourCNN(_BodyHead):
    """Small convolutional network for 3x32x32 colour images.

    Layers: ``body.1`` ReLU (32x32x32), ``body.2`` MaxPool (32x16x16),
    ``body.4`` ReLU (64x16x16), ``body.5`` MaxPool (64x8x8), ``body.7``
    ReLU (128x8x8), ``body.8`` MaxPool (128x4x4 = 2048), ``body.10``
    Linear (hidden), ``body.11`` ReLU (hidden), ``head``.

    Parameters
    ----------
    hidden : int, default=256
        Width of the dense hidden layer.
    n_classes : int, default=10
        Number of outputs.

    Examples
    --------
    >>> import torch
    >>> from structnoise.models import ColourCNN
    >>> ColourCNN()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, hidden=256, n_classes=10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128 * 16, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)


class PaperCNN(_BodyHead):
    """The authors' "3C3F" tanh network for 1x28x28 images (arXiv 2606.13801).

    Three convolutions and three dense layers with tanh activations, as in
    the paper's public code. The paper's noise sites ``L`` are the outputs
    of these layers (:attr:`NOISE_SITES` maps ``L`` to the name):

    ============  =========================  ==============  ================
    name          layer                      output          L
    ============  =========================  ==============  ================
    body.conv1    Conv2d(1, 6, 5, pad 2)     6x28x28
    body.tanh1    Tanh                       6x28x28
    body.pool1    MaxPool2d(2)               6x14x14=1176    1
    body.conv2    Conv2d(6, 16, 3, pad 1)    16x14x14
    body.tanh2    Tanh                       16x14x14=3136   2 (default site)
    body.conv3    Conv2d(16, 16, 5)          16x10x10
    body.tanh3    Tanh                       16x10x10
    body.pool3    MaxPool2d(2)               16x5x5=400      3
    body.flatten  Flatten                    400
    body.fc1      Linear(400, 32)            32
    body.tanh4    Tanh                       32              4
    body.fc2      Linear(32, 16)             16
    body.tanh5    Tanh                       16              5
    head          Linear(16, n_classes)      n_classes
    ============  =========================  ==============  ================

    Parameters
    ----------
    n_classes : int, default=10
        Number of outputs.
    in_channels : int, default=1
        Input channels (1 for MNIST / FashionMNIST).

    Examples
    --------
    >>> import torch
    >>> from structnoise.models import PaperCNN
    >>> PaperCNN()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> PaperCNN.NOISE_SITES[2]
    'body.tanh2'
    """

    #: the paper's layer index L -> layer name
    NOISE_SITES = {1: "body.pool1", 2: "body.tanh2", 3: "body.pool3", 4: "body.tanh4",
                   5: "body.tanh5"}

    def __init__(self, n_classes=10, in_channels=1):
        super().__init__()
        self.body = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 6, 5, padding=2)), ("tanh1", nn.Tanh()),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(6, 16, 3, padding=1)), ("tanh2", nn.Tanh()),
            ("conv3", nn.Conv2d(16, 16, 5)), ("tanh3", nn.Tanh()), ("pool3", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(400, 32)), ("tanh4", nn.Tanh()),
            ("fc2", nn.Linear(32, 16)), ("tanh5", nn.Tanh()),
        ]))
        self.head = nn.Linear(16, n_classes)
