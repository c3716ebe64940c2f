"""``napari-useg fit``: train a dataset-level method (IIC, InMARS) on images and save the model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_useg.cli._params import add_method_options, collect_params, preparse_method

NAME = "fit"
HELP = "train a dataset-level method (iic, inmars) on image files/folders and save the model"


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("images", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--method", "-m", default="iic", help="iic or inmars (default iic)")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--preset", default=None, help="paper or fast (default: fast)")
    parser.add_argument("--channel-axis", type=int, default=None,
                        help="axis of each image holding channels (RGB is detected)")
    parser.add_argument("--normalisation", default="dataset", choices=("dataset", "per_image"),
                        help="scale values with ranges of the whole training set (stored in the "
                             "model) or per image")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--checkpoint", default=None,
                        help="training-state file; rerun with it to resume an interrupted fit")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_method_options(parser, preparse_method(argv, default="iic"))


def run(args: argparse.Namespace) -> int:
    from napari_useg.api import iter_fit
    from napari_useg.core.registry import get_method

    method = get_method(args.method)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    snaps = iter_fit(args.images, method.name, preset=args.preset,
                     channel_axis=args.channel_axis, seed=args.seed, device=args.device,
                     normalisation=args.normalisation, checkpoint=args.checkpoint,
                     **collect_params(args))
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(desc=f"fit {method.name}", unit="step", file=sys.stderr)
    snap = None
    for snap in snaps:
        if bar is not None:
            bar.total = snap.total
            bar.n = snap.step
            if snap.loss is not None:
                bar.set_postfix({"loss": f"{snap.loss:.3f}"}, refresh=False)
            bar.refresh()
    if bar is not None:
        bar.close()
    assert snap is not None and snap.done
    model = snap.info["model"]
    model.save(out, overwrite=args.overwrite)
    print(f"wrote {out} ({method.name}, {model.training.get('steps')} steps on "
          f"{model.training.get('images')} image(s), {snap.elapsed:.1f} s)")
    return 0
