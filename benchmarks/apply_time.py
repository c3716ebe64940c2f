"""Seconds to label one image with saved dataset-level models (median of repeats, 1 thread).

    OMP_NUM_THREADS=1 python benchmarks/apply_time.py --size 520x696 MODEL_DIR [MODEL_DIR ...]

Uses the first ``shared/microscopy`` image of that size (H x W); each model labels it with
each of its outputs given by ``--outputs`` (default: the model's default output). A model
that refines each image's classes (``refine``) is also timed with ``refine="off"``, in the
same process, and the ratio printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

import napari_useg
from dataset_methods import SHARED, load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--size", default="520x696")
    ap.add_argument("--dataset", default="microscopy")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--outputs", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    h, w = (int(v) for v in args.size.split("x"))
    names, images, _, _, _ = load(args.dataset, SHARED)
    name, image = next((n, im) for n, im in zip(names, images, strict=True)
                       if im.shape[:2] == (h, w))
    print(f"{args.dataset} image {name} ({h}x{w}), {args.repeats} repeats, 1 thread")
    for d in args.models:
        model = napari_useg.load_model(d, "cpu")
        outs = [o for o in args.outputs.split(",") if o] or [model.default_output]
        for o in outs:
            refined = model.refines(o)
            seconds = median_seconds(model, image, o, args.repeats)
            if not refined:
                print(f"{d} ({o}): {seconds:.2f} s")
                continue
            params = model.params
            model.params = dataclasses.replace(params, refine="off")
            plain = median_seconds(model, image, o, args.repeats)
            model.params = params
            print(f"{d} ({o}): {seconds:.2f} s refined, {plain:.2f} s without the refinement "
                  f"({seconds / plain:.2f}x)")


def median_seconds(model, image: np.ndarray, output: str, repeats: int) -> float:
    """Median wall time of ``repeats`` predictions, after one warm-up."""
    model.predict(image, output=output)  # warm-up (receptive field probe)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict(image, output=output)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


if __name__ == "__main__":
    main()
