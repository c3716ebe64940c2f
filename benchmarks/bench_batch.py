"""Throughput of ``napari_useg.batch`` over BSDS500 images, per cluster layout, and its overhead.

For each method (``kmeans``; ``kanezaki:fast`` = Kanezaki 2018 with the ``fast`` preset)
over the first ``--n`` images of BSDS500 val, prints and writes as JSON:

* ``loop``: a plain loop in this process calling the same per-image function the
  engine runs (:func:`napari_useg.batch.segment_file`: read, segment, write labels
  and record), with torch using all the cores;
* one row per ``--layouts`` entry ``WxT`` (default ``1x2`` and ``2x1``): a local Dask
  cluster of W worker processes with T threads each, started, warmed up (every
  worker imports the package), then :func:`napari_useg.batch.run` timed on it;
  images per minute, peak RSS of each worker (``ru_maxrss``) and its RSS after the
  warm-up;
* the engine's overhead: time of the ``1xC`` layout (C = cores, the same compute as
  the loop) over the loop time, minus 1, without the cluster start-up (reported
  separately: it is paid once per run, not per image). The loop runs before and after
  the layouts and their mean is the reference, to expose drift of a shared machine;
* the engine's gap: wall time of a layout minus the per-image times its workers
  recorded (``total_s`` of the records, summed and divided by the workers): the time
  spent outside the per-image function (scheduling, transfers, idle workers at the
  end). Less sensitive to other load than the ratio above;
* the engine's cost per task: ``--noop`` tasks that do nothing, run on the warmed-up
  cluster through the same engine call; milliseconds per task (per worker), to set
  against seconds of work per image.

Whether every layout gave the same labels as the loop is reported too (k-means must;
torch methods may differ in the last bits with another thread count).

    python benchmarks/bench_batch.py [--n 40] [--methods kmeans,kanezaki:fast]
                                     [--layouts 1x2,2x1] [--json out.json]

The figures are only meaningful on a quiet machine: rerun there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "bsds500" / "images" / "val"


def _worker_memory() -> dict[str, float]:
    import psutil

    return {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "rss_mib": psutil.Process().memory_info().rss / 2**20}


def _warm_up() -> int:
    import napari_useg.api  # noqa: F401 - the imports a first task would otherwise pay
    import napari_useg.batch.runner  # noqa: F401
    from napari_useg.core.registry import all_methods

    return len(all_methods())


def _config(method: str, preset: str | None, seed: int) -> dict:
    from napari_useg.core.params import params_to_dict
    from napari_useg.core.registry import get_method

    m = get_method(method)
    return json.loads(json.dumps({
        "method": m.name, "preset": preset if preset is not None else m.default_preset,
        "params": params_to_dict(m.build(preset, {})), "seed": seed, "channel_axis": None,
        "device": "cpu", "model": None}))


def _plain_loop(files: list[Path], method: str, preset: str | None, out: Path,
                threads: int) -> float:
    import torch

    from napari_useg.batch import BatchJob, output_paths, segment_file

    torch.set_num_threads(threads)
    out.mkdir(parents=True)
    cfg = _config(method, preset, 0)
    t0 = time.perf_counter()
    for f in files:
        lab, rec = output_paths(out, f)
        r = segment_file(BatchJob(str(f), str(lab), str(rec), cfg))
        if r["status"] != "ok":
            raise RuntimeError(f"{f}: {r['error']['message']}")
    return time.perf_counter() - t0


def _engine(files: list[Path], method: str, preset: str | None, out: Path, workers: int,
            threads: int, noop: int) -> dict:
    from napari_useg import batch

    t0 = time.perf_counter()
    with batch.open_client(workers=workers, threads_per_worker=threads, quiet=True,
                           dashboard=False) as info:
        info.client.run(_warm_up)
        startup = time.perf_counter() - t0
        before = info.client.run(_worker_memory)
        t1 = time.perf_counter()
        s = batch.run(files, method=method, preset=preset, out_dir=out, client=info.client,
                      device="cpu", seed=0)
        elapsed = time.perf_counter() - t1
        after = info.client.run(_worker_memory)
        per_task = None
        if noop:
            t2 = time.perf_counter()
            n_ok = sum(o.ok for o in batch.run_on(info, _noop, list(range(noop))))
            per_task = (time.perf_counter() - t2) * workers / noop
            assert n_ok == noop
    if not s.ok:
        raise RuntimeError(str(s))
    work = sum(json.loads(r.record.read_text())["total_s"] for r in s.results)
    gap = elapsed - work / workers
    return {"startup_s": startup, "elapsed_s": elapsed, "work_s": work, "gap_s": gap,
            "noop_ms_per_task_per_worker": None if per_task is None else 1000 * per_task,
            "gap_fraction": gap / elapsed,
            "peak_mib": sorted(round(v["peak_mib"], 1) for v in after.values()),
            "rss_after_warmup_mib": sorted(round(v["rss_mib"], 1) for v in before.values())}


def _noop(item: int) -> int:
    return item


def _same(a: Path, b: Path, files: list[Path]) -> bool:
    import tifffile

    return all(np.array_equal(tifffile.imread(a / f"{f.stem}_labels.tif"),
                              tifffile.imread(b / f"{f.stem}_labels.tif")) for f in files)


def main(argv: list[str] | None = None) -> int:
    from napari_useg.batch import machine_cores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of images")
    ap.add_argument("--n", type=int, default=40, help="images (first N by name; default 40)")
    ap.add_argument("--methods", default="kmeans,kanezaki:fast",
                    help="comma-separated METHOD[:PRESET] (default kmeans,kanezaki:fast)")
    ap.add_argument("--layouts", default=None,
                    help="comma-separated WORKERSxTHREADS (default 1xC,Cx1 for C cores)")
    ap.add_argument("--no-loop", action="store_true", help="skip the plain loop")
    ap.add_argument("--noop", type=int, default=100,
                    help="empty tasks timed per layout for the engine's cost per task "
                         "(default 100; 0: skip)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--keep", default=None, help="keep outputs in this folder")
    args = ap.parse_args(argv)
    folder = Path(args.images)
    if not folder.is_dir():
        print(f"skipped: no image folder at {folder} (BSDS500 lives in ../shared)")
        return 0
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png", ".tif"))
    files = files[: args.n]
    cores = machine_cores()
    layouts = args.layouts or f"1x{cores},{cores}x1"
    plan = []
    for item in layouts.split(","):
        w, _, t = item.strip().partition("x")
        plan.append((int(w), int(t)))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_batch_"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report: dict = {"n_images": len(files), "cores": cores, "load_avg_1min_at_start": load,
                    "methods": {}}
    print(f"{len(files)} images from {folder}, {cores} cores, load average {load:.1f}")
    try:
        for spec in args.methods.split(","):
            method, _, preset = spec.strip().partition(":")
            preset = preset or None
            tag = f"{method}:{preset}" if preset else method
            rows: dict = {}
            base = work / tag.replace(":", "_")
            if not args.no_loop:
                secs = _plain_loop(files, method, preset, base / "loop", cores)
                rows["loop"] = {"elapsed_s": secs, "images_per_min": 60 * len(files) / secs}
                print(f"{tag:16s} loop      {rows['loop']['images_per_min']:8.2f} img/min "
                      f"({secs:.1f} s)", flush=True)
            for w, t in plan:
                name = f"{w}x{t}"
                r = _engine(files, method, preset, base / name, w, t, args.noop)
                r["images_per_min"] = 60 * len(files) / r["elapsed_s"]
                if "loop" in rows:
                    r["same_labels_as_loop"] = _same(base / "loop", base / name, files)
                rows[name] = r
                print(f"{tag:16s} {name:9s} {r['images_per_min']:8.2f} img/min "
                      f"({r['elapsed_s']:.1f} s; start-up {r['startup_s']:.1f} s; engine gap "
                      f"{r['gap_s']:.2f} s = {100 * r['gap_fraction']:.1f}%; empty task "
                      f"{r['noop_ms_per_task_per_worker'] or float('nan'):.1f} ms; peak RSS per "
                      f"worker {r['peak_mib']} MiB, after warm-up {r['rss_after_warmup_mib']} "
                      f"MiB; same labels as loop: {r.get('same_labels_as_loop')})", flush=True)
            if not args.no_loop:
                secs = _plain_loop(files, method, preset, base / "loop_after", cores)
                rows["loop_after"] = {"elapsed_s": secs, "images_per_min": 60 * len(files) / secs}
                ref = (rows["loop"]["elapsed_s"] + secs) / 2
                print(f"{tag:16s} loop again {rows['loop_after']['images_per_min']:7.2f} img/min "
                      f"({secs:.1f} s)", flush=True)
                one = rows.get(f"1x{cores}")
                if one is not None:
                    one["overhead_vs_loop"] = one["elapsed_s"] / ref - 1
                    print(f"{tag:16s} overhead of the engine (1x{cores}) vs the mean loop: "
                          f"{100 * one['overhead_vs_loop']:+.1f}% (wall), engine gap "
                          f"{100 * one['gap_fraction']:.1f}% of its wall time", flush=True)
            report["methods"][tag] = rows
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["load_avg_1min_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
