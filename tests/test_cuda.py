"""The CUDA paths end to end (skipped without a GPU; run on a lent GPU machine).

Every piece that moves data to the model's device: the fitter's torch
noise module and streaming accumulator, the net's hooks, retraining and
ensemble, the advertorch and ART attacks with EOT, and the corruptions.
"""

import numpy as np
import pytest
import torch

from structnoise.sources import CORRUPTIONS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def images28():
    rng = np.random.RandomState(0)
    return rng.rand(128, 1, 28, 28).astype(np.float32), rng.randint(0, 10, 128)


def test_fitter_on_cuda_tensors_matches_cpu():  # pragma: no cover - no GPU in CI
    from structnoise import StructuredNoiseFitter

    rng = np.random.RandomState(0)
    clean = rng.randn(600, 40)
    pairs = np.stack([clean, clean + rng.randn(600, 40) @ rng.randn(40, 40) * 0.3], 1)
    cpu = StructuredNoiseFitter(trace_scale=2.0).fit(pairs)
    gpu = StructuredNoiseFitter(trace_scale=2.0).fit(torch.from_numpy(pairs).cuda())
    np.testing.assert_allclose(gpu.covariance_, cpu.covariance_, rtol=1e-6, atol=1e-9)
    module = gpu.to_torch(device="cuda")
    eps = module.sample(100_000, device=torch.device("cuda"))
    assert eps.device.type == "cuda"
    cov = torch.cov(eps.T.double()).cpu().numpy()
    np.testing.assert_allclose(cov, gpu.covariance_, atol=0.1)


def test_paper_net_on_cuda(images28):  # pragma: no cover - no GPU in CI
    from structnoise import NoisyNeuralNetClassifier, StructuredNoiseFitter
    from structnoise.models import PaperCNN
    from structnoise.sources import FGSM, AutoPGD, LinfPGD, SquareAttack

    X, y = images28
    torch.manual_seed(0)
    net = NoisyNeuralNetClassifier(
        PaperCNN, noise=StructuredNoiseFitter(shrinkage=None, trace_scale=2.0, random_state=0),
        noise_source=FGSM(eps=0.1), noise_layers=PaperCNN.NOISE_SITES[2],
        noise_retrain="after", noise_warmup_epochs=1, max_epochs=2, noise_ensemble=10,
        optimizer=torch.optim.Adam, lr=1e-3, batch_size=32, device="cuda", verbose=0,
        train_split=None).fit(X, y)
    assert next(net.module_.parameters()).device.type == "cuda"
    assert net.noise_frozen_[:2] == ["body.conv1.weight", "body.conv1.bias"]
    proba = net.predict_proba(X)
    assert proba.shape == (128, 10) and np.isfinite(proba).all()
    for source in (LinfPGD(eps=0.1, nb_iter=3, eot_samples=2),
                   AutoPGD(eps=0.1, max_iter=3, nb_random_init=1, eot_samples=2),
                   SquareAttack(eps=0.1, max_iter=5, eot_samples=2)):
        adv = source.generate(net, X[:32], y[:32])
        assert adv.device.type == "cpu" and float((adv - torch.from_numpy(X[:32])).abs().max()) \
            <= 0.1 + 1e-5
        adv_gpu = source.generate(net.module_, torch.from_numpy(X[:32]).cuda(), y[:32])
        assert adv_gpu.device.type == "cuda"


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruptions_on_cuda_match_shapes_and_range(name):  # pragma: no cover
    from structnoise.sources import Corruption

    # past one 256-image seed block: blocks are written into the output
    X = torch.rand(300, 3, 28, 28, device="cuda")
    out = Corruption(name, 5, random_state=0).generate(None, X)
    assert out.device.type == "cuda" and out.shape == X.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    if name in {"gaussian_blur", "defocus_blur", "zoom_blur", "contrast", "brightness",
                "saturate", "pixelate", "scale"}:
        # no randomness: the CPU's images (jpeg left out: rounding at .5 may differ)
        cpu = Corruption(name, 5, random_state=0).generate(None, X.cpu())
        torch.testing.assert_close(out.cpu(), cpu, rtol=0, atol=1e-4)
