import numpy as np
import pytest
import torch

from structnoise.models import MNISTCNN, ColourCNN, DigitsCNN, DigitsMLP


def _documented_widths(cls):
    """Layer name -> width, read from the class docstring's ``Layers:`` list.

    Shapes like ``16x8x8 = 1024`` or ``(2048)`` give numbers; symbolic widths
    (``hidden1``, ``n_classes``) take the constructor's default.
    """
    import inspect
    import re

    defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()
                if v.default is not inspect.Parameter.empty}
    text = " ".join(cls.__doc__.split("Parameters")[0].split())
    widths = {}
    for name, content in re.findall(r"``(body\.\d+|head)`` \w+(?: \(([^)]*)\))?", text):
        content = content.replace(" wide", "").strip()
        if not content:
            continue
        if "=" in content:
            widths[name] = int(content.split("=")[-1])
        elif re.fullmatch(r"\d+(x\d+)*", content):
            widths[name] = int(np.prod([int(v) for v in content.split("x")]))
        elif content in defaults:
            widths[name] = int(defaults[content])
    return widths


@pytest.mark.parametrize("cls,shape", [
    (DigitsMLP, (2, 1, 8, 8)), (DigitsCNN, (2, 1, 8, 8)), (MNISTCNN, (2, 1, 28, 28)),
    (ColourCNN, (2, 3, 32, 32)),
])
def test_documented_layer_widths(cls, shape):
    documented = _documented_widths(cls)
    assert len(documented) >= 3, documented
    model = cls()
    widths = {}
    mods = dict(model.named_modules())
    for name in documented:
        mods[name].register_forward_hook(
            lambda m, i, o, name=name: widths.__setitem__(name, o[0].numel()))
    assert model(torch.zeros(shape)).shape == (2, 10)
    assert widths == documented


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
