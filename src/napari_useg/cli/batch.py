"""``napari-useg batch``: segment a whole folder on this machine or a Dask cluster."""

from __future__ import annotations

import argparse
import sys

from napari_useg.batch.outputs import DEFAULT_TILE_TASKS_ABOVE, OUTPUT_FORMATS
from napari_useg.batch.runner import run as run_batch
from napari_useg.cli._params import (
    add_method_options,
    add_run_options,
    collect_params,
    preparse_method,
    run_options,
)
from napari_useg.core.options import SEGMENT_ONLY

NAME = "batch"
HELP = ("segment every image of folders/globs with one Dask task per image (per tile for "
        "large images with --model; local cluster or --scheduler); resumable, writes "
        "<stem>_labels.tif (or .zarr) + .json per image")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT_DIR_OR_GLOB",
                        help="folder(s) of images, quoted glob pattern(s) ('**' recurses) "
                             "or files")
    parser.add_argument("--method", "-m", default=None,
                        help="method name (see `napari-useg methods`); not needed with --model")
    parser.add_argument("--out", required=True, metavar="OUT_DIR",
                        help="output folder: <stem>_labels.tif and <stem>_labels.json per image")
    parser.add_argument("--model", default=None, metavar="SAVED_MODEL",
                        help="model folder written by `napari-useg fit`: loaded once, sent to "
                             "each worker once")
    parser.add_argument("--model-output", default=None,
                        help="with --model: which output labels the images (e.g. main/over)")
    parser.add_argument("--tile-size", type=_positive, default=512,
                        help="with --model: tile side of the prediction; also the chunk side "
                             "of zarr outputs (default 512)")
    parser.add_argument("--format", dest="output_format", choices=OUTPUT_FORMATS,
                        default="auto",
                        help="labels as compressed TIFF or chunked zarr; auto (default): zarr "
                             "for images above --tile-tasks-above pixels")
    parser.add_argument("--tile-tasks-above", type=_positive,
                        default=DEFAULT_TILE_TASKS_ABOVE, metavar="PIXELS",
                        help="images with more pixels are large: zarr output and, with "
                             "--model, one task per tile (default 64000000)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="submit to a running Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--workers", type=_positive, default=None, metavar="N",
                       help="processes of the local cluster (default: sized to the machine)")
    parser.add_argument("--threads-per-worker", type=_positive, default=None, metavar="T",
                        help="compute threads of each image's task (default: cores / workers)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs made with other settings or from changed inputs, "
                             "and files at output names not written by a batch run "
                             "(up-to-date outputs are always kept; inputs never replaced)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no dashboard address")
    add_run_options(parser, skip=SEGMENT_ONLY, help={
        "seed": "random seed of every image",
        "channel_axis": "axis of each image holding channels (RGB is detected)",
    })
    add_method_options(parser, preparse_method(argv, default=""))


def run(args: argparse.Namespace) -> int:
    if args.method is None and args.model is None:
        raise ValueError("give --method (or --model)")
    # an unreachable --scheduler raises SchedulerUnreachableError, a ValueError: one line
    summary = run_batch(
        args.inputs, method=args.method, out_dir=args.out, scheduler=args.scheduler,
        workers=args.workers, threads_per_worker=args.threads_per_worker,
        model=args.model, options=run_options(args), overwrite=args.overwrite,
        model_output=args.model_output, tile_size=args.tile_size,
        output_format=args.output_format, tile_tasks_above=args.tile_tasks_above,
        progress=not args.quiet, quiet=args.quiet, **collect_params(args))
    print(summary)
    if summary.failed:
        print(f"napari-useg batch: {summary.failed} image(s) failed; their errors are in "
              f"their records (<stem>_labels.json)", file=sys.stderr)
    return summary.exit_code
