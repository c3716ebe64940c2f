"""Stability across seeds: Kanezaki 2018, DFC and MMT (fast presets) on BSDS500 val.

Runs every method with several seeds on the first N val images (sorted ids) and
reports, per method:

* ``acc mean`` / ``acc std``: mean and standard deviation over seeds of the
  dataset accuracy (mean over images of the mean-over-annotators Hungarian
  accuracy, the evaluation protocol of the MMT paper);
* ``per-image std``: standard deviation over seeds of each image's accuracy,
  averaged over images;
* ``pairwise ARI``: adjusted Rand index between the label maps of two runs of the
  same image, averaged over the seed pairs and the images;
* ``s/run``: mean seconds per run.

Each run's labels are cached in ``OUT/<method>/<image id>_s<seed>.npz`` together
with the parameters used; a rerun skips finished runs (and recomputes a run whose
cached parameters differ from the current preset), so the script can be stopped
and resumed. Runs go image by image (all methods and seeds of an image before the
next image), so a partial run still gives complete per-image figures, and
``--report`` prints the table of what is finished without computing anything.

    OMP_NUM_THREADS=1 python benchmarks/stability.py --n 20 --seeds 5 \\
        --out bench_out/stability --threads 1
    # a variant: MMT's default with Kanezaki's hierarchy cut as its result
    ... --methods kanezaki,mmt-h --variant mmt-h=mmt:regions=felzenszwalb,cut=0.625
    python benchmarks/stability.py --n 20 --seeds 5 --out bench_out/stability --report
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "bsds500"
METHODS = ("kanezaki", "dfc", "mmt")


def load_gt(path: Path) -> list[np.ndarray]:
    """All annotators' Segmentation maps of a BSDS500 ground-truth file."""
    from scipy.io import loadmat

    gt = loadmat(path)["groundTruth"]
    return [gt[0, k]["Segmentation"][0, 0] for k in range(gt.shape[1])]


def parse_variant(text: str) -> tuple[str, str, dict[str, Any]]:
    """``NAME=METHOD:key=value,key=value`` -> (name, method, parameters)."""
    name, _, rest = text.partition("=")
    method, _, pairs = rest.partition(":")
    if not name or not method:
        raise SystemExit(f"--variant {text!r}: expected NAME=METHOD:key=value,...")
    params: dict[str, Any] = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return name, method, params


def run_one(method: str, image: np.ndarray, seed: int,
            params: dict[str, Any]) -> tuple[np.ndarray, int, float, str]:
    """One run of ``method``'s default (fast) preset with ``params`` on top;
    labels, steps, seconds, stop message."""
    from napari_useg import iter_segment

    t0 = time.perf_counter()
    snap = None
    for snap in iter_segment(image, method, seed=seed, device="cpu",  # noqa: B007
                             preview_every=0, **params):
        pass
    assert snap is not None and snap.labels is not None
    return snap.labels, snap.step, time.perf_counter() - t0, snap.message


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="number of val images (sorted ids)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..SEEDS-1")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="methods or variant names, comma-separated")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=METHOD:key=value,... a method's default preset with these "
                         "parameters, usable as NAME in --methods")
    ap.add_argument("--out", required=True, help="cache folder for the runs")
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--report", action="store_true", help="only print the table of cached runs")
    ap.add_argument("--common", action="store_true",
                    help="score every method on the images finished by all methods only")
    args = ap.parse_args()

    import torch

    from napari_useg import get_method
    from napari_useg.io import read_image
    from napari_useg.metrics import adjusted_rand_index, hungarian_accuracy

    torch.set_num_threads(args.threads)
    root = Path(args.data)
    if not root.is_dir():
        raise SystemExit(f"BSDS500 not found at {root}")
    out = Path(args.out)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    ids = sorted(p.stem for p in (root / "images" / "val").glob("*.jpg"))[: args.n]
    seeds = list(range(args.seeds))
    variants = {name: (method, params)
                for name, method, params in map(parse_variant, args.variant)}
    spec = {m: variants.get(m, (m, {})) for m in methods}
    expected = {m: json.dumps({**get_method(base).defaults(), **params}, sort_keys=True)
                for m, (base, params) in spec.items()}

    # results[m][image id][seed] = (accuracy, labels, seconds)
    results: dict[str, dict[str, dict[int, tuple[float, np.ndarray, float]]]] = {
        m: {} for m in methods}
    for i in ids:
        img = None
        gts = load_gt(root / "groundTruth" / "val" / f"{i}.mat")
        for m in methods:
            (out / m).mkdir(parents=True, exist_ok=True)
            for s in seeds:
                f = out / m / f"{i}_s{s}.npz"
                cached = None
                if f.exists():
                    z = np.load(f)
                    if str(z["params"]) == expected[m]:
                        cached = z
                if cached is not None:
                    labels, secs = cached["labels"], float(cached["seconds"])
                elif args.report:
                    continue
                else:
                    if img is None:
                        img = read_image(root / "images" / "val" / f"{i}.jpg")
                    labels, steps, secs, msg = run_one(spec[m][0], img, s, spec[m][1])
                    tmp = f.with_suffix(".tmp.npz")
                    np.savez_compressed(tmp, labels=labels, steps=steps, seconds=secs,
                                        message=msg, params=expected[m])
                    tmp.replace(f)
                    print(json.dumps({"method": m, "id": i, "seed": s, "steps": steps,
                                      "labels": int(labels.max()), "seconds": round(secs, 1),
                                      "stop": msg}), flush=True)
                acc = float(np.mean([hungarian_accuracy(labels, g) for g in gts]))
                results[m].setdefault(i, {})[s] = (acc, labels, secs)

    print()
    print("| method | images x seeds | acc mean | acc std (over seeds) | per-image std | "
          "pairwise ARI | labels | s/run |")
    print("|---|---|---|---|---|---|---|---|")
    complete = {m: [i for i in ids if len(results[m].get(i, {})) == len(seeds)] for m in methods}
    shared = [i for i in ids if all(i in complete[m] for m in methods)]
    for m in methods:
        done = shared if args.common else complete[m]
        if not done:
            print(f"| {m} | 0 x {len(seeds)} | - | - | - | - | - | - |")
            continue
        acc = np.array([[results[m][i][s][0] for s in seeds] for i in done])  # (images, seeds)
        dataset_acc = acc.mean(axis=0)
        per_image_std = acc.std(axis=1).mean()
        aris = [np.mean([adjusted_rand_index(results[m][i][a][1], results[m][i][b][1])
                         for a, b in itertools.combinations(seeds, 2)]) for i in done]
        n_labels = np.mean([results[m][i][s][1].max() for i in done for s in seeds])
        secs = np.mean([results[m][i][s][2] for i in done for s in seeds])
        print(f"| {m} | {len(done)} x {len(seeds)} | {dataset_acc.mean():.4f} | "
              f"{dataset_acc.std():.4f} | {per_image_std:.4f} | {np.mean(aris):.4f} | "
              f"{n_labels:.1f} | {secs:.1f} |")


if __name__ == "__main__":
    main()
