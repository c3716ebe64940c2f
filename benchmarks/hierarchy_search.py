"""Search how the per-image methods build and cut their hierarchy, on BSDS500 val images.

Two stages, so the network runs once per image and configuration:

``run``
    Runs a method (e.g. ``kanezaki``, preset ``fast`` plus ``--param`` overrides) on the
    first N val images and caches, per image, its own labels and its full-resolution
    response (captured where the method builds its hierarchy) in ``--cache``.
``score``
    Builds hierarchies from the cache under a grid of hierarchy options (``regions``,
    ``region_scale``, ``feature_weight``, ``heights``; regions ``felzenszwalb`` here is
    the library's ``intersect``, ``colour_only`` / ``fz_only`` the library's
    ``felzenszwalb``) and scores each at evenly spaced thresholds:
    Hungarian (mean over annotators, then images), covering (BSDS, pooled) and segment
    AP@0.5 (pooled), ODS over the thresholds, plus the method's own labels.

Examples
--------
::

    OMP_NUM_THREADS=1 python benchmarks/hierarchy_search.py run --n 25 --cache bench_out/hs_fast
    OMP_NUM_THREADS=1 python benchmarks/hierarchy_search.py run --n 25 --cache bench_out/hs_m1 \\
        --param min_labels=1
    python benchmarks/hierarchy_search.py score --cache bench_out/hs_fast \\
        --regions result,felzenszwalb --scales 50,100 --weights 0,1,3
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from skimage.segmentation import felzenszwalb

from napari_useg.api import iter_segment_with
from napari_useg.core.hierarchy import build_hierarchy, colour_edges, feature_edges, fine_regions
from napari_useg.core.image import prepare_image
from napari_useg.core.options import RunOptions
from napari_useg.io.bsds import read_bsds_gt
from napari_useg.io.images import read_image
from napari_useg.methods import _hierarchy, dfc, kanezaki, mmt
from napari_useg.metrics.bsds import linspace_thresholds, region_counts_segs
from napari_useg.metrics.protocol import annotator_mean
from napari_useg.metrics.segments import SegmentMatches, segment_matches, segment_pr

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "bsds500"
TINY = 0.002  # regions under this fraction of the image count as tiny in --curve


def _ids(n: int, root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "images" / "val").glob("*.jpg"))[:n]


def _parse(items: list[str]) -> dict:
    out = {}
    for it in items:
        k, v = it.split("=", 1)
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def cmd_run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    captured: dict = {}
    real = _hierarchy.method_hierarchy

    def capture(image, labels, response, p):
        captured["labels"] = np.asarray(labels).astype(np.int32)
        captured["response"] = torch.as_tensor(response).float().cpu().numpy().astype(
            np.float16)
        return real(image, labels, response, p)

    for mod in (kanezaki, dfc, mmt):
        mod.method_hierarchy = capture
    params = _parse(args.param)
    opts = RunOptions(seed=args.seed, preset=args.preset, preview_every=0, device="cpu")
    ids = _ids(args.n, Path(args.data))
    for i in reversed(ids) if args.reverse else ids:
        dest = cache / f"{i}.npz"
        if dest.exists():
            continue
        img = read_image(Path(args.data) / "images" / "val" / f"{i}.jpg")
        t0 = time.perf_counter()
        *_, last = iter_segment_with(img, args.method, opts, **params)
        sec = time.perf_counter() - t0
        np.savez(dest, labels=captured["labels"], response=captured["response"],
                 seconds=sec, steps=last.step, message=last.message)
        print(f"{i}: {sec:.1f} s, {last.step} steps, {last.message}", flush=True)


def _longest_lived(h, kmin: int, kmax: int) -> int:
    """The number of regions in [kmin, kmax] whose cut lives over the widest threshold range."""
    n, m = h.n_regions, len(h.heights)
    best, best_k = -1.0, kmin
    for k in range(max(kmin, n - m), min(kmax, n) + 1):
        lo = h.heights[n - k - 1] if n - k - 1 >= 0 else 0.0
        hi = h.heights[n - k] if n - k < m else 1.0
        if hi - lo > best:
            best, best_k = hi - lo, k
    return best_k


def _score_image(cuts: list[np.ndarray], gts: list[np.ndarray]) -> dict:
    hung = [annotator_mean(c, gts) for c in cuts]
    reg = region_counts_segs(gts, cuts)
    segs = [segment_matches(c, gts, thresholds=(0.5,)) for c in cuts]
    return {"hung": np.array(hung), "cnt_r": np.asarray(reg.cnt_r), "sum_r": np.asarray(reg.sum_r),
            "segs": segs, "n": np.array([c.max() for c in cuts]),
            "tiny": np.array([int((np.bincount(c.ravel())[1:] < TINY * c.size).sum())
                              for c in cuts])}


def _summary(per_image: list[dict]
             ) -> tuple[float, float, float, float, tuple[int, int, int]]:
    """ODS over the thresholds (the last entry, the longest-lived cut, left out)."""
    return _figures(_threshold_cuts(per_image))


def _threshold_cuts(per_image: list[dict]) -> list[dict]:
    """The records of the threshold cuts alone (the longest-lived cut, last, left out)."""
    return [{k: v[:-1] for k, v in p.items()} for p in per_image]


def _gap(per_image: list[dict]) -> tuple[float, float, float, float, tuple[int, int, int]]:
    """Figures of the longest-lived cut alone."""
    return _figures([{k: v[-1:] for k, v in p.items()} for p in per_image])


def _curves(per_image: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hungarian, covering, segment AP@0.5 and mean regions over the set, per threshold."""
    hung = np.mean([p["hung"] for p in per_image], axis=0)
    cov = np.sum([p["cnt_r"] for p in per_image], axis=0) / np.sum(
        [p["sum_r"] for p in per_image], axis=0)
    ap = np.array([segment_pr(SegmentMatches.concatenate([p["segs"][k] for p in per_image]),
                              0.5).ap for k in range(len(hung))])
    n = np.mean([p["n"] for p in per_image], axis=0)
    return hung, cov, ap, n


