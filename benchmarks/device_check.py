"""Speed of the default and paper presets on one device: the CUDA figure against the CPU one.

Runs, on the bundled sample image (scikit-image's ``chelsea``, 300x451) and on a
synthetic 100x100x100 volume, each case once after a small warm-up run (CUDA start-up and
kernel selection are not timed) and without previews, as ``segment`` runs:

* Kanezaki ``fast`` (the default) and ``paper`` (full resolution, p = q = 100; capped at
  ``--paper-iters`` iterations, so the figure to compare is seconds per iteration);
* DFC ``fast`` and MMT ``fast``;
* Kanezaki's, DFC's and MMT's ``volume`` presets on the 100^3 volume (the size of the
  30 s target);
* with ``--large``, DFC's and MMT's ``volume`` presets on a 256x512x512 volume of 60 balls
  (the size of the 4 GB target), with the share of balls found (F1 at IoU 0.5).

Run it once with ``--device cuda`` on a GPU machine and once with ``--device cpu`` here;
the ratio of the two is the speed-up. Prints one line per case: seconds, iterations,
seconds per iteration, labels.

    python benchmarks/device_check.py --device cpu --threads 2
    python benchmarks/device_check.py --device cuda --large
    python benchmarks/device_check.py --device cpu --threads 2 --only volume
    python benchmarks/device_check.py --device cpu --threads 2 --large --only 256 --previews 10
"""

from __future__ import annotations

import argparse
import time

import psutil
import torch

from napari_useg import iter_segment
from napari_useg.io.samples import sample_image
from napari_useg.metrics.instances import instance_scores
from volumes import synthetic_volume


def run_case(image, method: str, device: str, previews: int = 0, **kwargs):
    """Seconds, iterations, previews made and the last progress item of one run (device
    synchronised)."""
    t0 = time.perf_counter()
    *steps, last = iter_segment(image, method, device=device, seed=0, preview_every=previews,
                                **kwargs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    made = sum(s.labels is not None for s in steps)
    return time.perf_counter() - t0, int(last.step), made, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: keep)")
    parser.add_argument("--paper-iters", type=int, default=100)
    parser.add_argument("--only", default="", help="run only the cases whose name holds this")
    parser.add_argument("--previews", type=int, default=0,
                        help="ask for a preview every N iterations (0: none, as segment)")
    parser.add_argument("--large", action="store_true",
                        help="add DFC and MMT on a 256x512x512 volume")
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
    truth = None
    if args.large:
        big, truth, big_spacing = synthetic_volume((256, 512, 512), 60)
        cases += [(f"{m} volume 256x512x512", big, m,
                   {"spatial_dims": 3, "spacing": big_spacing, "result": "instances",
                    "min_object_size": 64}) for m in ("dfc", "mmt")]
    cases = [case for case in cases if args.only in case[0]]
    print(f"{'case':26s} {'s':>8s} {'iters':>6s} {'s/iter':>8s} {'labels':>6s} "
          f"{'F1@0.5':>6s} {'GPU GiB':>7s} {'previews':>8s}")
    for label, image, method, kwargs in cases:
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sec, steps, made, last = run_case(image, method, args.device, args.previews, **kwargs)
        f1 = (f"{instance_scores(last.labels, truth).f1_50:6.3f}"
              if kwargs.get("result") == "instances" else f"{'':6s}")
        gib = (f"{torch.cuda.max_memory_allocated() / 2**30:7.2f}"
               if args.device.startswith("cuda") else f"{'':7s}")
        print(f"{label:26s} {sec:8.2f} {steps:6d} {sec / max(steps, 1):8.4f} "
              f"{int(last.labels.max()):6d} {f1} {gib} {made:8d}", flush=True)


if __name__ == "__main__":
    main()
