"""Dataset-level methods (IIC, InMARS) against k-means and Felzenszwalb on the users' data.

Trains a method on all images of ``../shared/microscopy`` or ``../shared/satellite``
(masks unused for training), predicts every image, and scores against the masks:

* ``hung/img``: Hungarian (one-to-one) pixel accuracy per image, mean over images
  (``napari_useg.metrics.hungarian_accuracy``; the only score that makes sense for
  per-image methods, whose label ids differ from image to image);
* ``hung/set``: one Hungarian mapping for the whole set (the IIC protocol:
  pooled contingency table; only meaningful for dataset-level methods);
* ``m2o/img``, ``m2o/set``: many-to-one accuracy (each cluster to its majority
  class; per image with ``napari_useg.metrics.many_to_one_accuracy``), used for
  IIC's over-clustering head.

k is the number of mask classes (microscopy 2, satellite 6; satellite pixels
255 are ignored). Everything is resumable: the training keeps a checkpoint in
OUT, the fitted model is saved in OUT/model, per-image labels in OUT/labels.

    OMP_NUM_THREADS=1 python benchmarks/dataset_methods.py --dataset microscopy \
        --method iic --out bench_out/dataset/micro_iic
    OMP_NUM_THREADS=1 python benchmarks/dataset_methods.py --dataset microscopy \
        --method inmars --normalisation per_image --outputs region --param steps=60 --out ...
    python benchmarks/dataset_methods.py --dataset satellite --method kmeans --out ...
    OMP_NUM_THREADS=1 python benchmarks/dataset_methods.py --cost   # IIC step cost by setting
    python benchmarks/dataset_methods.py --summary bench_out/dataset   # markdown table
    python benchmarks/dataset_methods.py --common bench_out/dataset satellite  # same images
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import napari_useg
from napari_useg.core.options import NORMALISATIONS
from napari_useg.io import read_image
from napari_useg.metrics import (
    hungarian_accuracy,
    many_to_one_accuracy,
    pooled_hungarian_accuracy,
    pooled_many_to_one_accuracy,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATASETS = {
    # name: (images folder, masks folder, k, ignore value)
    "microscopy": ("microscopy/images", "microscopy/masks_semantic", 2, None),
    "satellite": ("satellite/images", "satellite/masks", 6, 255),
}


def load(dataset: str, root: Path) -> tuple[list[str], list[np.ndarray], list[np.ndarray], int,
                                            int | None]:
    """Images (RGB uint8), masks, k and the ignored mask value of a shared dataset."""
    img_dir, mask_dir, k, ignore = DATASETS[dataset]
    files = sorted((root / img_dir).iterdir())
    names, images, masks = [], [], []
    for f in files:
        im = read_image(f)
        if im.ndim == 3 and im.shape[-1] == 4:
            im = im[..., :3]
        names.append(f.stem)
        images.append(np.ascontiguousarray(im))
        masks.append(read_image(root / mask_dir / f"{f.stem}.png"))
    return names, images, masks, k, ignore


def in_groups(root: Path, dataset: str, names: list[str], prefixes: list[str]) -> list[bool]:
    """Whether each image's group in the dataset's ``manifest.json`` starts with a prefix."""
    manifest = root / dataset / "manifest.json"
    if not manifest.exists():
        raise SystemExit(f"--groups needs {manifest}")
    group = {it["name"]: it.get("group", "") for it in json.loads(manifest.read_text())["items"]}
    return [any(group.get(n, "").startswith(p) for p in prefixes if p) for n in names]


def scores(preds: list[np.ndarray], masks: list[np.ndarray], k: int,
           ignore: int | None) -> dict[str, float]:
    """Per-image and whole-set (pooled: napari_useg.metrics.pooled) accuracies."""
    pairs = list(zip(preds, masks, strict=True))
    return {
        "hung_img": float(np.mean([hungarian_accuracy(p, m, ignore) for p, m in pairs])),
        "hung_set": pooled_hungarian_accuracy(preds, masks, ignore),
        "m2o_img": float(np.mean([many_to_one_accuracy(p, m, ignore) for p, m in pairs])),
        "m2o_set": pooled_many_to_one_accuracy(preds, masks, ignore),
    }


def per_image(method: str, images, names, out: Path, k: int, params: dict,
              preset: str | None = None) -> list[np.ndarray]:
    """Labels of a per-image method (cached in OUT/labels).

    ``otsu`` gives one label per object: its labels are scored as object / background.
    """
    preds = []
    lab_dir = out / "labels"
    lab_dir.mkdir(parents=True, exist_ok=True)
    for name, im in zip(names, images, strict=True):
        f = lab_dir / f"{name}.npy"
        if f.exists():
            preds.append(np.load(f))
            continue
        kw = dict(params)
        if method == "kmeans":
            kw.setdefault("n_clusters", k)
        if method == "otsu":
            objects = napari_useg.segment(im, method, preset=preset, result="instances", **kw)
            lab = (objects > 0).astype(np.int32) + 1
        else:
            lab = napari_useg.segment(im, method, preset=preset, seed=0, device="cpu", **kw)
        np.save(f, lab)
        preds.append(lab)
    return preds


COST_SETTINGS = [  # (width, loss_at, T): the fast preset's neighbours and the paper's setting
    (0.25, "native", 1), (0.25, "native", 2), (0.25, "native", 3), (0.25, "input", 2),
    (0.25, "input", 10), (1.0, "native", 2), (1.0, "input", 10),
]


def step_cost(repeats: int = 3) -> None:
    """Seconds per IIC training step (crops 64, batch 8, RGB) for several settings."""
    from napari_useg.core.fitting import FitContext
    from napari_useg.core.image import PreparedImage
    from napari_useg.methods.iic import IICParams
    from napari_useg.methods.iic import fit as iic_fit

    rng = np.random.default_rng(0)
    ims = [PreparedImage(rng.random((128, 128, 3), dtype=np.float32), True, np.dtype("uint8"))]
    ctx = FitContext(seed=0, device=torch.device("cpu"), rgb=True)
    ref = None
    for width, loss_at, T in COST_SETTINGS:
        p = IICParams(width=width, loss_at=loss_at, half_window=T, input_size=64, batch_size=8,
                      steps=repeats + 1, alternate_every=1, lr=1e-3)
        times, t = [], time.perf_counter()
        for snap in iic_fit(ims, p, ctx):
            now = time.perf_counter()
            if snap.step > 1:  # the first step pays one-off costs
                times.append(now - t)
            t = now
        sec = float(np.median(times))
        ref = ref or sec
        print(f"width {width:4} loss at {loss_at:6} T {T:2}: {sec:6.2f} s/step "
              f"({sec / ref:5.1f}x the first row)", flush=True)


def summary(folder: Path) -> None:
    """Markdown table of every ``result.json`` under ``folder`` (method x protocol x data).

    Columns: Hungarian and many-to-one accuracy per image (mean; each image its own
    mapping) and pooled (one mapping for the set, ``napari_useg.metrics.pooled``);
    training steps and seconds; labelling seconds per image. A per-image method's pooled
    score (marked ``*``) takes its label ids as they come: nothing makes them mean the
    same class on every image, but k-means' often do (same seed, similar images).
    """
    rows = []
    for f in sorted(folder.glob("*/result.json")):
        r = json.loads(f.read_text())
        outs = [o for o in ("main", "over", "region", "backbone", "multiscale", r["method"])
                if o in r]
        n = r.get("n_images", 1)
        for o in outs:
            name = r["method"] if o == r["method"] else f"{r['method']} ({o})"
            extra = {k: v for k, v in r.get("params", {}).items()
                     if k not in ("steps", "n_clusters")}
            if extra:
                name += " " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))
            sc = r[o]
            per_image_method = o == r["method"]  # no rule makes its ids agree across images
            mark = "*" if per_image_method else ""
            hs = f"{sc['hung_set']:.3f}{mark}"
            ms = f"{sc['m2o_set']:.3f}{mark}"
            norm = "-" if per_image_method else r.get("normalisation", "dataset")
            train = r.get("train", {})
            t_train = f"{train.get('steps', '')} / {train.get('seconds', '')}" if train else "-"
            apply = (r["predict_seconds"] / n / len(outs) if "predict_seconds" in r
                     else r.get("seconds", 0) / n)
            rows.append(f"| {r['dataset']} | {name} | {norm} | {sc['hung_img']:.3f} | {hs} | "
                        f"{sc['m2o_img']:.3f} | {ms} | {t_train} | {apply:.2f} |")
    print("| data | method (output) | normalisation | Hungarian / image | Hungarian pooled | "
          "many-to-one / image | many-to-one pooled | train steps / s | apply s / image |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def common(folder: Path, dataset: str) -> None:
    """Per-image scores of every method on the images all of them have labelled so far.

    For runs cut short (a baseline that did not get through every image): the
    comparison is then on the same images for all methods.
    """
    names, _, masks, k, ignore = load(dataset, SHARED)
    dirs = {}
    for d in sorted(folder.glob(f"{dataset}_*")):
        if not d.is_dir():
            continue
        for lab in sorted(d.glob("labels*")):
            out = lab.name[len("labels_"):] if lab.name != "labels" else ""
            dirs[d.name[len(dataset) + 1:] + (f" ({out})" if out else "")] = lab
    have = [i for i, n in enumerate(names)
            if all((lab / f"{n}.npy").exists() for lab in dirs.values())]
    print(f"{dataset}: {len(have)} of {len(names)} images labelled by every method")
    print("| method (output) | Hungarian / image | many-to-one / image |")
    print("|---|---|---|")
    for name, lab in dirs.items():
        pairs = [(np.load(lab / f"{names[i]}.npy"), masks[i]) for i in have]
        h = np.mean([hungarian_accuracy(p, m, ignore) for p, m in pairs])
        m2o = np.mean([many_to_one_accuracy(p, m, ignore) for p, m in pairs])
        print(f"| {name} | {h:.3f} | {m2o:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if "--summary" in sys.argv:
        summary(Path(sys.argv[sys.argv.index("--summary") + 1]))
        return
    if "--common" in sys.argv:
        i = sys.argv.index("--common")
        common(Path(sys.argv[i + 1]), sys.argv[i + 2])
        return
    if "--cost" in sys.argv:
        torch.set_num_threads(1)
        step_cost()
        return
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument("--method", required=True,
                    help="iic, inmars, or a per-image method (kmeans, felzenszwalb, otsu)")
    ap.add_argument("--preset", default=None,
                    help="the method's preset (default: fast for iic and inmars, else the "
                         "method's default)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device for training and labelling")
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--param", action="append", default=[], help="name=value override")
    ap.add_argument("--normalisation", default="auto", choices=NORMALISATIONS,
                    help="how the model scales raw values (napari_useg.core.fitting)")
    ap.add_argument("--groups", default="",
                    help="comma-separated prefixes of the manifest's image groups: train and "
                         "score on those images only (e.g. gray_dark for the fluorescence "
                         "images of microscopy)")
    ap.add_argument("--model", default=None,
                    help="label with this saved model instead of training (then --param sets "
                         "only the prediction's refine parameters)")
    ap.add_argument("--outputs", default="",
                    help="comma-separated outputs to score (default: all of the method's)")
    args = ap.parse_args()
    if args.preset is None and args.method in ("iic", "inmars"):
        args.preset = "fast"
    torch.set_num_threads(args.threads)
    root = Path(args.data)
    if not (root / DATASETS[args.dataset][0]).is_dir():
        raise SystemExit(f"{args.dataset} not found under {root}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = dict(kv.split("=", 1) for kv in args.param)
    names, images, masks, k, ignore = load(args.dataset, root)
    if args.groups:
        keep = in_groups(root, args.dataset, names, args.groups.split(","))
        names, images, masks = ([v for v, ok in zip(seq, keep, strict=True) if ok]
                                for seq in (names, images, masks))
        if not names:
            raise SystemExit(f"no image of {args.dataset} in the groups {args.groups}")
    result: dict = {"dataset": args.dataset, "groups": args.groups, "method": args.method, "k": k,
                    "n_images": len(images), "params": params, "preset": args.preset}
    if args.method in ("iic", "inmars"):
        result["normalisation"] = args.normalisation
    t0 = time.perf_counter()
    if args.method in ("iic", "inmars"):
        method = napari_useg.get_method(args.method)
        params.setdefault("n_clusters", k)
        mdir = out / "model"
        if args.model:
            model = napari_useg.load_model(args.model, args.device)
            given = {kk: v for kk, v in params.items() if kk != "n_clusters"}
            if any(not kk.startswith("refine") for kk in given):
                raise SystemExit("with --model, --param sets only refine parameters")
            model.params = method.build(None, {**vars(model.params), **given})
            result["model"] = str(args.model)
        elif mdir.exists():
            model = napari_useg.load_model(mdir, args.device)
        else:
            log = open(out / "train.log", "a")  # noqa: SIM115 - kept open during training
            snap = None
            for snap in napari_useg.iter_fit(images, args.method, preset=args.preset,
                                             seed=args.seed, device=args.device,
                                             checkpoint=out / "checkpoint.pt",
                                             checkpoint_every=10,
                                             normalisation=args.normalisation, **params):
                print(f"{time.strftime('%H:%M:%S')} {snap}", file=log, flush=True)
            model = snap.info["model"]
            model.save(mdir)
        result["train"] = model.training
        result["normalisation_used"] = model.normalisation
        result["params_all"] = {kk: v for kk, v in vars(model.params).items()}
        t1 = time.perf_counter()
        outputs = {"iic": ["main", "over"], "inmars": ["region", "backbone", "multiscale"]}
        chosen = [o for o in args.outputs.split(",") if o] or outputs[args.method]
        for o in chosen:
            lab_dir = out / f"labels_{o}"
            lab_dir.mkdir(exist_ok=True)
            preds = []
            for name, im in zip(names, images, strict=True):
                f = lab_dir / f"{name}.npy"
                if f.exists():
                    preds.append(np.load(f))
                    continue
                lab = model.predict(im, output=o)
                np.save(f, lab)
                preds.append(lab)
            result[o] = scores(preds, masks, k, ignore)
        result["predict_seconds"] = round(time.perf_counter() - t1, 1)
        del method
    else:
        preds = per_image(args.method, images, names, out, k, params, args.preset)
        result[args.method] = scores(preds, masks, k, ignore)
        result["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    json.dump(result, sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
