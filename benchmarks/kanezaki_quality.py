"""Quality of a Kanezaki preset on BSDS500 val: mean Hungarian accuracy over annotators.

Runs one preset on the first N val images (sorted ids), keeps each result in
OUT/<id>.npz (a rerun skips finished images), and prints per-image and mean
figures: Hungarian accuracy (mean over annotators), labels, iterations, seconds.

    python benchmarks/kanezaki_quality.py --preset paper --max-iter 300 --n 5 --out bench_out/paper
    python benchmarks/kanezaki_quality.py --preset fast --n 5 --out bench_out/fast
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque
from pathlib import Path

import numpy as np

from napari_useg import iter_segment
from napari_useg.io import read_image
from napari_useg.metrics import hungarian_accuracy

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "bsds500"


def load_gt(path: Path) -> list[np.ndarray]:
    """All annotators' Segmentation maps of a BSDS500 ground-truth file."""
    from scipy.io import loadmat

    gt = loadmat(path)["groundTruth"]
    return [gt[0, k]["Segmentation"][0, 0] for k in range(gt.shape[1])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-iter", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--param", action="append", default=[], help="name=value override")
    ap.add_argument("--reverse", action="store_true", help="process the images in reverse order "
                    "(a second process can then share the work)")
    args = ap.parse_args()
    root = Path(args.data)
    if not root.is_dir():
        raise SystemExit(f"BSDS500 not found at {root}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = dict(kv.split("=", 1) for kv in args.param)
    if args.max_iter:
        params["max_iter"] = args.max_iter
    ids = sorted(p.stem for p in (root / "images" / "val").glob("*.jpg"))[: args.n]
    if args.reverse:
        ids = ids[::-1]
    rows = []
    for i in ids:
        res = out / f"{i}.npz"
        if res.exists():
            z = np.load(res)
            labels, steps, secs = z["labels"], int(z["steps"]), float(z["seconds"])
        else:
            claim = res.with_suffix(".claim")
            try:  # another process (e.g. one started with --reverse) is on this image
                claim.open("x").close()
            except FileExistsError:
                print(json.dumps({"id": i, "skipped": f"claimed by another run ({claim})"}), flush=True)
                continue
            img = read_image(root / "images" / "val" / f"{i}.jpg")
            t0 = time.perf_counter()
            snap = deque(iter_segment(img, "kanezaki", preset=args.preset, seed=args.seed,
                                      device="cpu", preview_every=0, **params), maxlen=1)[0]
            secs = time.perf_counter() - t0
            labels, steps = snap.labels, snap.step
            np.savez_compressed(res, labels=labels, steps=steps, seconds=secs)
            claim.unlink()
        gts = load_gt(root / "groundTruth" / "val" / f"{i}.mat")
        acc = float(np.mean([hungarian_accuracy(labels, g) for g in gts]))
        rows.append({"id": i, "acc": acc, "labels": int(labels.max()), "steps": steps,
                     "seconds": round(secs, 2)})
        print(json.dumps(rows[-1]), flush=True)
    if not rows:
        return
    mean = float(np.mean([r["acc"] for r in rows]))
    print(json.dumps({"preset": args.preset, "params": params, "n": len(rows),
                      "mean_hungarian": round(mean, 4),
                      "mean_seconds": round(float(np.mean([r["seconds"] for r in rows])), 2)}))


if __name__ == "__main__":
    main()
