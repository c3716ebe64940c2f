"""``napari-useg evaluate``: score a method (or saved predictions) on an annotated image folder.

For every image of the dataset (BSDS500 layout or images/ + masks/, detected) and every
parameter setting of the sweep, the method segments the image and the result is scored
against every annotator: Hungarian and many-to-one accuracy, ARI, the BSDS region
benchmark (covering, PRI, VOI), the boundary benchmark and Kanezaki's segment
precision/recall. Outputs in ``--out``:

* ``per_image/<id>.json`` (+ ``.npz``): each finished image (a rerun skips them:
  an interrupted run resumes where it stopped);
* ``per_image.csv``: one row per image and setting;
* ``summary.md`` and ``summary.json``: ODS / OIS over the settings (see ``docs/evaluation.md``),
  and the images not scored (no annotation, or nothing to score): listed there and on
  stderr, with exit status 1 unless ``--allow-missing``;
* ``pr.png``: boundary and segment precision-recall curves.

The engine is :mod:`napari_useg.evaluation` (usable from Python without this command);
its per-image work, :func:`napari_useg.evaluation.evaluate_image` (picklable job in,
record out), runs as one task per image on :mod:`napari_useg.batch`'s Dask engine when
``--jobs`` > 1 (local worker processes) or with ``--scheduler`` (a running cluster).

A dataset-level method (IIC, InMARS, dfc_ref), or a saved model given with ``--model``,
is evaluated as its papers do (:mod:`napari_useg.evaluation.dataset_protocol`): trained
once on the split's images (saved in ``--out``/model), applied to every image, and
scored both per image and pooled (one cluster-to-class mapping for the whole set,
``pooled.json`` and a section of ``summary.md``).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from napari_useg.cli._params import (
    add_method_options,
    add_run_options,
    collect_params,
    preparse_method,
    run_options,
)
from napari_useg.cli._progress import follow
from napari_useg.core.options import SEGMENT_ONLY, FitOptions
from napari_useg.evaluation import EvaluationConfig, iter_evaluate, prepare_evaluation
from napari_useg.evaluation.coverage import skipped_lines
from napari_useg.evaluation.dataset_protocol import (
    is_dataset_method,
    iter_dataset_protocol,
    model_method,
)

NAME = "evaluate"
HELP = ("score a method or saved predictions on an annotated folder (BSDS500 or "
        "images/ + masks/): accuracy, covering/PRI/VOI, boundary F, segment AP")
DEVICE_HELP = ("'auto' (CUDA, then MPS, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'; scores "
               "are reproducible for the same seed on the same device (another device may "
               "give other labels: pass --device cpu to compare with CPU results)")


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("--data", required=True, metavar="ROOT",
                        help="dataset folder: images/<split>/ + groundTruth/<split>/ (BSDS500) "
                             "or images/ + masks/ (or masks_semantic/)")
    parser.add_argument("--split", default=None,
                        help="split folder (BSDS500 default: val; ignored without split level)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--method", "-m", default=None,
                     help="method to run (see `napari-useg methods`)")
    src.add_argument("--predictions", default=None, metavar="DIR",
                     help="score saved label maps instead: DIR/<id>.tif|png|npy, or <id>.mat "
                          "in the benchmark's segs format (one segmentation per setting)")
    src.add_argument("--model", default=None, metavar="DIR",
                     help="apply a saved dataset-level model (from `napari-useg fit`) to every "
                          "image and score it per image and pooled (one mapping for the set)")
    parser.add_argument("--output", default=None, metavar="NAME",
                        help="dataset-level model output to label with (default: the model's "
                             "default output, e.g. main for IIC)")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="evaluate every value of a method parameter (repeat for a grid); "
                             "gives the ODS/OIS choice")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="only the first N images (sorted by id)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="J",
                        help="images evaluated in parallel (worker processes of a local Dask "
                             "cluster; default 1: in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="evaluate the images on a running Dask scheduler, e.g. "
                             "tcp://host:8786 (see docs/batch.md)")
    parser.add_argument("--out", default="results", metavar="DIR",
                        help="output folder (default results/)")
    parser.add_argument("--ignore", default=None, metavar="V[,V...]",
                        help="ground-truth values not scored, e.g. 255")
    parser.add_argument("--masks-dir", default=None,
                        help="images/+masks/ layout: name of the masks folder")
    parser.add_argument("--hierarchy", nargs="?", type=int, const=25, default=0, metavar="N",
                        help="run the method once per image and score its hierarchy cut at "
                             "N evenly spaced thresholds (default 25), ODS/OIS over them as "
                             "for a BSDS ucm2")
    parser.add_argument("--no-boundary", action="store_true",
                        help="skip the boundary benchmark (the slowest part)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard results in --out made with other settings, or replace "
                             "the report files of a non-empty folder holding no results")
    parser.add_argument("--allow-missing", action="store_true",
                        help="exit 0 even when some images of the dataset were not scored (no "
                             "annotation, or nothing to score); they are listed either way")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_run_options(parser, FitOptions, skip=(*SEGMENT_ONLY, "checkpoint", "checkpoint_every"),
                    help={"device": DEVICE_HELP,
                          "normalisation": "dataset-level methods: " + _NORM_HELP})
    add_method_options(parser, preparse_method(argv, default=""))
    parser.set_defaults(_argv=list(argv))



_NORM_HELP = ("how raw values are scaled to [0, 1] for training and prediction: one range "
              "for the whole collection ('dataset') or each image between its own "
              "percentiles ('per_image'; 'per_image_dark': then inverted where the "
              "background is light; 'auto': per_image_dark for objects on a plain "
              "background, else per_image)")


def _ignore_arg(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--ignore expects integers separated by commas, got {text!r}") \
            from None
    return values or None


def run(args: argparse.Namespace) -> int:
    config = EvaluationConfig(
        data=args.data,
        method=model_method(args.model) if args.model is not None else args.method,
        predictions=args.predictions,
        params=collect_params(args), sweeps=args.sweep, split=args.split, limit=args.limit,
        out=args.out, ignore=_ignore_arg(args.ignore), masks_dir=args.masks_dir,
        boundary=not args.no_boundary, jobs=args.jobs, scheduler=args.scheduler,
        overwrite=args.overwrite, quiet=args.quiet, hierarchy=args.hierarchy,
        command="napari-useg " + shlex.join(getattr(args, "_argv", None)
                                            or ["evaluate", "..."]))
    if args.model is not None or is_dataset_method(args.method):
        snap = follow(iter_dataset_protocol(config, run_options(args, FitOptions,
                                                                preview_every=0),
                                            model=args.model, output=args.output),
                      args.method or "model", quiet=args.quiet)
        result = snap.info["result"]
        print(f"{result.evaluation.headline()}; {result.headline()}; wrote "
              f"{result.evaluation.out / 'summary.md'}")
        return 0
    if args.output is not None:
        raise ValueError("--output chooses the output of a dataset-level model (--model or a "
                         "dataset-level --method)")
    plan = prepare_evaluation(config, run_options(args, preview_every=0))
    if plan.resumed and not args.quiet:
        print(f"resuming: {plan.resumed} of {len(plan.ids)} images already evaluated in "
              f"{plan.per_image}", file=sys.stderr)
    if plan.recomputed:
        print(f"{plan.recomputed} image(s) evaluated before are recomputed: their image, "
              "annotation or prediction file changed since (or their record predates input "
              "checksums)", file=sys.stderr)
    snap = follow(iter_evaluate(plan), plan.desc, quiet=args.quiet, unit="img")
    result = snap.info["result"]
    print(f"{result.headline()}; wrote {result.out / 'summary.md'}")
    if result.skipped:
        n_total = result.summary.get("n_dataset_images", len(result.records))
        for line in skipped_lines(result.skipped, n_total):
            print(f"napari-useg evaluate: {line}", file=sys.stderr)
        if not args.allow_missing:
            print("napari-useg evaluate: the figures leave these images out; pass "
                  "--allow-missing to accept that (exit status 0)", file=sys.stderr)
            return 1
    return 0
