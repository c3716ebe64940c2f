"""The BSDS500 benchmark reimplementation: small exact cases and the official reference outputs.

The reference outputs are the numbers the official MATLAB/C++ benchmark printed for its
own five test images (``../shared/bsds500/bench/test_1`` to ``test_5``). Region figures
must agree within 1e-5, boundary figures within 2e-3 (the official pixel matcher is
randomised; its own runs on the same input differ by about 7e-4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_useg.evaluation import evaluate_folder
from napari_useg.metrics.bsds import (
    BoundaryCounts,
    boundary_counts,
    boundary_counts_maps,
    collect_boundary,
    collect_region,
    correspond_pixels,
    gt_boundaries_from_segs,
    linspace_thresholds,
    region_counts,
    seg2bdry,
    thin_boundaries,
    ucm2_regions,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BENCH = SHARED / "bsds500" / "bench"
needs_bench = pytest.mark.skipif(not BENCH.is_dir(),
                                 reason=f"official BSDS500 test cases not found at {BENCH}")

BOUNDARY_TOL = 2e-3
REGION_TOL = 1e-5


def test_seg2bdry_small():
    seg = np.array([[1, 1, 2],
                    [1, 1, 2],
                    [3, 3, 3]])
    b = seg2bdry(seg).astype(int)
    # a pixel is on the boundary when it differs from its lower or right neighbour (or is
    # the corner of a 2x2 block holding such a difference)
    assert b.tolist() == [[0, 1, 0],
                          [1, 1, 1],
                          [0, 0, 0]]
    assert not seg2bdry(np.ones((4, 5), int)).any()
    with pytest.raises(ValueError, match="2-D"):
        seg2bdry(np.ones(3, int))


def test_correspond_pixels_one_to_one_and_nearest():
    a = np.zeros((40, 30), bool)
    b = np.zeros((40, 30), bool)
    # diagonal 50 px; max_dist 0.03 -> 1.5 px
    b[10, 5:15] = True
    a[9, 5:15] = True    # 1 px above: all can match
    a[11, 5:15] = True   # 1 px below: competes for the same human pixels
    m1, m2, pairs = correspond_pixels(a, b, max_dist=0.03, return_pairs=True)
    assert m2.sum() == 10 and m1.sum() == 10  # one-to-one
    assert len(pairs) == 10
    assert np.all(np.hypot(pairs[:, 0] - pairs[:, 2], pairs[:, 1] - pairs[:, 3]) <= 1.5)
    # least total distance among the largest matchings: the coincident pixel wins
    a2 = np.zeros((40, 30), bool)
    b2 = np.zeros((40, 30), bool)
    b2[20, 10] = True
    a2[20, 10] = a2[20, 11] = True
    m1, m2 = correspond_pixels(a2, b2, max_dist=0.03)
    assert m1[20, 10] and not m1[20, 11] and m2[20, 10]
    # beyond the tolerance nothing matches (1.5 px: distance 1 yes, sqrt(5) no)
    a3 = np.zeros((40, 30), bool)
    a3[22, 11] = True
    m1, m2 = correspond_pixels(a3, b2, max_dist=0.03)
    assert not m1.any() and not m2.any()
    # cardinality first: a far match is kept if it makes the matching larger
    a4 = np.zeros((40, 30), bool)
    b4 = np.zeros((40, 30), bool)
    a4[5, 5] = a4[5, 6] = True
    b4[5, 6] = b4[5, 7] = True
    m1, m2 = correspond_pixels(a4, b4, max_dist=0.03)
    assert m1.sum() == 2 and m2.sum() == 2
    with pytest.raises(ValueError, match="same shape"):
        correspond_pixels(a, b[:10])


def test_perfect_segmentation_scores_one():
    gt = np.zeros((30, 40), int)
    gt[:, 20:] = 1
    gt[10:20, 5:15] = 2
    bd = gt_boundaries_from_segs([gt])
    c = boundary_counts(bd, segs=[gt, gt + 5])
    assert c.recall.tolist() == [1.0, 1.0] and c.precision.tolist() == [1.0, 1.0]
    r = region_counts([gt + 1], segs=[gt + 1])
    assert r.covering.tolist() == [1.0]
    assert r.ri.tolist() == [1.0] and r.voi.tolist() == [0.0]
    # one region for everything: covering is the area-weighted IoU of each gt region
    one = region_counts([gt + 1], segs=[np.ones_like(gt)])
    sizes = np.bincount(gt.ravel())
    assert one.covering[0] == pytest.approx((sizes ** 2).sum() / sizes.sum() / gt.size)


def test_ucm2_regions_and_thresholds():
    ucm2 = np.zeros((7, 9))  # a 3x4 image
    ucm2[:, 4] = 0.6          # a vertical contour between columns 1 and 2
    ucm2[2, :4] = 0.3         # a weaker horizontal contour on the left
    assert ucm2_regions(ucm2, 0.7).max() == 1
    assert ucm2_regions(ucm2, 0.5).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 2]]
    assert ucm2_regions(ucm2, 0.2).max() == 3
    assert linspace_thresholds(5).round(6).tolist() == [0.166667, 0.333333, 0.5,
                                                        0.666667, 0.833333]
    with pytest.raises(ValueError, match="odd shape"):
        region_counts([np.ones((3, 4), int)], ucm2=np.zeros((6, 9)), nthresh=3)


def test_collect_boundary_hand_case():
    thr = np.array([1.0, 2.0])
    counts = [BoundaryCounts(thr, np.array([5, 8]), np.array([15, 15]), np.array([8, 4]),
                             np.array([10, 10])),
              BoundaryCounts(thr, np.array([2, 6]), np.array([15, 15]), np.array([9, 6]),
                             np.array([10, 10]))]
    s = collect_boundary(counts)
    assert s.recall.tolist() == pytest.approx([7 / 30, 14 / 30])
    assert s.precision.tolist() == pytest.approx([0.85, 0.5])
    # OIS: image 1 is best at threshold 1, image 2 at threshold 2
    r, p = 11 / 30, 14 / 20
    assert s.ois_f == pytest.approx(2 * r * p / (r + p))
    # AP: P(r) = 1.2 - 1.5 r sampled at r = 0.24 .. 0.46 (zero outside the recall range)
    assert s.ap == pytest.approx(sum(1.2 - 1.5 * k / 100 for k in range(24, 47)) * 0.01)
    # ODS is the best F on the segment between the two points (sampled 100 times)
    d = np.linspace(0, 1, 100001)
    rr, pp = 7 / 30 + d * 7 / 30, 0.85 - 0.35 * d
    assert s.ods_f == pytest.approx((2 * rr * pp / (rr + pp)).max(), abs=1e-4)
    assert s.ods_f >= max(s.f)


def test_boundary_counts_validation():
    gt = [np.zeros((10, 10), bool)]
    with pytest.raises(ValueError, match="exactly one"):
        boundary_counts(gt)
    with pytest.raises(ValueError, match="shape"):
        boundary_counts_maps([np.zeros((5, 5), bool)], gt)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        boundary_counts(gt, pb=np.full((10, 10), 2.0), nthresh=3)


@needs_bench
def test_gt_boundaries_are_thinned_seg2bdry():
    from napari_useg.io.bsds import read_bsds_gt

    gt = read_bsds_gt(BENCH / "groundTruth" / "3063.mat")
    for seg, bd in zip(gt.segmentations, gt.boundaries, strict=True):
        assert np.array_equal(thin_boundaries(seg2bdry(seg)), bd)


def _compare(folder: Path, computed: Path, files: list[str], tol: float) -> float:
    worst = 0.0
    for name in files:
        ref = np.loadtxt(folder / name, ndmin=2)
        got = np.loadtxt(computed / name, ndmin=2)
        assert ref.shape == got.shape, name
        err = float(np.abs(ref - got).max())
        assert err <= tol, f"{folder.name}/{name}: max abs error {err:.2e} > {tol}"
        worst = max(worst, err)
    return worst


BDRY = ["eval_bdry.txt", "eval_bdry_img.txt", "eval_bdry_thr.txt"]
REG = ["eval_cover.txt", "eval_cover_img.txt", "eval_cover_th.txt", "eval_RI_VOI.txt",
       "eval_RI_VOI_thr.txt"]


@pytest.fixture(scope="module")
def official_runs(tmp_path_factory):
    """Our benchmark on the three inputs (each computed once)."""
    out = {}
    for inp, kw in (("ucm2", {}), ("png", {"region": False}), ("segs", {})):
        d = tmp_path_factory.mktemp(inp)
        evaluate_folder(BENCH / inp, BENCH / "groundTruth", nthresh=5, out_dir=d, **kw)
        out[inp] = d
    return out


@needs_bench
@pytest.mark.slow
@pytest.mark.parametrize("case,inp,files", [
    ("test_1", "ucm2", BDRY + REG),
    ("test_2", "png", BDRY),
    ("test_3", "segs", BDRY),
    ("test_4", "segs", BDRY + REG),
    ("test_5", "segs", REG),
])
def test_official_reference_outputs(official_runs, case, inp, files):
    computed = official_runs[inp]
    folder = BENCH / case
    bd = [f for f in files if f in BDRY]
    rg = [f for f in files if f in REG]
    if bd:
        _compare(folder, computed, bd, BOUNDARY_TOL)
    if rg:
        _compare(folder, computed, rg, REGION_TOL)


@needs_bench
def test_region_benchmark_in_memory_matches_files():
    from napari_useg.io.bsds import read_bsds_gt, read_segs

    counts = [region_counts(read_bsds_gt(BENCH / "groundTruth" / f"{i}.mat").segmentations,
                            segs=read_segs(BENCH / "segs" / f"{i}.mat"))
              for i in ("2018", "3063", "5096", "6046", "8068")]
    s = collect_region(counts)
    ref = np.loadtxt(BENCH / "test_5" / "eval_cover.txt")
    assert s.covering_ods == pytest.approx(ref[1], abs=REGION_TOL)
    assert s.covering_ois == pytest.approx(ref[2], abs=REGION_TOL)
    assert s.covering_best == pytest.approx(ref[3], abs=REGION_TOL)
    ri_voi = np.loadtxt(BENCH / "test_5" / "eval_RI_VOI.txt")
    assert [s.pri_ods, s.pri_ois, s.voi_ods, s.voi_ois] == pytest.approx(
        ri_voi[[1, 2, 4, 5]], abs=REGION_TOL)
