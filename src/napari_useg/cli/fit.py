"""``napari-useg fit``: train a dataset-level method (IIC, InMARS, DFC reference mode), save it."""

from __future__ import annotations

import argparse

from napari_useg.api import iter_fit_with
from napari_useg.cli._params import (
    add_method_options,
    add_run_options,
    collect_params,
    preparse_method,
    run_options,
)
from napari_useg.cli._progress import follow
from napari_useg.core.atomic import check_output
from napari_useg.core.model import is_model_folder
from napari_useg.core.options import SEGMENT_ONLY, FitOptions
from napari_useg.core.registry import get_method

NAME = "fit"
HELP = ("train a dataset-level method (iic, inmars, dfc_ref) on image files/folders and save "
        "the model")


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("images", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--method", "-m", default="iic",
                        help="iic, inmars or dfc_ref (default iic)")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_run_options(parser, FitOptions, skip=SEGMENT_ONLY)
    add_method_options(parser, preparse_method(argv, default="iic"))


def run(args: argparse.Namespace) -> int:
    method = get_method(args.method)
    out = check_output(args.out, overwrite=args.overwrite, inputs=args.images, folder=True)
    if out.exists() and not is_model_folder(out):
        raise ValueError(f"{out} is not a model folder written by napari-useg; refusing to "
                         "replace it: choose another --out")
    opts = run_options(args, FitOptions)
    snap = follow(iter_fit_with(args.images, method.name, opts, **collect_params(args)),
                  f"fit {method.name}", quiet=args.quiet)
    assert snap.done
    model = snap.info["model"]
    model.save(out, overwrite=args.overwrite)
    print(f"wrote {out} ({method.name}, {model.training.get('steps')} steps on "
          f"{model.training.get('images')} image(s), {snap.elapsed:.1f} s)")
    return 0
