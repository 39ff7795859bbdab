import pytest
import torch

from structnoise.models import MNISTCNN, ColourCNN, DigitsCNN, DigitsMLP


@pytest.mark.parametrize("cls,shape,layers", [
    (DigitsMLP, (2, 1, 8, 8), {"body.2": 128, "body.4": 64}),
    (DigitsCNN, (2, 1, 8, 8), {"body.1": 1024, "body.3": 2048, "body.4": 512, "body.7": 64}),
    (MNISTCNN, (2, 1, 28, 28), {"body.1": 32 * 28 * 28, "body.5": 3136, "body.8": 128}),
    (ColourCNN, (2, 3, 32, 32), {"body.8": 2048, "body.11": 256}),
])
def test_documented_layer_widths(cls, shape, layers):
    model = cls()
    widths = {}
    mods = dict(model.named_modules())
    for name in layers:
        mods[name].register_forward_hook(
            lambda m, i, o, name=name: widths.__setitem__(name, o[0].numel()))
    assert model(torch.zeros(shape)).shape == (2, 10)
    assert widths == layers
    for name, width in layers.items():
        assert str(width) in cls.__doc__ or name in cls.__doc__