def _figures(per_image: list[dict]
             ) -> tuple[float, float, float, float, tuple[int, int, int]]:
    hung, cov, ap, n = _curves(per_image)
    k = int(np.argmax(cov))
    best = (int(np.argmax(hung)), k, int(np.argmax(ap)))
    return float(hung.max()), float(cov.max()), float(ap.max()), float(n[k]), best


def _print_curve(per_image: list[dict], thresholds: np.ndarray) -> None:
    """Hungarian, covering, segment AP@0.5, mean regions and mean tiny regions (under
    ``TINY`` of the image) at every threshold."""
    cuts = _threshold_cuts(per_image)
    hung, cov, ap, n = _curves(cuts)
    tiny = np.mean([p["tiny"] for p in cuts], axis=0)
    for k, t in enumerate(thresholds):
        print(f"|   threshold {t:.3f} | {hung[k]:.3f} | {cov[k]:.3f} | {ap[k]:.3f} "
              f"| {n[k]:.1f} | {tiny[k]:.1f} tiny |")


def _edge_maps(img, resp: torch.Tensor, sources: set[str]) -> dict[str, np.ndarray | None]:
    """The boundary maps named in ``sources`` (colour, response, both) of one image."""
    maps: dict[str, np.ndarray | None] = {"colour": None, "response": None, "both": None}
    if sources & {"colour", "both"}:
        maps["colour"] = colour_edges(img.data, img.is_rgb)
    if sources & {"response", "both"}:
        prob = torch.softmax(resp, dim=0).permute(1, 2, 0).numpy().astype(np.float64)
        maps["response"] = feature_edges(prob)
    if "both" in sources:
        colour, response = maps["colour"], maps["response"]
        maps["both"] = (colour / max(colour.mean(), 1e-12)
                        + response / max(response.mean(), 1e-12))
    return maps


