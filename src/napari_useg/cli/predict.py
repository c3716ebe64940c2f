"""``napari-useg predict``: label images with a saved dataset-level model (tiled)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from napari_useg.cli._params import add_run_options, run_options
from napari_useg.core.atomic import check_output
from napari_useg.core.model import load_model
from napari_useg.core.options import SEGMENT_ONLY
from napari_useg.core.version import __version__
from napari_useg.io import read_image, write_labels

NAME = "predict"
HELP = "label images with a model saved by `napari-useg fit` (tiled, any size)"


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("images", nargs="+", help="image file(s) to label")
    parser.add_argument("--model", required=True, help="model folder written by `fit`")
    parser.add_argument("-o", "--output-file", dest="output_file", default=None,
                        help="labels TIFF (one image only; default <stem>_labels.tif)")
    parser.add_argument("--out-dir", default=None,
                        help="folder for <stem>_labels.tif files (several images)")
    parser.add_argument("--output", default=None,
                        help="model output: main/over (iic), region/backbone/multiscale (inmars), "
                             "argmax (dfc_ref)")
    parser.add_argument("--tile-size", type=int, default=512, help="tile side (default 512)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_run_options(parser, skip=("seed", "preset", *SEGMENT_ONLY))


def run(args: argparse.Namespace) -> int:
    if args.output_file and len(args.images) > 1:
        raise ValueError("-o names one file; use --out-dir for several images")
    if args.out_dir:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    targets = []
    for img in args.images:
        stem = Path(img).stem
        if args.output_file:
            t = Path(args.output_file)
        elif args.out_dir:
            t = Path(args.out_dir) / f"{stem}_labels.tif"
        else:
            t = Path(f"{stem}_labels.tif")
        check_output(t, overwrite=args.overwrite, inputs=[*args.images, args.model])
        targets.append(t)
    if len(set(targets)) < len(targets):
        raise ValueError("two images have the same file stem, so their labels would overwrite "
                         "each other; label them into separate folders")
    opts = run_options(args)
    model = load_model(args.model, device=opts.device)
    output = model.check_output(args.output)
    for img, target in zip(args.images, targets, strict=True):
        image = read_image(img)
        bar = None if args.quiet else tqdm(desc=Path(img).name, unit="tile", file=sys.stderr)

        def tick(done: int, total: int, bar=bar) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        labels = model.predict(image, channel_axis=opts.channel_axis, output=output,
                               tile_size=args.tile_size, on_tile=tick)
        if bar is not None:
            bar.close()
        meta = {"method": model.method, "model": str(args.model), "output": output,
                "source": str(img), "napari_useg_version": __version__}
        write_labels(target, labels, overwrite=args.overwrite, metadata=meta)
        print(f"wrote {target} ({model.n_labels(output)} classes, output {output})")
    return 0
