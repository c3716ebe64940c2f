"""Where a trained dataset-level model loses to k-means, and whether the image's own values fix it.

Reads a model saved by ``benchmarks/dataset_methods.py`` (``OUT/model``) and the
k-means labels of the same set (``OUT/labels`` of a ``--method kmeans`` run), and prints:

1. per image: the image group of the set's manifest, the foreground fraction, the
   Hungarian accuracy of k-means and of the model's argmax;
2. the mean per group (e.g. fluorescence, brightfield, stained tissue);
3. refinements of the model's class probabilities per image (two by the image's values,
   one by the probabilities alone), scored per image and pooled (one mapping for the
   set), as diagnostics of what the network's classes miss:

   * ``em W``: per image, a Gaussian per class (one diagonal covariance shared by the
     classes) over 3x3-window means of the channels, fitted by EM with the network's
     probabilities raised to ``W`` as a fixed prior. ``W`` -> 0 turns it into a per-image
     intensity clustering started from the network's classes (k-means-like);
   * ``band D``: pixels farther than ``D`` pixels from the network's label boundary keep
     their class; the others take the class whose Gaussian (fitted on those interior
     pixels) is nearest: a sharper boundary, the classes' extent otherwise unchanged;
   * ``--recluster``: per image, k-means on the network's log-probabilities started from
     its argmax classes (a per-image threshold on the network's own output, for ``k = 2``).

    OMP_NUM_THREADS=1 python benchmarks/dataset_refinement.py --dataset microscopy \\
        --model bench_out/ds/base_micro_iic/model --kmeans bench_out/ds/micro_kmeans/labels
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

import napari_useg
from dataset_methods import DATASETS, SHARED, load, scores
from napari_useg.metrics import hungarian_accuracy


def probabilities(model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's normalised input ``(H, W, C)`` and class probabilities ``(k, H, W)``."""
    arr = model.check_image(image)
    x = model.normaliser(arr)(arr).astype(np.float32)
    h, w = x.shape[:2]
    m = model.multiple
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    t = torch.nn.functional.pad(t, (0, (-w) % m, 0, (-h) % m), mode="reflect")
    with torch.no_grad():
        p = torch.softmax(model.pixel_logits(t.to(model.device)), dim=1)
    return x, p[0, :, :h, :w].cpu().numpy()


def _features(x: np.ndarray) -> np.ndarray:
    return ndi.uniform_filter(x, size=(3, 3, 1), mode="reflect").reshape(-1, x.shape[-1])


