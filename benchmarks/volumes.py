"""Volumes as volumes: time, memory and nucleus scores of the 3-D methods.

For each volume of ``../shared/microscopy3d`` (or ``--data``) and each method, prints the
wall time, the peak memory added by the run (resident set size sampled every 20 ms, above
the level before the run; "seg MiB": the same for the segmentation alone, before its
classes become objects), the nucleus-level F1 at IoU 0.5 and the mean F1 over IoU
0.5..0.95 (:mod:`napari_useg.metrics.instances`), and the foreground/background Hungarian
accuracy (prediction objects vs annotated objects as two classes); "bestfg" is the best
foreground/background accuracy that any choice of foreground labels of the method's own
label map could reach (every label to its majority, many-to-one): when it is below another
method's Hungarian accuracy, no rule choosing the foreground can close the gap.

Methods:

* ``otsu-reference``: the microscopists' pipeline on the raw intensities (scikit-image
  Gaussian sigma 1 voxel, Otsu, 6-connected components, objects < 64 voxels removed),
  the figures the registered method is checked against;
* ``otsu`` / ``otsu-watershed``: the registered ``otsu`` method on the prepared volume
  (intensities scaled and clipped at the 1st/99.8th percentiles), without and with the
  distance-transform watershed split using the spacing;
* ``kmeans3d``: 3-D k-means (k = 2, 3x3x3 windows);
* ``kanezaki-volume``: backprop clustering in volume mode (default ``volume`` preset);
* ``dfc-volume``: differentiable feature clustering in volume mode (its ``volume`` preset);
* ``mmt-volume``: mutual mean-teaching in volume mode (its ``volume`` preset);
* ``kanezaki-slices``: the same method on each z-slice alone (``fast`` preset), slice
  labels aligned to the previous slice as napari does for a stack.

Class maps become objects with :func:`napari_useg.core.instances.instances` (foreground:
every class but the one owning the largest connected region; spacing honoured), split by
the distance-transform watershed too with ``--split-classes``. ``--seeds N`` runs every
method with seeds ``seed .. seed + N - 1`` (one row each) and prints the mean per method:
the learned methods depend on the seed.

    OMP_NUM_THREADS=1 python benchmarks/volumes.py                 # everything
    OMP_NUM_THREADS=1 python benchmarks/volumes.py --volumes bbbc050_8cell --methods otsu
    OMP_NUM_THREADS=1 python benchmarks/volumes.py --methods kanezaki-volume --seeds 5 \
        --split-classes
    OMP_NUM_THREADS=1 python benchmarks/volumes.py --synthetic 256 512 512 \
        --methods otsu kanezaki-volume                  # size: time and peak memory

``--zarr DIR`` writes each volume to a zarr array first and passes the methods that array
(through dask), unread: the peak memory of a method that reads volumes a window at a time
(``dfc``) then leaves out the volume's data.

``--synthetic Z Y X`` replaces the shared volumes by one made here (no data needed): bright
balls (nuclei, radius 12 voxels in x and y) on a dark noisy background, voxel spacing
(2, 1, 1), and their ids as the annotation; with it the script also prints the memory
estimate the library checks before a Kanezaki or DFC run.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import dask.array as da
import numpy as np
import psutil
import tifffile
import torch
import zarr
from scipy import ndimage as ndi
from skimage.filters import gaussian, threshold_otsu
from skimage.measure import label as connected

from napari_useg import align_labels, segment
from napari_useg.core.instances import instances
from napari_useg.core.registry import get_method
from napari_useg.io.images import read_spacing
from napari_useg.metrics import hungarian_accuracy, many_to_one_accuracy
from napari_useg.metrics.instances import instance_scores

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "microscopy3d"
METHODS = ("otsu-reference", "otsu", "otsu-watershed", "kmeans3d", "kanezaki-volume",
           "dfc-volume", "mmt-volume", "kanezaki-slices")


class PeakMemory:
    """Peak resident memory above the level at entry, sampled every 20 ms in a thread."""

    def __enter__(self) -> PeakMemory:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def synthetic_volume(shape: tuple[int, int, int], n_balls: int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """``uint8`` volume of ``n_balls`` bright balls, their ids, and the spacing (2, 1, 1)."""
    rng = np.random.default_rng(seed)
    spacing = (2.0, 1.0, 1.0)
    radius = 12.0
    truth = np.zeros(shape, np.int32)
    half = np.array([radius / spacing[0], radius, radius])
    centres = rng.uniform(half + 1, np.array(shape) - half - 1, (n_balls, 3))
    for i, c in enumerate(centres, start=1):  # a few dozen balls, each in its own box
        box = tuple(slice(int(ci - h), int(ci + h) + 2) for ci, h in zip(c, half, strict=True))
        z, y, x = np.ogrid[box]
        inside = ((z - c[0]) * spacing[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= radius ** 2
        truth[box][inside] = i
    vol = np.where(truth > 0, 180.0, 30.0).astype(np.float32)
    vol += rng.normal(0.0, 10.0, shape).astype(np.float32)
    return np.clip(vol, 0, 255).astype(np.uint8), truth, spacing


def otsu_reference(raw: np.ndarray) -> np.ndarray:
    """The baseline as microscopists write it, on raw intensities."""
    smooth = gaussian(raw.astype(np.float64), sigma=1, preserve_range=True)
    objects = connected(smooth > threshold_otsu(smooth), connectivity=1)
    sizes = np.bincount(objects.ravel())
    small = sizes < 64
    small[0] = False
    objects[small[objects]] = 0
    return objects


def slice_by_slice(raw: np.ndarray, seed: int) -> np.ndarray:
    """Kanezaki (fast preset) on each z-slice, ids aligned to the previous slice."""
    out = np.zeros(raw.shape, dtype=np.int32)
    prev = None
    for z in range(raw.shape[0]):
        lab = segment(raw[z], "kanezaki", seed=seed, device="cpu")
        lab = lab if prev is None else align_labels(prev, lab)
        out[z] = lab
        prev = lab
    return out


def run_method(name: str, raw: np.ndarray, spacing: tuple[float, ...], seed: int,
               split: bool = False, params: dict | None = None, device: str = "cpu"
               ) -> tuple[np.ndarray, float, np.ndarray]:
    """Objects (0 = background) of one method on one volume (``params``: the learned
    methods'), the peak MiB of the segmentation alone (before classes become objects) and
    the method's own label map."""
    with PeakMemory() as mem:
        if name == "otsu-reference":
            objects = otsu_reference(raw)
            return objects, mem.mib, objects
        if name in ("otsu", "otsu-watershed"):
            lab = segment(raw, "otsu", spatial_dims=3, spacing=spacing,
                          watershed=name == "otsu-watershed")
            return lab - 1, mem.mib, lab  # the background (largest connected class) is label 1
        if name == "kmeans3d":
            classes = segment(raw, "kmeans", spatial_dims=3, spacing=spacing, n_clusters=2,
                              window=3, seed=seed)
        elif name in ("kanezaki-volume", "dfc-volume", "mmt-volume"):
            classes = segment(raw, name.split("-")[0], spatial_dims=3, spacing=spacing,
                              seed=seed, device=device, **(params or {}))
        elif name == "kanezaki-slices":
            classes = slice_by_slice(raw, seed)
        else:
            raise ValueError(f"unknown method {name!r}; choose from {METHODS}")
    return instances(classes, spacing=spacing, split=split), mem.mib, classes


def _shared_volumes(data: Path, names: list[str] | None) -> list[tuple]:
    """``(name, raw, truth, spacing)`` of the shared volumes (all, or those named)."""
    manifest = json.loads((data / "manifest.json").read_text())
    out = []
    for vol in manifest["volumes"]:
        if names and vol["name"] not in names:
            continue
        spacing = read_spacing(data / vol["image"]) or tuple(vol["spacing_zyx_um"])
        out.append((vol["name"], tifffile.imread(data / vol["image"]),
                    tifffile.imread(data / vol["mask"]), spacing))
    return out


def _value(text: str) -> int | float | str:
    """A ``--param`` value: an int, else a float, else the text (e.g. ``combine=contrast``)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--volumes", nargs="*", default=None)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="seeds seed..seed+N-1")
    parser.add_argument("--seed-stride", type=int, default=1, metavar="K",
                        help="seeds seed, seed+K, ... (with --param runs=K: disjoint groups "
                             "of K runs)")
    parser.add_argument("--split-classes", action="store_true",
                        help="split the objects of class maps by the distance-transform "
                             "watershed (with the spacing)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="torch device of the learned methods")
    parser.add_argument("--json", type=Path, default=None, help="also append rows here")
    parser.add_argument("--synthetic", type=int, nargs=3, metavar=("Z", "Y", "X"),
                        help="one synthetic volume of this shape instead of the shared ones")
    parser.add_argument("--balls", type=int, default=60, help="balls in --synthetic")
    parser.add_argument("--zarr", type=Path, default=None, metavar="DIR",
                        help="write each volume to a zarr array in DIR and pass the methods "
                             "that array, unread (dfc reads it a window at a time)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter or run option of the learned volume methods "
                             "(repeatable), e.g. patch_focus=0.5, runs=5, combine=contrast")
    parser.add_argument("--smooth", type=float, default=0.0, metavar="SIGMA",
                        help="Gaussian-smooth each volume (sigma in voxels) before every method")
    args = parser.parse_args()
    params = {k: _value(v) for k, v in (item.split("=", 1) for item in args.param)}
    torch.set_num_threads(args.threads)
    if args.synthetic:
        made = synthetic_volume(tuple(args.synthetic), args.balls, args.seed)
        volumes = [("synthetic_" + "x".join(map(str, args.synthetic)), *made)]
        for learned in ("kanezaki", "dfc", "mmt"):
            if f"{learned}-volume" in args.methods:
                method = get_method(learned)
                lazy = args.zarr is not None and method.lazy_volumes
                need = method.memory_needed(made[0].shape, 1, method.build("volume"),
                                            lazy=lazy)
                print(f"{learned} volume preset, estimated memory"
                      f"{' (read from zarr)' if lazy else ''}: {need / 2**20:.0f} MiB")
    else:
        volumes = _shared_volumes(args.data, args.volumes)
    print(f"torch threads {torch.get_num_threads()}; load {psutil.getloadavg()}")
    print(f"{'volume':22s} {'method':16s} {'time s':>7s} {'peak MiB':>8s} {'seg MiB':>8s} "
          f"{'objects':>7s} {'F1@0.5':>6s} {'mF1':>6s} {'Hung.':>6s} {'bestfg':>6s}")
    for name, raw, truth, spacing in volumes:
        if args.smooth > 0:  # before the zarr copy, which then holds the smoothed volume
            raw = ndi.gaussian_filter(np.asarray(raw, dtype=np.float32), args.smooth)
        if args.zarr is not None:
            store = zarr.open(str(args.zarr / f"{name}.zarr"), mode="w", shape=raw.shape,
                              chunks=(16, 128, 128), dtype=raw.dtype)
            store[:] = raw
            raw = da.from_zarr(store)
        annotated = (truth > 0).astype(np.int8)  # foreground / background of the truth
        for method in args.methods:
            rows = []
            for seed in range(args.seed, args.seed + args.seeds * args.seed_stride,
                              args.seed_stride):
                t0 = time.perf_counter()
                with PeakMemory() as mem:
                    objects, seg_mib, labels = run_method(
                        method, raw, spacing, seed, args.split_classes, params, args.device)
                seconds = time.perf_counter() - t0
                scores = instance_scores(objects, truth)
                hung = hungarian_accuracy((objects > 0).astype(np.int8), annotated)
                # the best foreground/background accuracy any choice of foreground labels
                # of the method's label map could reach (each label to its majority)
                best = many_to_one_accuracy(labels, annotated)
                row = {"volume": name, "method": method, "seed": seed,
                       "split": args.split_classes, "seconds": round(seconds, 2),
                       "peak_mib": round(mem.mib, 1), "segment_peak_mib": round(seg_mib, 1),
                       "objects": scores.n_pred,
                       "true_objects": scores.n_true, "f1_50": round(scores.f1_50, 3),
                       "mean_f1": round(scores.mean_f1, 3), "hungarian": round(hung, 3),
                       "best_fg": round(best, 3)}
                rows.append(row)
                print(f"{row['volume']:22s} {method:16s} {seconds:7.1f} {mem.mib:8.1f} "
                      f"{seg_mib:8.1f} {scores.n_pred:7d} {scores.f1_50:6.3f} "
                      f"{scores.mean_f1:6.3f} {hung:6.3f} {best:6.3f}  seed {seed}", flush=True)
                if args.json:
                    with args.json.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
            if len(rows) > 1:
                mean = {k: float(np.mean([r[k] for r in rows]))
                        for k in ("seconds", "f1_50", "mean_f1", "hungarian", "best_fg")}
                print(f"{name:22s} {method:16s} {mean['seconds']:7.1f} {'':8s} {'':8s} "
                      f"{'':7s} {mean['f1_50']:6.3f} {mean['mean_f1']:6.3f} "
                      f"{mean['hungarian']:6.3f} {mean['best_fg']:6.3f}  mean of {len(rows)} seeds",
                      flush=True)


if __name__ == "__main__":
    main()
