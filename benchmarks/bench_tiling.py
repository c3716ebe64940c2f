"""Peak memory and time of tiled prediction on a large RGB image (default 10000 x 10000).

Builds an IIC model (fast preset, a few training steps on small random crops:
the cost of prediction does not depend on the weights), makes a synthetic
``uint8`` RGB image of the requested size (NumPy, or a lazy dask array with
``--dask``), predicts it tile by tile and prints the peak resident memory of the
process (``ru_maxrss``) next to the sizes of the image and of the label map.

    OMP_NUM_THREADS=1 python benchmarks/bench_tiling.py --size 10000
    OMP_NUM_THREADS=1 python benchmarks/bench_tiling.py --size 10000 --dask
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

import napari_useg


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_block(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Smooth colour pattern plus texture, ``uint8`` RGB, for rows y0:y1 and columns x0:x1."""
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    r = 128 + 100 * np.sin(xx / 180.0)
    g = 128 + 100 * np.cos(yy / 240.0)
    b = 128 + 60 * np.sin((xx + yy) / 7.0)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def make_image(size: int, lazy: bool):
    """The test image, built in row blocks (NumPy) or as a dask array of chunks."""
    if lazy:
        return _dask_image(size, 2048)
    img = np.empty((size, size, 3), np.uint8)
    for y in range(0, size, 1000):
        img[y:y + 1000] = synthetic_block(y, min(y + 1000, size), 0, size)
    return img


def _dask_image(size: int, chunk: int):
    import dask
    import dask.array as da

    rows = []
    for y in range(0, size, chunk):
        row = []
        for x in range(0, size, chunk):
            h, w = min(chunk, size - y), min(chunk, size - x)
            d = dask.delayed(synthetic_block)(y, y + h, x, x + w)
            row.append(da.from_delayed(d, (h, w, 3), np.uint8))
        rows.append(da.concatenate(row, axis=1))
    return da.concatenate(rows, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--dask", action="store_true", help="pass a lazy dask array")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width", type=float, default=0.25, help="IIC trunk width")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (64, 64, 3), np.uint8) for _ in range(2)]
    model = napari_useg.fit(crops, "iic", preset="fast", steps=2, width=args.width,
                            input_size=32, batch_size=2, device="cpu")
    base = peak_rss_mb()
    img = make_image(args.size, args.dask)
    after_img = peak_rss_mb()
    t0 = time.perf_counter()
    n_tiles = []
    labels = model.predict(img, tile_size=args.tile,
                           on_tile=lambda done, total: n_tiles.append(total))
    secs = time.perf_counter() - t0
    peak = peak_rss_mb()
    print(f"image {args.size}x{args.size} RGB uint8 ({'dask' if args.dask else 'numpy'}), "
          f"{img.nbytes / 2**20:.0f} MB; labels int32 {labels.nbytes / 2**20:.0f} MB")
    print(f"tiles {n_tiles[-1]} of {args.tile} px, margin {model.margin()} px; "
          f"{secs:.1f} s ({args.size * args.size / secs / 1e6:.2f} Mpx/s, {args.threads} thread)")
    print(f"peak RSS: {peak:.0f} MB (after model {base:.0f} MB, after image {after_img:.0f} MB); "
          f"limit 4096 MB: {'OK' if peak < 4096 else 'EXCEEDED'}")
    print(f"labels: {np.bincount(labels.ravel()).tolist()}")


if __name__ == "__main__":
    main()
