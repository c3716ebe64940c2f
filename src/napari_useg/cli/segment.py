"""``napari-useg segment``: segment one image, write labels (TIFF) and an overlay (PNG)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from napari_useg.api import iter_segment_stack_with, iter_segment_with, result_hierarchy
from napari_useg.cli._params import (
    add_method_options,
    add_run_options,
    collect_params,
    preparse_method,
    run_options,
)
from napari_useg.cli._progress import follow
from napari_useg.core.atomic import check_output
from napari_useg.core.params import params_to_dict
from napari_useg.core.registry import get_method
from napari_useg.core.version import __version__
from napari_useg.io import (
    open_volume,
    read_image,
    write_agreement,
    write_labels,
    write_overlay,
    write_ucm2,
)
from napari_useg.io.images import read_spacing
from napari_useg.io.samples import sample_image

NAME = "segment"
HELP = "segment one image (or the bundled sample) and write a labels TIFF"


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("image", nargs="?", help="image file (TIFF, PNG, JPEG...); a volume "
                                                 "with --spatial-dims 3 (spacing read from "
                                                 "ImageJ/OME metadata)")
    parser.add_argument("--sample", action="store_true",
                        help="use the bundled sample image (scikit-image's 'chelsea')")
    parser.add_argument("--method", "-m", default="kanezaki",
                        help="method name (see `napari-useg methods`); default kanezaki")
    parser.add_argument("-o", "--output", default=None,
                        help="labels TIFF to write (default: <image stem>_<method>_labels.tif)")
    parser.add_argument("--overlay", default=None, help="also write an overlay PNG here")
    parser.add_argument("--ucm", default=None, metavar="OUT.mat",
                        help="also write the result's hierarchy as a BSDS ucm2 .mat (every "
                             "granularity of one run; see docs/hierarchy.md)")
    parser.add_argument("--agreement", default=None, metavar="OUT.tif",
                        help="with --runs K > 1: also write the per-pixel agreement of the "
                             "runs with the result (their consensus, or the run chosen by "
                             "--combine contrast; float32 TIFF, 1 = every run agrees)")
    parser.add_argument("--stack", action="store_true",
                        help="the image is a z-stack or time-lapse: every axis before the "
                             "spatial ones (and the channels) is segmented slice by slice "
                             "(volume by volume with --spatial-dims 3), label ids aligned "
                             "from slice to slice")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_run_options(parser)
    add_method_options(parser, preparse_method(argv))


def run(args: argparse.Namespace) -> int:
    if args.sample == bool(args.image):
        raise ValueError("give either an IMAGE path or --sample")
    method = get_method(args.method)
    opts = run_options(args, preview_every=0)
    if args.stack and args.sample:
        raise ValueError("--stack segments the slices of a stack image: not with --sample")
    if args.stack and args.ucm:
        raise ValueError("--ucm writes one 2-D hierarchy: not with --stack")
    if args.sample:
        image, stem = sample_image(), "sample"
    elif opts.spatial_dims == 3 and method.lazy_volumes and not args.stack:
        # a zarr, TIFF or .npy volume opened unread: the method reads it window by window
        image, stem = open_volume(args.image), Path(args.image).stem
    else:
        image, stem = read_image(args.image), Path(args.image).stem
    inputs = [] if args.sample else [args.image]
    out = check_output(args.output or f"{stem}_{method.name}_labels.tif",
                       overwrite=args.overwrite, inputs=inputs)
    if args.overlay:
        overlay = check_output(args.overlay, overwrite=args.overwrite, inputs=inputs)
        if overlay.resolve() == out.resolve():
            raise ValueError(f"the labels and the overlay would both be written to {out}")
    if args.ucm:
        if opts.spatial_dims == 3:
            raise ValueError("--ucm writes a 2-D BSDS ucm2 map: there is none for a volume "
                             "(--spatial-dims 3)")
        ucm = check_output(args.ucm, overwrite=args.overwrite, inputs=inputs)
        if ucm.suffix.lower() != ".mat":
            raise ValueError(f"--ucm {ucm}: the file name must end in .mat")
    params = collect_params(args)
    if args.agreement:
        if opts.runs < 2:
            raise ValueError("--agreement needs --runs K with K >= 2 (the agreement of K "
                             "runs with their result)")
        agreement_out = check_output(args.agreement, overwrite=args.overwrite, inputs=inputs)
        if agreement_out.suffix.lower() not in (".tif", ".tiff"):
            raise ValueError(f"--agreement {agreement_out}: the file name must end in .tif")
        others = [out, *(Path(x) for x in (args.overlay, args.ucm) if x)]
        if agreement_out.resolve() in {o.resolve() for o in others}:
            raise ValueError(f"--agreement {agreement_out} is also another output")
    if opts.spacing is None and not args.sample and opts.spatial_dims == 3:
        spacing = read_spacing(args.image, opts.spatial_dims)
        if spacing is not None:
            opts = opts.replace(spacing=spacing)
            print(f"spacing from the file's metadata: {spacing}")
    t0 = time.perf_counter()
    snaps = (iter_segment_stack_with(image, method.name, opts, **params) if args.stack
             else iter_segment_with(image, method.name, opts, **params))
    snap = follow(snaps, method.name, quiet=args.quiet, unit="slice" if args.stack else "step")
    assert snap.labels is not None
    hierarchy = result_hierarchy(image, snap, opts) if args.ucm else None
    runtime = time.perf_counter() - t0
    meta = {
        "method": method.name, "preset": opts.preset or method.default_preset,
        "params": params_to_dict(method.build(opts.preset, params)), "seed": opts.seed,
        "device": opts.device, "napari_useg_version": __version__,
        "runtime_s": round(runtime, 3), "steps": snap.step, "stopped": snap.message,
        "source": "sample:chelsea" if args.sample else str(args.image),
        "spatial_dims": opts.spatial_dims, "spacing": opts.spacing, "result": opts.result,
        "runs": opts.runs, "combine": opts.combine if opts.runs > 1 else None,
        "stack": bool(args.stack),
    }
    write_labels(out, snap.labels, overwrite=args.overwrite, metadata=meta)
    what = "slices" if args.stack else "steps"
    print(f"wrote {out} ({int(snap.labels.max())} labels, {snap.step} {what}, {runtime:.1f} s; "
          f"{snap.message})")
    if args.agreement:
        agreement = snap.info["agreement"]
        write_agreement(args.agreement, agreement, overwrite=args.overwrite, metadata=meta)
        print(f"wrote {args.agreement} (mean agreement {float(agreement.mean()):.3f})")
    if hierarchy is not None:
        write_ucm2(args.ucm, hierarchy.ucm2(), overwrite=args.overwrite)
        print(f"wrote {args.ucm} (hierarchy of {hierarchy.n_regions} regions)")
    if args.overlay and (opts.spatial_dims == 3 or args.stack):
        print(f"no overlay for a {'stack' if args.stack else 'volume'} (an overlay PNG is 2-D)")
    elif args.overlay:
        write_overlay(args.overlay, image, snap.labels, channel_axis=opts.channel_axis,
                      overwrite=args.overwrite)
        print(f"wrote {args.overlay}")
    return 0
