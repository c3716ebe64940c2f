"""Speed of the evaluation metrics, and the reproduction errors of the BSDS500 benchmark.

Targets (issue 3), for one 481x321 BSDS image against its 5 annotators:

* accuracy, covering, PRI and VOI together: under 0.2 s;
* the boundary benchmark: under 3 s per image and threshold.

The machine is shared, so every timing is also printed as a ratio to a reference
operation timed in the same process (``np.unique`` with inverse of the label map, the
naive core of a contingency table). With ``--reproduce`` it also runs the benchmark on
the official test cases and prints the largest absolute error against the official
numbers in each ``test_*`` folder.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py [--repeat 5] [--reproduce]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BENCH = SHARED / "bsds500" / "bench"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reproduce", action="store_true",
                    help="also compare with the official test_1..test_5 outputs")
    args = ap.parse_args()
    if not BENCH.is_dir():
        print(f"skipped: the official BSDS500 test cases are not at {BENCH}")
        return 0

    from napari_useg.evaluation import evaluate_folder
    from napari_useg.io.bsds import read_bsds_gt, read_segs
    from napari_useg.metrics import hungarian_accuracy, score_all
    from napari_useg.metrics.bsds import boundary_counts, region_counts

    gt = read_bsds_gt(BENCH / "groundTruth" / "2018.mat")
    segs = read_segs(BENCH / "segs" / "2018.mat")
    seg = segs[0]  # the finest segmentation: the most boundary pixels
    print(f"image 2018: {gt.shape[0]}x{gt.shape[1]}, {gt.n_annotators} annotators, "
          f"segmentation with {int(seg.max())} regions")
    ref = best_of(lambda: np.unique(seg, return_inverse=True), args.repeat)
    print(f"reference np.unique(return_inverse) of the label map: {ref * 1e3:.2f} ms")

    def region_all() -> None:
        for g in gt.segmentations:  # Hungarian accuracy per annotator (the protocol)
            hungarian_accuracy(seg, g)
        region_counts(gt.segmentations, segs=[seg])  # covering, PRI, VOI as the benchmark

    from napari_useg import segment
    from napari_useg.io import read_image

    fine = segment(read_image(BENCH / "images" / "2018.jpg"), "felzenszwalb", scale=100.0)
    print(f"fine over-segmentation (Felzenszwalb, scale 100): {int(fine.max())} regions")
    rows = [
        ("accuracy + covering + PRI + VOI (benchmark code path)", region_all, 0.2),
        ("score_all (all six region scores, 5 annotators)",
         lambda: score_all(seg, gt.segmentations), 0.2),
        ("boundary benchmark, one threshold (5 annotators)",
         lambda: boundary_counts(gt.boundaries, segs=[seg]), 3.0),
        ("boundary benchmark, one threshold, fine over-segmentation",
         lambda: boundary_counts(gt.boundaries, segs=[fine]), 3.0),
        ("accuracy + covering + PRI + VOI, fine over-segmentation",
         lambda: score_all(fine, gt.segmentations), 0.2),
    ]
    print(f"{'what':58s} {'seconds':>9s} {'x ref':>8s} {'target':>7s}")
    for name, fn, target in rows:
        t = best_of(fn, args.repeat)
        flag = "ok" if t < target else "SLOW"
        print(f"{name:58s} {t:9.4f} {t / ref:8.1f} {target:6.1f}s {flag}")

    if args.reproduce:
        cases = {"test_1": ("ucm2", {}), "test_2": ("png", {"region": False}),
                 "test_3": ("segs", {"region": False}), "test_4": ("segs", {}),
                 "test_5": ("segs", {"boundary": False})}
        print("\nreproduction of the official numbers (max abs error over every value "
              "of the files)")
        for case, (inp, kw) in cases.items():
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                evaluate_folder(BENCH / inp, BENCH / "groundTruth", nthresh=5, out_dir=d, **kw)
                dt = time.perf_counter() - t0
                errs = {}
                for f in sorted((BENCH / case).glob("*.txt")):
                    errs[f.name] = float(np.abs(np.loadtxt(f, ndmin=2)
                                                - np.loadtxt(Path(d) / f.name, ndmin=2)).max())
            bd = max((v for k, v in errs.items() if "bdry" in k), default=float("nan"))
            rg = max((v for k, v in errs.items() if "bdry" not in k), default=float("nan"))
            print(f"{case} ({inp:4s}): boundary {bd:.2e} (bound 2e-3), region {rg:.2e} "
                  f"(bound 1e-5), {dt:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
