"""Quality (and speed) of a preset of a per-image method on BSDS500 val.

Runs one method + preset (+ overrides) on the first N val images (sorted ids), caches
each result in OUT/<id>.npz (OUT/<id>_s<seed>.npz with several seeds; a rerun skips
finished images), and prints per-image and mean figures: Hungarian accuracy (mean over
annotators), labels, iterations, seconds. Used to choose the ``fast`` presets of
Kanezaki 2018, DFC and MMT against their ``paper`` presets (docs/kanezaki.md,
docs/dfc_mmt.md).

    python benchmarks/preset_quality.py --method kanezaki --preset paper --max-iter 300 \\
        --n 5 --out bench_out/paper
    python benchmarks/preset_quality.py --method kanezaki --preset fast --n 5 --seeds 5 \\
        --out bench_out/fast
    python benchmarks/preset_quality.py --method dfc --preset fast --n 5 --ratio --out OUT

A second process started with ``--reverse`` on the same OUT shares the work: each image
is claimed (OUT/<id>.claim) before it is run; delete stale claims after a killed run.
With ``--ratio``, Kanezaki's fast preset is also run on each image in the same process
and the ratio of the two times is printed (robust to a busy machine).

``--speed`` instead runs the fast presets of Kanezaki, DFC and MMT interleaved on each
image (nothing cached) and prints wall and CPU seconds per run and the mean wall-time
ratios to Kanezaki; with ``--variant``, one method's fast preset against variants of it:

    python benchmarks/preset_quality.py --speed --ids 101085,102061,105025
    python benchmarks/preset_quality.py --speed --method kanezaki \\
        --variant n_features=64,n_clusters=64 --variant max_side=320
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "bsds500"


def load_gt(path: Path) -> list[np.ndarray]:
    """All annotators' Segmentation maps of a BSDS500 ground-truth file."""
    from napari_useg.io import read_bsds_gt

    return list(read_bsds_gt(path).segmentations)


def timed(image: np.ndarray, method: str, preset: str | None, seed: int,
          params: dict) -> tuple[np.ndarray, int, float, str]:
    """Labels, iterations, seconds and stop message of one run."""
    from napari_useg import iter_segment

    t0 = time.perf_counter()
    snap = None
    for snap in iter_segment(image, method, preset=preset, seed=seed,  # noqa: B007
                             device="cpu", preview_every=0, **params):
        pass
    assert snap is not None and snap.labels is not None
    return snap.labels, snap.step, time.perf_counter() - t0, snap.message


def speed(root: Path, ids: list[str], seed: int, method: str, variants: list[str]) -> None:
    """Runs interleaved per image: wall and CPU seconds, mean wall-time ratio to the first.

    Without ``variants``: the fast presets of Kanezaki, DFC and MMT. With ``variants``
    (each ``name=value,name=value``): ``method``'s fast preset, then each variant of it.
    """
    from napari_useg.io import read_image

    if variants:
        configs = [(f"{method} fast", method, {})] + [
            (f"{method} fast + {v}", method, dict(kv.split("=", 1) for kv in v.split(",")))
            for v in variants]
    else:
        configs = [(m, m, {}) for m in ("kanezaki", "dfc", "mmt")]
    walls: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    for i in ids:
        img = read_image(root / "images" / "val" / f"{i}.jpg")
        for name, m, params in configs:
            cpu = time.process_time()
            _, steps, secs, _ = timed(img, m, None, seed, params)
            walls[name].append(secs)
            print(json.dumps({"id": i, "run": name, "steps": steps, "wall": round(secs, 2),
                              "cpu": round(time.process_time() - cpu, 2)}), flush=True)
    ref = float(np.mean(walls[configs[0][0]]))
    for name, times in walls.items():
        print(json.dumps({"run": name, "mean_wall": round(float(np.mean(times)), 2),
                          f"ratio_to_{configs[0][0].replace(' ', '_')}":
                              round(float(np.mean(times)) / ref, 2)}))