def _loglik(f: np.ndarray, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (((f[:, None, :] - mu[None]) ** 2) / var).sum(-1)


def em_refine(x: np.ndarray, p: np.ndarray, weight: float, iters: int = 10) -> np.ndarray:
    """Labels of the EM refinement ``em W`` (see the module docstring)."""
    f = _features(x).astype(np.float64)
    k = p.shape[0]
    prior = weight * np.log(np.clip(p.reshape(k, -1).T, 1e-6, 1.0))
    r = p.reshape(k, -1).T.astype(np.float64)
    for _ in range(iters):
        nk = r.sum(0) + 1e-9
        mu = (r.T @ f) / nk[:, None]
        var = sum((r[:, c:c + 1] * (f - mu[c]) ** 2).sum(0) for c in range(k)) / nk.sum()
        a = _loglik(f, mu, var + 1e-4) + prior
        a -= a.max(1, keepdims=True)
        r = np.exp(a)
        r /= r.sum(1, keepdims=True)
    return r.argmax(1).reshape(x.shape[:2])


def band_refine(x: np.ndarray, p: np.ndarray, band: int) -> np.ndarray:
    """Labels of the boundary-band refinement ``band D`` (see the module docstring)."""
    f = _features(x).astype(np.float64)
    lab = p.argmax(0)
    interior = np.zeros(lab.shape, bool)
    mus, sq, n = [], 0.0, 0
    for c in range(p.shape[0]):
        inner = ndi.binary_erosion(lab == c, iterations=band, border_value=1)
        if inner.sum() < 10:
            inner = lab == c
        if not inner.any():
            mus.append(np.full(f.shape[1], np.inf))
            continue
        interior |= inner
        fc = f[inner.ravel()]
        mus.append(fc.mean(0))
        sq = sq + ((fc - fc.mean(0)) ** 2).sum(0)
        n += len(fc)
    var = sq / max(n, 1) + 1e-4
    out = lab.ravel().copy()
    edge = ~interior.ravel()
    out[edge] = _loglik(f[edge], np.array(mus), var).argmax(1)
    return out.reshape(lab.shape)


def recluster(p: np.ndarray, iters: int = 20) -> np.ndarray:
    """Per image, k-means on the network's log-probabilities started from its classes."""
    k = p.shape[0]
    f = np.log(np.clip(p.reshape(k, -1).T, 1e-6, 1.0)).astype(np.float64)
    lab = p.reshape(k, -1).argmax(0)
    for _ in range(iters):
        mu = np.array([f[lab == c].mean(0) if (lab == c).any() else np.full(k, np.inf)
                       for c in range(k)])
        new = (((f[:, None, :] - mu[None]) ** 2).sum(-1)).argmin(1)
        if np.array_equal(new, lab):
            break
        lab = new
    return lab.reshape(p.shape[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument("--model", required=True, help="a saved model folder")
    ap.add_argument("--kmeans", required=True, help="folder of k-means labels (NAME.npy)")
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--em", default="1,0.2,0.05", help="comma-separated prior weights W")
    ap.add_argument("--bands", default="4,8", help="comma-separated band widths D")
    ap.add_argument("--recluster", action="store_true",
                    help="also per-image k-means on the log-probabilities")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.data)
    names, images, masks, k, ignore = load(args.dataset, root)
    manifest = root / args.dataset / "manifest.json"
    groups = {}
    if manifest.exists():
        groups = {it["name"]: it.get("group", "-")
                  for it in json.loads(manifest.read_text()).get("items", [])}
    model = napari_useg.load_model(args.model, "cpu")
    km = [np.load(Path(args.kmeans) / f"{n}.npy") for n in names]
    probs = [probabilities(model, im) for im in images]
    base = [p.argmax(0) for _, p in probs]

    print("| image | group | foreground | k-means | model |")
    print("|---|---|---|---|---|")
    per_group: dict[str, list[tuple[float, float]]] = {}
    for name, m, kl, lab in zip(names, masks, km, base, strict=True):
        a, b = hungarian_accuracy(kl, m, ignore), hungarian_accuracy(lab + 1, m, ignore)
        g = groups.get(name, "-")
        per_group.setdefault(g, []).append((a, b))
        print(f"| {name} | {g} | {float(np.mean(m > 0)):.3f} | {a:.3f} | {b:.3f} |")
    print("\n| group | images | k-means | model |\n|---|---|---|---|")
    for g, v in sorted(per_group.items()):
        arr = np.array(v)
        print(f"| {g} | {len(v)} | {arr[:, 0].mean():.3f} | {arr[:, 1].mean():.3f} |")

    rows = [("k-means", km), ("model (argmax)", [lab + 1 for lab in base])]
    rows += [(f"em {w}", [em_refine(x, p, float(w)) for x, p in probs])
             for w in args.em.split(",") if w]
    rows += [(f"band {d}", [band_refine(x, p, int(d)) for x, p in probs])
             for d in args.bands.split(",") if d]
    if args.recluster:
        rows.append(("recluster", [recluster(p) for _, p in probs]))
    names_g = sorted(per_group)
    print("\n| labels | Hungarian / image | Hungarian pooled | "
          + " | ".join(names_g) + " |\n|---|---|---|" + "---|" * len(names_g))
    for label, preds in rows:
        s = scores(preds, masks, k, ignore)
        acc = [hungarian_accuracy(p, m, ignore) for p, m in zip(preds, masks, strict=True)]
        by = [np.mean([a for a, n in zip(acc, names, strict=True) if groups.get(n, "-") == g])
              for g in names_g]
        print(f"| {label} | {s['hung_img']:.3f} | {s['hung_set']:.3f} | "
              + " | ".join(f"{v:.3f}" for v in by) + " |", flush=True)


if __name__ == "__main__":
    main()