def cmd_score(args: argparse.Namespace) -> None:
    cache = Path(args.cache)
    files = sorted(cache.glob("*.npz"))[: args.n]
    thresholds = linspace_thresholds(args.nthresh)
    grid = list(itertools.product(args.regions.split(","),
                                  [float(s) for s in args.scales.split(",")],
                                  [float(w) for w in args.weights.split(",")],
                                  [float(e) for e in args.edge_powers.split(",")],
                                  args.heights.split(","),
                                  [float(v) for v in args.sigmas.split(",")],
                                  args.edge_sources.split(","),
                                  [float(v) for v in args.absorb.split(",")]))
    grid = [g for g in grid if g[0] != "result" or g[1] == float(args.scales.split(",")[0])]
    sources = {g[6] for g in grid if g[3] > 0}  # boundary maps a grid point reads
    results: dict = {g: [] for g in grid}
    own = []
    secs = []
    fz_cache: dict = {}
    for f in files:
        i = f.stem
        d = np.load(f)
        secs.append(float(d["seconds"]))
        gts = read_bsds_gt(Path(args.data) / "groundTruth" / "val" / f"{i}.mat").segmentations
        img = prepare_image(read_image(Path(args.data) / "images" / "val" / f"{i}.jpg"))
        labels = d["labels"]
        own.append(_score_image([labels], gts))
        resp = torch.from_numpy(d["response"].astype(np.float32))
        edge_maps = _edge_maps(img, resp, sources)
        for regions, scale, weight, power, heights, sigma, source, absorb in grid:
            edges = edge_maps[source]
            maps = [labels] if regions not in ("colour_only", "fz_only") else []
            if regions in ("felzenszwalb", "intersect", "colour_only", "fz_only"):
                key = (i, scale, sigma)
                if key not in fz_cache:
                    fz_cache[key] = felzenszwalb(img.data, scale=scale, sigma=sigma,
                                                 min_size=args.min_size,
                                                 channel_axis=-1)
                maps.append(fz_cache[key])
            feats = _hierarchy.hierarchy_features(img, resp, weight)
            fine = fine_regions(*maps)
            h = build_hierarchy(fine, feats, edges=edges, edge_power=power, heights=heights,
                                absorb_below=_hierarchy.absorb_pixels(absorb, fine.size),
                                absorb_passes=_hierarchy.ABSORB_PASSES)
            cuts = [h.cut(threshold=t) for t in thresholds]
            cuts.append(h.cut(n_segments=_longest_lived(h, args.kmin, args.kmax)))
            key = (regions, scale, weight, power, heights, sigma, source, absorb)
            results[key].append(_score_image(cuts, gts))
        print(f"{i} done", flush=True)
    hung = np.mean([o["hung"][0] for o in own])
    cov = np.sum([o["cnt_r"][0] for o in own]) / np.sum([o["sum_r"][0] for o in own])
    ap = segment_pr(SegmentMatches.concatenate([o["segs"][0] for o in own]), 0.5).ap
    print(f"\n{len(files)} images, {np.mean(secs):.1f} s/image (network run)")
    print("| hierarchy | Hungarian ODS | covering ODS | AP@0.5 ODS | regions at cov. ODS | "
          "ODS thresholds (Hungarian, covering, AP) |")
    print("|---|---|---|---|---|---|")
    print(f"| method's own labels | {hung:.3f} | {cov:.3f} | {ap:.3f} | "
          f"{np.mean([o['n'][0] for o in own]):.1f} | - |")
    for g, per in results.items():
        hb, cb, ab, n, k = _summary(per)
        print(f"| regions={g[0]} scale={g[1]:g} weight={g[2]:g} edge power={g[3]:g} "
              f"heights={g[4]} sigma={g[5]:g} edges={g[6]} absorb={g[7]:g} | "
              f"{hb:.3f} | {cb:.3f} | "
              f"{ab:.3f} | {n:.1f} | {', '.join(f'{thresholds[j]:.3f}' for j in k)} |")
        if args.curve:
            _print_curve(per, thresholds)
        hb, cb, ab, n, _ = _gap(per)
        print(f"| same, longest-lived cut with {args.kmin}-{args.kmax} regions | {hb:.3f} | "
              f"{cb:.3f} | {ab:.3f} | {n:.1f} | - |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--method", default="kanezaki")
    r.add_argument("--preset", default=None)
    r.add_argument("--param", action="append", default=[])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--reverse", action="store_true",
                   help="images in reverse order (a second process shares the cache)")
    s = sub.add_parser("score")
    s.add_argument("--regions", default="result,felzenszwalb")
    s.add_argument("--scales", default="100")
    s.add_argument("--weights", default="0,1")
    s.add_argument("--nthresh", type=int, default=25)
    s.add_argument("--min-size", type=int, default=20, help="Felzenszwalb min_size")
    s.add_argument("--curve", action="store_true",
                   help="also print every threshold's figures for each hierarchy")
    s.add_argument("--edge-powers", default="0")
    s.add_argument("--absorb", default="0",
                   help="comma-separated absorb_fraction values (regions under it merge first)")
    s.add_argument("--edge-sources", default="colour",
                   help="comma-separated boundary maps: colour, response, both")
    s.add_argument("--heights", default="per_pixel",
                   help="comma-separated build_hierarchy heights: per_pixel, last")
    s.add_argument("--sigmas", default="0.8", help="comma-separated Felzenszwalb sigma values")
    s.add_argument("--kmin", type=int, default=3)
    s.add_argument("--kmax", type=int, default=30)
    for p in (r, s):
        p.add_argument("--n", type=int, default=25)
        p.add_argument("--cache", required=True)
        p.add_argument("--data", default=str(ROOT))
    args = ap.parse_args()
    (cmd_run if args.cmd == "run" else cmd_score)(args)


if __name__ == "__main__":
    main()
