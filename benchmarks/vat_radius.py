"""Size of InMARS's adversarial term under the two readings of its VAT radius.

For batches of training crops of a shared dataset (per-image normalisation, the fast
preset's crop size and batch), prints the mutual-information term ``lambda * (H(Y|X) -
gamma H(Y))`` and the adversarial KL ``R_adv`` for an absolute radius (``||r|| = eps``
per crop) and IMSAT's relative one (``eps_n = alpha x`` distance to the 10th nearest
crop of the batch), with a trained model (``--model``) or a fresh network.

    OMP_NUM_THREADS=1 python benchmarks/vat_radius.py --dataset microscopy \\
        --model bench_out/ds/base_micro_inmars/model
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

import napari_useg
from dataset_methods import SHARED, load
from napari_useg.core.fitting import normalise_collection
from napari_useg.core.superpixels import slic_superpixels
from napari_useg.methods.inmars import InMARSNet, _n_segments
from napari_useg.nn.mi_loss import kl_consistency, mi_loss
from napari_useg.nn.training import CropSampler
from napari_useg.nn.vat import bn_frozen, relative_radius, vat_perturbation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="microscopy")
    ap.add_argument("--model", default=None, help="a saved InMARS model (default: fresh net)")
    ap.add_argument("--batches", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    _, images, _, k, _ = load(args.dataset, SHARED)
    if args.model:
        model = napari_useg.load_model(args.model, "cpu")
        p, net = model.params, model.net
    else:
        p = napari_useg.get_method("inmars").build("fast", {"n_clusters": k})
        net = InMARSNet(p, 3)
    net.eval()
    data, _ = normalise_collection([np.asarray(i) for i in images], "per_image")
    sps = [slic_superpixels(d, _n_segments(p.density, d.shape[0] * d.shape[1], p.input_size),
                            p.compactness, True) for d in data]
    sampler = CropSampler(data, p.input_size, sps)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    readings = [("absolute", 0.25), ("absolute", 2.0), ("relative", 0.25)]
    rows = {name: [] for name in ["mi", "eps_rel"] + [f"{r} {e}" for r, e in readings]}
    for _ in range(args.batches):
        x, sp, n_sp = sampler.sample(rng, p.batch_size)
        with torch.no_grad():
            logits, count, _ = net(x, sp, n_sp)
        present = count > 0
        prob = F.softmax(logits[present], dim=1)
        rows["mi"].append(abs(float(p.lam * mi_loss(prob, 1.0)[0])))
        rel = relative_radius(x, 0.25)
        rows["eps_rel"].append(float(rel.mean()))

        def fwd(xp, sp=sp, n_sp=n_sp, present=present):
            return net(xp, sp, n_sp)[0][present]

        for reading, eps in readings:
            e = relative_radius(x, eps) if reading == "relative" else eps
            with bn_frozen(net), torch.enable_grad():
                r = vat_perturbation(fwd, x, prob, eps=e, xi=p.vat_xi, generator=gen)
            with torch.no_grad():
                rows[f"{reading} {eps}"].append(float(kl_consistency(prob, fwd(x + r))))
    n_values = 3 * p.input_size ** 2
    print(f"{args.dataset}, crops {p.input_size} px x 3 channels ({n_values} values), batch "
          f"{p.batch_size}, {'model ' + args.model if args.model else 'fresh network'}")
    print(f"|lambda * MI term| mean {np.mean(rows['mi']):.4g}")
    print(f"relative radius 0.25 x 10th-NN distance: mean norm {np.mean(rows['eps_rel']):.4g} "
          f"({np.mean(rows['eps_rel']) / np.sqrt(n_values):.4g} RMS per value)")
    for reading, eps in readings:
        v = np.mean(rows[f"{reading} {eps}"])
        print(f"R_adv {reading:8} eps {eps:4}: {v:.4g}  ({v / np.mean(rows['mi']):.2e} of MI)")


if __name__ == "__main__":
    main()
