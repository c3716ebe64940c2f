"""Consensus over seeds and its agreement map, scored on BSDS500 val from cached runs.

Reads the runs cached by ``benchmarks/stability.py`` (``OUT/<method>/<id>_s<seed>.npz``)
and, for every method and image with all seeds finished, compares one run with the
consensus of the seeds (``napari_useg.core.consensus``):

* ``single``: Hungarian accuracy and covering of each run, averaged over seeds;
* ``consensus``: the same figures for the consensus segmentation of the seeds;
* ``agreement`` / ``AUC``: mean of the agreement map, and how well low agreement
  points at the consensus's wrong pixels (area under the ROC curve of ``1 - agreement``
  as a detector of pixels whose consensus label, Hungarian-mapped to the first
  annotator, is wrong; 0.5 = no better than chance).

No method is run here, so the figures cost seconds::

    python benchmarks/stability.py --n 20 --seeds 3 --out OUT --methods kanezaki,mmt
    python benchmarks/consensus.py --n 20 --seeds 3 --out OUT --methods kanezaki,mmt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from scipy.stats import rankdata

from napari_useg.core.consensus import consensus
from napari_useg.metrics import hungarian_match, score_all

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "bsds500"


def load_gt(path: Path) -> list[np.ndarray]:
    """All annotators' Segmentation maps of a BSDS500 ground-truth file."""
    gt = loadmat(path)["groundTruth"]
    return [gt[0, k]["Segmentation"][0, 0] for k in range(gt.shape[1])]


def error_auc(labels: np.ndarray, agreement: np.ndarray, gt: np.ndarray) -> float:
    """AUROC of ``1 - agreement`` for the pixels ``labels`` gets wrong against ``gt``."""
    mapping = hungarian_match(labels, gt).mapping
    lut = np.full(int(labels.max()) + 1, -1, np.int64)
    lut[list(mapping)] = list(mapping.values())
    wrong = (lut[labels] != gt).ravel()
    n_wrong = int(wrong.sum())
    n_right = wrong.size - n_wrong
    if n_wrong == 0 or n_right == 0:
        return float("nan")
    ranks = rankdata(1.0 - agreement.ravel())
    return float((ranks[wrong].sum() - n_wrong * (n_wrong + 1) / 2) / (n_wrong * n_right))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="number of val images (sorted ids)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..SEEDS-1")
    ap.add_argument("--methods", default="kanezaki,mmt", help="cached methods or variants")
    ap.add_argument("--out", required=True, help="the stability.py cache folder")
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--min-size", type=int, default=64, help="consensus min_size (pixels)")
    args = ap.parse_args()

    root = Path(args.data)
    ids = sorted(p.stem for p in (root / "images" / "val").glob("*.jpg"))[: args.n]
    seeds = range(args.seeds)
    print("| method | images x seeds | single Hungarian | consensus Hungarian | single covering "
          "| consensus covering | labels single / consensus | agreement | AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in (x.strip() for x in args.methods.split(",") if x.strip()):
        rows = []
        for i in ids:
            files = [Path(args.out) / m / f"{i}_s{s}.npz" for s in seeds]
            if not all(f.exists() for f in files):
                continue
            runs = [np.load(f)["labels"] for f in files]
            gts = load_gt(root / "groundTruth" / "val" / f"{i}.mat")
            single = [score_all(r, gts) for r in runs]
            labels, agreement = consensus(runs, min_size=args.min_size)
            joint = score_all(labels, gts)
            rows.append((np.mean([s["hungarian"] for s in single]), joint["hungarian"],
                         np.mean([s["covering"] for s in single]), joint["covering"],
                         np.mean([r.max() for r in runs]), labels.max(),
                         float(agreement.mean()), error_auc(labels, agreement, gts[0])))
        if not rows:
            print(f"| {m} | 0 | - | - | - | - | - | - | - |")
            continue
        r = np.array(rows, dtype=np.float64)
        mean = np.nanmean(r, axis=0)
        print(f"| {m} | {len(rows)} x {args.seeds} | {mean[0]:.3f} | {mean[1]:.3f} | "
              f"{mean[2]:.3f} | {mean[3]:.3f} | {mean[4]:.1f} / {mean[5]:.1f} | "
              f"{mean[6]:.3f} | {mean[7]:.3f} |")


if __name__ == "__main__":
    main()