def run_one(root: Path, out: Path, i: str, seed: int, args: argparse.Namespace,
            params: dict) -> dict | None:
    """Run (or load from the cache) one image and seed; None when another process has it."""
    from napari_useg.io import read_image
    from napari_useg.metrics import hungarian_accuracy

    res = out / (f"{i}.npz" if args.seeds == 1 else f"{i}_s{seed}.npz")
    if res.exists():
        z = np.load(res)
        labels, steps, secs = z["labels"], int(z["steps"]), float(z["seconds"])
        ref_secs = float(z["ref_seconds"]) if "ref_seconds" in z else 0.0
    else:
        claim = res.with_suffix(".claim")
        try:
            claim.open("x").close()
        except FileExistsError:
            print(json.dumps({"id": i, "seed": seed, "skipped": f"claimed ({claim})"}), flush=True)
            return None
        img = read_image(root / "images" / "val" / f"{i}.jpg")
        labels, steps, secs, _ = timed(img, args.method, args.preset, seed, params)
        ref_secs = timed(img, "kanezaki", "fast", seed, {})[2] if args.ratio else 0.0
        np.savez_compressed(res, labels=labels, steps=steps, seconds=secs, ref_seconds=ref_secs)
        claim.unlink()
    gts = load_gt(root / "groundTruth" / "val" / f"{i}.mat")
    acc = float(np.mean([hungarian_accuracy(labels, g) for g in gts]))
    row = {"id": i, "seed": seed, "acc": round(acc, 4), "labels": int(labels.max()),
           "steps": steps, "seconds": round(secs, 2)}
    if ref_secs:
        row["ratio_to_kanezaki_fast"] = round(secs / ref_secs, 2)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="kanezaki", choices=("kanezaki", "dfc", "mmt"))
    ap.add_argument("--speed", action="store_true", help="time the three fast presets")
    ap.add_argument("--ids", default="101085,102061,105025", help="images for --speed")
    ap.add_argument("--variant", action="append", default=[],
                    help="with --speed: time --method's fast preset against this variant "
                         "(name=value,name=value; repeat)")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--skip", type=int, default=0, help="skip the first SKIP images")
    ap.add_argument("--out", help="cache folder (required unless --speed)")
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--seeds", type=int, default=1, help="run seeds SEED..SEED+SEEDS-1")
    ap.add_argument("--max-iter", type=int, default=None, help="shorthand for --param max_iter=")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--ratio", action="store_true", help="also time Kanezaki fast per image")
    ap.add_argument("--reverse", action="store_true", help="process the images in reverse order "
                    "(a second process can then share the work)")
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--param", action="append", default=[], help="name=value override")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    root = Path(args.data)
    if not root.is_dir():
        raise SystemExit(f"BSDS500 not found at {root}")
    if args.speed:
        speed(root, args.ids.split(","), args.seed, args.method, args.variant)
        return
    if not args.out:
        raise SystemExit("--out is required (or use --speed)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = dict(kv.split("=", 1) for kv in args.param)
    if args.max_iter:
        params["max_iter"] = args.max_iter
    ids = sorted(p.stem for p in (root / "images" / "val").glob("*.jpg"))
    ids = ids[args.skip: args.skip + args.n]
    if args.reverse:
        ids = ids[::-1]
    rows = []
    for i in ids:
        for seed in range(args.seed, args.seed + args.seeds):
            row = run_one(root, out, i, seed, args, params)
            if row is not None:
                rows.append(row)
                print(json.dumps(row), flush=True)
    if not rows:
        return
    per_image: dict[str, list[float]] = {}
    for r in rows:
        per_image.setdefault(r["id"], []).append(r["acc"])
    summary = {"method": args.method, "preset": args.preset, "params": params,
               "images": len(per_image), "runs": len(rows),
               "mean_hungarian": round(float(np.mean([np.mean(v) for v in per_image.values()])), 4),
               "mean_seconds": round(float(np.mean([r["seconds"] for r in rows])), 2),
               "mean_steps": round(float(np.mean([r["steps"] for r in rows])), 1)}
    if args.seeds > 1:
        summary["per_image_mean_over_seeds"] = {k: round(float(np.mean(v)), 4)
                                                for k, v in per_image.items()}
    if args.ratio:
        summary["mean_ratio_to_kanezaki_fast"] = round(
            float(np.mean([r["ratio_to_kanezaki_fast"] for r in rows])), 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
