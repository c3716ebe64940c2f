"""``napari-useg segment``: segment one image, write labels (TIFF) and an overlay (PNG)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from napari_useg.cli._params import add_method_options, collect_params, preparse_method
from napari_useg.core.params import params_to_dict
from napari_useg.core.registry import get_method

NAME = "segment"
HELP = "segment one image (or the bundled sample) and write a labels TIFF"


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("image", nargs="?", help="image file (TIFF, PNG, JPEG...)")
    parser.add_argument("--sample", action="store_true",
                        help="use the bundled sample image (scikit-image's 'chelsea')")
    parser.add_argument("--method", "-m", default="kanezaki",
                        help="method name (see `napari-useg methods`); default kanezaki")
    parser.add_argument("--preset", default=None, help="named parameter set, e.g. paper or fast")
    parser.add_argument("--channel-axis", type=int, default=None,
                        help="axis of the image holding channels (RGB is detected)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("-o", "--output", default=None,
                        help="labels TIFF to write (default: <image stem>_<method>_labels.tif)")
    parser.add_argument("--overlay", default=None, help="also write an overlay PNG here")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_method_options(parser, preparse_method(argv))


def run(args: argparse.Namespace) -> int:
    from napari_useg import __version__
    from napari_useg.api import iter_segment
    from napari_useg.io import read_image, write_labels, write_overlay
    from napari_useg.io.samples import sample_image

    if args.sample == bool(args.image):
        raise ValueError("give either an IMAGE path or --sample")
    method = get_method(args.method)
    if args.sample:
        image, stem = sample_image(), "sample"
    else:
        image, stem = read_image(args.image), Path(args.image).stem
    out = Path(args.output or f"{stem}_{method.name}_labels.tif")
    for target in (out, Path(args.overlay) if args.overlay else None):
        if target is not None and target.exists() and not args.overwrite:
            raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    params = collect_params(args)
    t0 = time.perf_counter()
    snaps = iter_segment(image, method.name, preset=args.preset, channel_axis=args.channel_axis,
                         seed=args.seed, device=args.device, preview_every=0, **params)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(desc=method.name, unit="step", file=sys.stderr, leave=True)
    snap = None
    for snap in snaps:
        if bar is not None:
            bar.total = snap.total
            bar.n = snap.step
            post = {}
            if snap.loss is not None:
                post["loss"] = f"{snap.loss:.3f}"
            if snap.n_labels is not None:
                post["labels"] = snap.n_labels
            bar.set_postfix(post, refresh=False)
            bar.refresh()
    if bar is not None:
        bar.close()
    assert snap is not None and snap.labels is not None
    runtime = time.perf_counter() - t0
    meta = {
        "method": method.name, "preset": args.preset or method.default_preset,
        "params": params_to_dict(method.build(args.preset, params)), "seed": args.seed,
        "device": args.device, "napari_useg_version": __version__,
        "runtime_s": round(runtime, 3), "steps": snap.step, "stopped": snap.message,
        "source": "sample:chelsea" if args.sample else str(args.image),
    }
    write_labels(out, snap.labels, overwrite=args.overwrite, metadata=meta)
    print(f"wrote {out} ({int(snap.labels.max())} labels, {snap.step} steps, {runtime:.1f} s; "
          f"{snap.message})")
    if args.overlay:
        write_overlay(args.overlay, image, snap.labels, channel_axis=args.channel_axis,
                      overwrite=args.overwrite)
        print(f"wrote {args.overlay}")
    return 0
