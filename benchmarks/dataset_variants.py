"""Input and sampling variants of the dataset-level methods, measured on the nuclei set.

Runs ``benchmarks/dataset_methods.py`` (same arguments, same output folder layout) with
one or more of these changes, none of which is in the library (their figures are in
docs/benchmarks.md, "Dataset-level methods"):

* ``--flatten SIDE``: every image (training and labelling) is given to the method
  background-flattened: its channels (one for grey images), inverted where its
  background is light (:func:`napari_useg.core.image.light_background`), minus a grey
  opening with a ``SIDE`` x ``SIDE`` window smoothed by a box of the same side (a white
  top-hat), stretched to its 99.8th percentile, as 8-bit RGB. ``--flatten-fraction F``
  takes the side as the image's longest side over ``F`` instead;
* ``--anchor``: after flattening, each channel mapped piecewise-linearly so that its
  Otsu threshold lands on 0.5 (a per-image threshold built into the input);
* ``--structure-crops``: training crops are drawn where the image differs from its
  median (a crop's chance is proportional to its summed ``|x - median|``), instead of
  uniformly; ``--structure-share S`` draws that way only a share ``S`` of the crops.
  Every position is weighted here; InMARS's ``crop_placement="structure"`` (its ``fast``
  preset since these measurements) weights positions on an 8-pixel grid instead, and this
  option replaces it.

    OMP_NUM_THREADS=1 python benchmarks/dataset_variants.py --flatten 41 \\
        --dataset microscopy --method iic --param steps=400 --outputs main --out OUT
    OMP_NUM_THREADS=1 python benchmarks/dataset_variants.py --structure-crops \\
        --normalisation per_image_dark --dataset microscopy --method iic \\
        --param steps=400 --outputs main --out OUT
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

import dataset_methods
from napari_useg.core.image import light_background
from napari_useg.nn import training


def flatten(image: np.ndarray, side: int, fraction: float, anchor: bool) -> np.ndarray:
    """The background-flattened 8-bit RGB copy of an image (see the module docstring)."""
    a = image.astype(np.float32)
    if a.shape[-1] == 3 and np.array_equal(a[..., 0], a[..., 1]) \
            and np.array_equal(a[..., 1], a[..., 2]):
        a = a[..., :1]
    lo = np.percentile(a, 1, axis=(0, 1))
    hi = np.percentile(a, 99.8, axis=(0, 1))
    if light_background(a, lo, hi):
        a = a.max() - a
    s = (int(side) if side else int(max(a.shape[:2]) / fraction)) | 1
    bg = ndi.maximum_filter(ndi.minimum_filter(a, size=(s, s, 1)), size=(s, s, 1))
    d = np.clip(a - ndi.uniform_filter(bg, size=(s, s, 1)), 0, None)
    d = np.clip(d / max(float(np.percentile(d, 99.8)), 1e-6), 0, 1)
    if anchor:
        for c in range(d.shape[-1]):
            x = d[..., c]
            t = float(threshold_otsu(x)) if np.ptp(x) > 0 else 0.5
            d[..., c] = np.where(x <= t, 0.5 * x / max(t, 1e-6),
                                 0.5 + 0.5 * (x - t) / max(1 - t, 1e-6))
    out = (d * 255).astype(np.uint8)
    return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out


def structure_sampler(share: float) -> None:
    """Make :class:`napari_useg.nn.training.CropSampler` draw crops where structure is."""
    base_init = training.CropSampler.__init__

    def init(self, images, size, superpixels=None, **_placement):
        base_init(self, images, size, superpixels)
        s = self.size
        self.cdf = []
        for im in self.images:
            g = im.mean(-1)
            d = np.abs(g - np.median(g))
            # mean |x - median| over the s x s crop whose top-left corner is (y, x)
            c = ndi.uniform_filter(d, size=s, mode="constant", origin=-(s // 2))
            c = np.clip(c[: g.shape[0] - s + 1, : g.shape[1] - s + 1], 0, None).ravel()
            c = c.astype(np.float64) + 1e-9
            self.cdf.append(np.cumsum(c) / c.sum())

    def sample(self, rng, batch):
        s = self.size
        crops, sps, offset = [], [], 0
        for i in rng.choice(len(self.images), size=batch, p=self.prob):  # over the batch
            im = self.images[i]
            wx = im.shape[1] - s + 1
            if rng.random() < share:
                j = min(int(np.searchsorted(self.cdf[i], rng.random())), len(self.cdf[i]) - 1)
                y, x = divmod(j, wx)
            else:
                y, x = int(rng.integers(0, im.shape[0] - s + 1)), int(rng.integers(0, wx))
            crops.append(im[y:y + s, x:x + s])
            if self.sps is not None:  # superpixel ids renumbered 0..n-1, unique in the batch
                out, n = training.renumber_crop(self.sps[i][y:y + s, x:x + s], offset)
                offset += n
                sps.append(out)
        x_np = np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))
        if self.sps is None:
            return torch.from_numpy(x_np), None, 0
        return torch.from_numpy(x_np), torch.from_numpy(np.stack(sps)), offset

    training.CropSampler.__init__ = init
    training.CropSampler.sample = sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    ap.add_argument("--flatten", type=int, default=0, metavar="SIDE")
    ap.add_argument("--flatten-fraction", type=float, default=0.0, metavar="F")
    ap.add_argument("--anchor", action="store_true")
    ap.add_argument("--structure-crops", action="store_true")
    ap.add_argument("--structure-share", type=float, default=1.0, metavar="S")
    args, rest = ap.parse_known_args()
    if args.flatten or args.flatten_fraction:
        load = dataset_methods.load

        def flat_load(dataset, root):
            names, images, masks, k, ignore = load(dataset, root)
            images = [flatten(im, args.flatten, args.flatten_fraction, args.anchor)
                      for im in images]
            return names, images, masks, k, ignore

        dataset_methods.load = flat_load
    if args.structure_crops:
        structure_sampler(args.structure_share)
    sys.argv = [sys.argv[0], *rest]
    dataset_methods.main()


if __name__ == "__main__":
    main()
