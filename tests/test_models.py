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


def _doc_table(doc):
    """(name, output width, L) rows of PaperCNN's docstring table."""
    import re

    rows = []
    for line in doc.splitlines():
        m = re.match(r"\s*(body\.\w+|head)\s+.*?\s(\d+)x(\d+)x(\d+)(?:=\d+)?\s*(\d)?", line)
        if m:
            c, h, w = (int(v) for v in m.groups()[1:4])
            rows.append((m.group(1), c * h * w, m.group(5)))
            continue
        m = re.match(r"\s*(body\.\w+)\s+\S.*?\s(\d+)\s*(\d)?\s*$", line)
        if m:
            rows.append((m.group(1), int(m.group(2)), m.group(3)))
    return rows


def test_paper_cnn_docstring_table_matches_the_network():
    from structnoise.models import PaperCNN

    model = PaperCNN()
    rows = _doc_table(PaperCNN.__doc__)
    mods = dict(model.named_modules())
    assert {name for name, _, _ in rows} == {n for n in mods if n.startswith("body.")}
    widths = {}
    for name, _, _ in rows:
        mods[name].register_forward_hook(
            lambda m, i, o, name=name: widths.__setitem__(name, o[0].numel()))
    model(torch.zeros(2, 1, 28, 28))
    for name, width, _ in rows:
        assert widths[name] == width, name
    sites = {int(level): name for name, _, level in rows if level}
    assert sites == PaperCNN.NOISE_SITES
    assert widths[PaperCNN.NOISE_SITES[2]] == 3136  # the paper's L=2 site
