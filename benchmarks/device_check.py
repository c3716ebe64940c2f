"""Speed of the default and paper presets on one device: the CUDA figure against the CPU one.

Runs, on the bundled sample image (scikit-image's ``chelsea``, 300x451) and on a
synthetic 100x100x100 volume, each case once after a small warm-up run (CUDA start-up and
kernel selection are not timed):

* Kanezaki ``fast`` (the default) and ``paper`` (full resolution, p = q = 100; capped at
  ``--paper-iters`` iterations, so the figure to compare is seconds per iteration);
* DFC ``fast`` and MMT ``fast``;
* Kanezaki's, DFC's and MMT's ``volume`` presets on the 100^3 volume (the size of the
  30 s target).

Run it once with ``--device cuda`` on a GPU machine and once with ``--device cpu`` here;
the ratio of the two is the speed-up. Prints one line per case: seconds, iterations,
seconds per iteration, labels.

    python benchmarks/device_check.py --device cpu --threads 2
    python benchmarks/device_check.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import psutil
import torch

from napari_useg import iter_segment
from napari_useg.io.samples import sample_image
from volumes import synthetic_volume


def run_case(image, method: str, device: str, **kwargs) -> tuple[float, int, int]:
    """Seconds, iterations and labels of one run (the device synchronised at the end)."""
    t0 = time.perf_counter()
    *_, last = iter_segment(image, method, device=device, seed=0, **kwargs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, int(last.step), int(last.labels.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: keep)")
    parser.add_argument("--paper-iters", type=int, default=100)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
            else f"CPU, {torch.get_num_threads()} torch threads")
    print(f"torch {torch.__version__}; {name}; load {psutil.getloadavg()}")
    chelsea = sample_image("chelsea")
    volume, _, spacing = synthetic_volume((100, 100, 100), 12)
    run_case(chelsea[:64, :64], "kanezaki", args.device, max_iter=3)  # warm-up
    cases = [
        ("kanezaki fast", chelsea, "kanezaki", {}),
        ("kanezaki paper", chelsea, "kanezaki",
         {"preset": "paper", "max_iter": args.paper_iters}),
        ("dfc fast", chelsea, "dfc", {}),
        ("mmt fast", chelsea, "mmt", {}),
        ("kanezaki volume 100^3", volume, "kanezaki",
         {"spatial_dims": 3, "spacing": spacing}),
        ("dfc volume 100^3", volume, "dfc", {"spatial_dims": 3, "spacing": spacing}),
        ("mmt volume 100^3", volume, "mmt", {"spatial_dims": 3, "spacing": spacing}),
    ]
    print(f"{'case':24s} {'s':>8s} {'iters':>6s} {'s/iter':>8s} {'labels':>6s}")
    for label, image, method, kwargs in cases:
        sec, steps, n = run_case(image, method, args.device, **kwargs)
        print(f"{label:24s} {sec:8.2f} {steps:6d} {sec / max(steps, 1):8.4f} {n:6d}",
              flush=True)


if __name__ == "__main__":
    main()
