"""Speed and memory of backprop clustering (Kanezaki 2018): `paper`, `fast` and a naive reference.

For one 481x321 BSDS500 image (or any image given with --image), prints seconds
per iteration split into forward, superpixel refinement and backward+step,
set-up seconds, end-to-end seconds and peak memory (max RSS) for:

* ``naive``: a faithful naive implementation at the paper settings, as the authors'
  code does it (per-superpixel pixel lists built with ``np.where`` for each
  superpixel, then a Python loop with ``np.unique`` per superpixel every iteration);
* ``paper-split``: the same loop with this package's components (vectorised
  ``superpixel_vote``), timed part by part;
* ``paper``: ``napari_useg.iter_segment(preset="paper")`` itself, timed between snapshots;
* ``fast``: the default preset, run to its own stopping rule.

Each configuration runs in a child process of this one command (so peak RSS is
per configuration), one after the other; figures are reported as ratios against
``naive`` from the same run, because the machines are noisy.

    python benchmarks/bench_kanezaki.py [--image path.jpg] [--iters 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT.parent / "shared" / "bsds500" / "images" / "val" / "101085.jpg"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _loop(image: np.ndarray, iters: int, naive: bool) -> dict:
    """Paper-settings loop with each part timed; ``naive`` refines as the authors' code does."""
    import torch
    import torch.nn.functional as F

    from napari_useg.core.image import prepare_image
    from napari_useg.core.superpixels import slic_superpixels
    from napari_useg.core.superpixels import superpixel_vote as refine
    from napari_useg.nn.feature_net import FeatureNet, seeded

    t0 = time.perf_counter()
    img = prepare_image(image)
    sp_np = slic_superpixels(img.data, 10000, 100.0, True).ravel()
    n_sp = int(sp_np.max()) + 1
    if naive:
        l_inds = [np.where(sp_np == k)[0] for k in np.unique(sp_np)]  # O(K*N), as the authors
    sp = torch.from_numpy(sp_np)
    with seeded(0):
        net = FeatureNet(3, 100, 100, 2)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = torch.from_numpy(np.ascontiguousarray(img.data.transpose(2, 0, 1)))[None]
    setup = time.perf_counter() - t0
    fwd = ref = bwd = 0.0
    for _ in range(iters):
        ta = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = net(x)[0].permute(1, 2, 0).reshape(-1, 100)
        target = out.argmax(1)
        tb = time.perf_counter()
        if naive:
            im_target = target.numpy().copy()
            for inds in l_inds:
                vals = im_target[inds]
                u = np.unique(vals)
                hist = np.array([np.count_nonzero(vals == v) for v in u])
                im_target[inds] = u[np.argmax(hist)]
            refined = torch.from_numpy(im_target)
        else:
            refined = refine(target, sp, n_sp, 100)
        tc = time.perf_counter()
        loss = F.cross_entropy(out, refined)
        loss.backward()
        opt.step()
        td = time.perf_counter()
        fwd += tb - ta
        ref += tc - tb
        bwd += td - tc
    return {"setup_s": setup, "forward_s": fwd / iters, "refine_s": ref / iters,
            "backward_step_s": bwd / iters, "iter_s": (fwd + ref + bwd) / iters,
            "iterations": iters, "end_to_end_s": time.perf_counter() - t0}


def _library(image: np.ndarray, preset: str, iters: int | None) -> dict:
    from napari_useg import iter_segment

    params = {"max_iter": iters, "min_labels": 1, "patience": 0} if iters else {}
    t0 = time.perf_counter()
    stamps = []
    snap = None
    for s in iter_segment(image, "kanezaki", preset=preset, device="cpu", preview_every=0,
                          **params):
        stamps.append(time.perf_counter())
        snap = s
    total = time.perf_counter() - t0
    steps = np.diff(stamps[:-1]) if len(stamps) > 2 else np.array([np.nan])
    return {"iter_s": float(np.median(steps)), "iterations": snap.step, "end_to_end_s": total,
            "setup_s": stamps[0] - t0 - float(np.median(steps)), "labels": int(snap.labels.max()),
            "stopped": snap.message}


def child(config: str, image_path: str, iters: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from napari_useg.io import read_image

    image = read_image(image_path)
    if config == "naive":
        res = _loop(image, iters, naive=True)
    elif config == "paper-split":
        res = _loop(image, iters, naive=False)
    elif config == "paper":
        res = _library(image, "paper", iters)
    elif config == "fast":
        res = _library(image, "fast", None)
    else:
        raise SystemExit(f"unknown config {config}")
    res["peak_rss_mb"] = _peak_mb()
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=str(DEFAULT_IMAGE))
    ap.add_argument("--iters", type=int, default=10, help="timed iterations at paper settings")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.image, args.iters, args.threads)
        return
    if not Path(args.image).is_file():
        raise SystemExit(f"image not found: {args.image} (pass --image)")
    rows = {}
    for config in ("naive", "paper-split", "paper", "fast"):
        out = subprocess.run([sys.executable, __file__, "--child", config, "--image", args.image,
                              "--iters", str(args.iters), "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True)
        rows[config] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{config}: {json.dumps(rows[config])}", flush=True)
    base = rows["naive"]["iter_s"]
    print(f"\nimage {args.image}, {args.threads} threads, {args.iters} timed iterations at paper "
          "settings (fast runs to its own stop)")
    print(f"{'config':<12} {'s/iter':>7} {'fwd':>6} {'refine':>7} {'bwd+step':>8} {'setup':>6} "
          f"{'iters':>5} {'total s':>8} {'peak MB':>8} {'iter vs naive':>13}")
    for name, r in rows.items():
        def f(key, fmt="{:.3f}", r=r):
            return fmt.format(r[key]) if key in r else "-"
        print(f"{name:<12} {f('iter_s'):>7} {f('forward_s'):>6} {f('refine_s'):>7} "
              f"{f('backward_step_s'):>8} {f('setup_s', '{:.2f}'):>6} {r['iterations']:>5} "
              f"{r['end_to_end_s']:>8.1f} {r['peak_rss_mb']:>8.0f} {r['iter_s'] / base:>13.2f}")
    print(f"\nrefinement: naive {rows['naive']['refine_s']:.3f} s vs vectorised "
          f"{rows['paper-split']['refine_s']:.4f} s per iteration "
          f"({rows['naive']['refine_s'] / rows['paper-split']['refine_s']:.0f}x); set-up "
          f"{rows['naive']['setup_s']:.2f} s vs {rows['paper-split']['setup_s']:.2f} s")
    print(f"fast end to end: {rows['fast']['end_to_end_s']:.1f} s ({rows['fast']['iterations']} "
          f"iterations, {rows['fast'].get('stopped', '')})")


if __name__ == "__main__":
    main()
