"""Source speed, each figure a ratio measured in the same run.

* attack wrapper overhead: ``FGSM`` / ``LinfPGD`` ``.generate`` vs the raw
  advertorch attack's ``perturb`` on the same model, data and seed
  (goal: at most 1.05x);
* ART wrapper overhead: ``AutoPGD`` / ``SquareAttack`` ``.generate`` vs
  the raw ART attack's ``generate`` (classifier built in the timed region
  on both sides, as each call of ours builds one; goal: at most 1.05x);
* EOT cost: LinfPGD with ``eot_samples=k`` vs k=1 on a noisy network;
* corruption throughput (images/s) on 32x32 colour images, ours (batched
  torch) vs the reference package ``imagecorruptions`` (per image, numpy)
  where it runs (goal: 10x).

Run: ``python benchmarks/perf_sources.py [--quick]``; writes
``benchmarks/results/perf/sources.csv`` and ``corruptions.csv``.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, interleaved, machine, print_table, write_csv  # noqa: E402

from structnoise import StructuredNoiseFitter  # noqa: E402
from structnoise.models import DigitsCNN  # noqa: E402
from structnoise.net import NoiseHook, _NoiseControl  # noqa: E402
from structnoise.sources import CORRUPTIONS, FGSM, Corruption, LinfPGD  # noqa: E402
from structnoise.sources._advertorch import import_advertorch  # noqa: E402


def bench_wrappers(n, repeats):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    X = torch.rand(n, 1, 8, 8)
    y = torch.randint(0, 10, (n,))
    attacks = import_advertorch()
    rows = []
    for ours, raw, kw in [
        (FGSM, attacks.GradientSignAttack, dict(eps=0.1)),
        (LinfPGD, attacks.LinfPGDAttack, dict(eps=0.1, nb_iter=20, eps_iter=0.01)),
    ]:
        wrapper = ours(**kw, random_state=0, batch_size=n)
        raw_attack = raw(model, **kw)

        def run_raw(raw_attack=raw_attack):
            torch.manual_seed(0)
            return raw_attack.perturb(X, y)

        t = interleaved({"ours": lambda w=wrapper: w.generate(model, X, y), "raw": run_raw},
                        repeats=repeats)
        rows.append({"attack": ours.__name__, "n_images": n, "ours_s": t["ours"],
                     "advertorch_s": t["raw"], "overhead_ratio": t["ours"] / t["raw"],
                     "goal": "<= 1.05"})
    return rows


def bench_art_wrappers(n, repeats):
    from art.attacks.evasion import AutoProjectedGradientDescent
    from art.attacks.evasion import SquareAttack as RawSquare

    from structnoise.sources import AutoPGD, SquareAttack
    from structnoise.sources.art_attacks import art_classifier

    torch.manual_seed(0)
    model = DigitsCNN().eval()
    X = torch.rand(n, 1, 8, 8)
    with torch.no_grad():  # labels the model gets right: every image is attacked
        y = model(X).argmax(1)
    rows = []
    for ours, raw in [
        (AutoPGD(eps=0.1, max_iter=20, nb_random_init=1, batch_size=n, random_state=0),
         AutoProjectedGradientDescent),
        (SquareAttack(eps=0.1, max_iter=50, batch_size=n, random_state=0), RawSquare),
    ]:
        def run_raw(ours=ours, raw=raw):
            clf = art_classifier(model, (1, 8, 8), 10)
            np.random.seed(0)  # noqa: NPY002 - ART's generator
            return raw(clf, batch_size=n, verbose=False, **ours._art_kwargs()).generate(
                X.numpy(), y=y.numpy())

        t = interleaved({"ours": lambda w=ours: w.generate(model, X, y), "raw": run_raw},
                        repeats=repeats)
        rows.append({"attack": type(ours).__name__, "n_images": n, "ours_s": t["ours"],
                     "art_s": t["raw"], "overhead_ratio": t["ours"] / t["raw"],
                     "goal": "<= 1.05"})
    return rows


def bench_eot(n, repeats, ks=(1, 4, 16)):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    fitter = StructuredNoiseFitter(random_state=0).fit(np.random.default_rng(0)
                                                       .standard_normal((500, 64)))
    model.body[7].register_forward_hook(NoiseHook(fitter.to_torch(), _NoiseControl(1.0)))
    X = torch.rand(n, 1, 8, 8)
    y = torch.randint(0, 10, (n,))
    fns = {k: (lambda k=k: LinfPGD(eps=0.1, nb_iter=10, eot_samples=k, random_state=0,
                                   batch_size=n).generate(model, X, y)) for k in ks}
    t = interleaved(fns, repeats=repeats)
    return [{"eot_samples": k, "n_images": n, "seconds": t[k],
             "ms_per_image": 1000 * t[k] / n, "ratio_to_k1": t[k] / t[ks[0]]} for k in ks]


def bench_corruptions(n_ours, n_ref, repeats):
    try:
        from imagecorruptions import corrupt
    except ImportError:
        corrupt = None
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n_ours, 3, 32, 32, generator=g)
    X_u8 = (X[:n_ref].permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    ref_names = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                 "gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur", "fog",
                 "contrast", "brightness", "saturate", "pixelate", "jpeg_compression",
                 "elastic_transform"}
    rows = []
    for name in CORRUPTIONS:
        src = Corruption(name, severity=3, random_state=0, batch_size=n_ours)
        fns = {"ours": lambda src=src: src.generate(None, X)}
        if corrupt is not None and name in ref_names:
            def ref(name=name):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for im in X_u8:
                        corrupt(im, severity=3, corruption_name=name)
            fns["ref"] = ref
        t = interleaved(fns, repeats=repeats)
        ours_rate = n_ours / t["ours"]
        ref_rate = n_ref / t["ref"] if "ref" in t else float("nan")
        rows.append({"corruption": name, "ours_img_per_s": ours_rate,
                     "reference_img_per_s": ref_rate, "speedup": ours_rate / ref_rate,
                     "goal": ">= 10"})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(RESULTS, "perf"))
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 16)))
    print(f"machine: {machine()}")
    t0 = time.time()
    wrappers = bench_wrappers(128 if args.quick else 1000, args.repeats)
    print_table(wrappers, "Attack wrappers vs raw advertorch")
    art_rows = bench_art_wrappers(128 if args.quick else 1000, args.repeats)
    print_table(art_rows, "ART wrappers vs raw ART")
    wrappers = wrappers + [{**r, "advertorch_s": r.pop("art_s")} for r in art_rows]
    eot = bench_eot(64 if args.quick else 500, args.repeats)
    print_table(eot, "EOT cost (LinfPGD, 10 iterations, noisy DigitsCNN)")
    corr = bench_corruptions(100 if args.quick else 1000, 20 if args.quick else 100,
                             1 if args.quick else args.repeats)
    print_table(corr, "Corruptions on 32x32 colour images, severity 3 "
                      "(reference timed per image on a subset)")
    write_csv(os.path.join(args.out, "sources.csv"), wrappers)
    write_csv(os.path.join(args.out, "eot.csv"), eot)
    write_csv(os.path.join(args.out, "corruptions.csv"), corr)
    print(f"\n{time.time() - t0:.0f} s")
    return wrappers, eot, corr


if __name__ == "__main__":
    main()
