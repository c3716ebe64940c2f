"""``napari-useg evaluate``: score a method (or saved predictions) on an annotated image folder.

For every image of the dataset (BSDS500 layout or images/ + masks/, detected) and every
parameter setting of the sweep, the method segments the image and the result is scored
against every annotator: Hungarian and many-to-one accuracy, ARI, the BSDS region
benchmark (covering, PRI, VOI), the boundary benchmark and Kanezaki's segment
precision/recall. Outputs in ``--out``:

* ``per_image/<id>.json`` (+ ``.npz``): each finished image (a rerun skips them:
  an interrupted run resumes where it stopped);
* ``per_image.csv``: one row per image and setting;
* ``summary.md`` and ``summary.json``: ODS / OIS over the settings (see ``docs/evaluation.md``);
* ``pr.png``: boundary and segment precision-recall curves.

The per-image work is the pure top-level function :func:`evaluate_image` (picklable
job in, record out), run as one task per image by :mod:`napari_useg.batch`'s Dask engine
when ``--jobs`` > 1 (local worker processes) or with ``--scheduler`` (a running cluster).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.cli._params import add_method_options, collect_params, preparse_method

__all__ = ["ImageJob", "evaluate_image", "parse_sweeps", "read_prediction", "summarise"]

NAME = "evaluate"
HELP = ("score a method or saved predictions on an annotated folder (BSDS500 or "
        "images/ + masks/): accuracy, covering/PRI/VOI, boundary F, segment AP")

#: Bump when the per-image record changes (older records are then recomputed).
RECORD_VERSION = 1
IOU_THRESHOLDS = (0.5, 0.7)
PREDICTION_EXTENSIONS = (".tif", ".tiff", ".png", ".npy", ".mat")


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
    parser.add_argument("--preset", default=None, help="named parameter set of the method")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="evaluate every value of a method parameter (repeat for a grid); "
                             "gives the ODS/OIS choice")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, mps")
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
    parser.add_argument("--no-boundary", action="store_true",
                        help="skip the boundary benchmark (the slowest part)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard results in --out made with other settings")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_method_options(parser, preparse_method(argv, default=""))
    parser.set_defaults(_argv=list(argv))


# --------------------------------------------------------------------------- per image


@dataclass(frozen=True)
class ImageJob:
    """Everything :func:`evaluate_image` needs for one image (picklable).

    Attributes
    ----------
    id : str
        Image id.
    image, annotation : str
        Image file and ground-truth file (BSDS ``.mat`` or mask image).
    kind : {"bsds", "masks"}
        Ground-truth format.
    settings : list of dict
        Method parameters of each setting (empty for predictions).
    method, preset : str or None
        Method to run (``None`` when scoring predictions).
    prediction : str or None
        Prediction file (instead of a method).
    seed : int
    device : str
    ignore : tuple of int or None
    boundary : bool
        Run the boundary benchmark.
    """

    id: str
    image: str
    annotation: str
    kind: str
    settings: list[dict[str, Any]] = field(default_factory=list)
    method: str | None = None
    preset: str | None = None
    prediction: str | None = None
    seed: int = 0
    device: str = "cpu"
    ignore: tuple[int, ...] | None = None
    boundary: bool = True


def read_prediction(path: str | os.PathLike) -> list[np.ndarray]:
    """Label maps of a prediction file (several for a ``segs`` ``.mat``)."""
    p = Path(path)
    if p.suffix.lower() == ".mat":
        from napari_useg.io.bsds import read_segs

        return read_segs(p)
    if p.suffix.lower() == ".npy":
        arr = np.load(p, allow_pickle=False)
    else:
        from napari_useg.io.images import read_image

        arr = read_image(p)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and np.all(arr[..., :3] == arr[..., :1]):
        arr = arr[..., 0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{p}: a prediction must be a 2-D integer label map, got shape "
                         f"{arr.shape} dtype {arr.dtype}")
    return [arr]


def _annotations(job: ImageJob) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    if job.kind == "bsds":
        from napari_useg.io.bsds import read_bsds_gt

        gt = read_bsds_gt(job.annotation)
        return gt.segmentations, gt.boundaries
    from napari_useg.io.datasets import read_mask

    return [read_mask(job.annotation)], None


def evaluate_image(job: ImageJob) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Segment one image under every setting and score it (pure: files are only read).

    Parameters
    ----------
    job : ImageJob

    Returns
    -------
    record : dict
        JSON-serialisable scores: per setting ``params``, ``n_labels``, ``seconds``,
        ``hungarian``, ``many_to_one``, ``covering``, ``pri``, ``voi``, ``ari``,
        region and boundary counts, segment precision/recall.
    arrays : dict
        Segment match records (``s<k>_<field>``) for pooling over the dataset.
    """
    try:
        return _evaluate_image(job)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise type(exc)(f"image {job.id}: {msg}") from exc


def _evaluate_image(job: ImageJob) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from napari_useg.metrics.bsds import (
        boundary_counts_maps,
        gt_boundaries_from_segs,
        region_counts_segs,
        seg2bdry,
    )
    from napari_useg.metrics.contingency import valid_mask
    from napari_useg.metrics.score import score_all
    from napari_useg.metrics.segments import segment_matches, segment_pr

    t_start = time.perf_counter()
    gts, gt_bdry = _annotations(job)
    shape = gts[0].shape
    masks = [valid_mask(g, job.ignore) for g in gts]
    mask = None if masks[0] is None else np.logical_and.reduce(masks)
    labels_list: list[np.ndarray] = []
    seconds: list[float] = []
    params_list: list[dict[str, Any]] = []
    if job.prediction is not None:
        t0 = time.perf_counter()
        labels_list = read_prediction(job.prediction)
        seconds = [(time.perf_counter() - t0) / len(labels_list)] * len(labels_list)
        params_list = [{"segs": k + 1} for k in range(len(labels_list))]
    else:
        from napari_useg.api import segment
        from napari_useg.io.images import read_image

        image = read_image(job.image)
        for setting in job.settings:
            t0 = time.perf_counter()
            labels = segment(image, job.method, preset=job.preset, seed=job.seed,
                             device=job.device, **setting)
            seconds.append(time.perf_counter() - t0)
            labels_list.append(labels)
            params_list.append(dict(setting))
    for k, lab in enumerate(labels_list):
        if lab.shape != shape:
            raise ValueError(f"prediction {k + 1} has shape {lab.shape}, ground truth {shape}")
    region = region_counts_segs(gts, labels_list, mask=mask, gt_zero_is_region=job.kind != "bsds")
    bcounts = None
    if job.boundary:
        if gt_bdry is None:
            gt_bdry = gt_boundaries_from_segs(gts)
        bcounts = boundary_counts_maps((seg2bdry(lab) for lab in labels_list), gt_bdry,
                                       mask=mask)
    settings_out = []
    arrays: dict[str, np.ndarray] = {}
    for k, lab in enumerate(labels_list):
        scores = score_all(lab, gts, ignore=job.ignore)
        seg = segment_matches(lab, gts, ignore=job.ignore, thresholds=IOU_THRESHOLDS)
        for name, arr in seg.to_arrays().items():
            arrays[f"s{k}_{name}"] = arr
        entry: dict[str, Any] = {
            "index": k, "params": params_list[k], "n_labels": int(len(np.unique(lab))),
            "seconds": round(seconds[k], 4), **{key: float(v) for key, v in scores.items()},
            "region_counts": [float(region.cnt_r[k]), float(region.sum_r[k]),
                              float(region.cnt_p[k]), float(region.sum_p[k])],
            "ri": float(region.ri[k]), "region_voi": float(region.voi[k]),
        }
        if bcounts is not None:
            entry["boundary_counts"] = [int(bcounts.cnt_r[k]), int(bcounts.sum_r[k]),
                                        int(bcounts.cnt_p[k]), int(bcounts.sum_p[k])]
        for t in IOU_THRESHOLDS:
            curve = segment_pr(seg, t)
            entry[f"segments@{t}"] = {"precision": curve.final_precision,
                                      "recall": curve.final_recall, "f": curve.f,
                                      "ap": curve.ap}
        settings_out.append(entry)
    record = {
        "version": RECORD_VERSION, "id": job.id, "shape": list(shape),
        "n_annotators": len(gts), "cnt_r_best": float(region.cnt_r_best),
        "settings": settings_out, "seconds_total": round(time.perf_counter() - t_start, 4),
    }
    return record, arrays


# --------------------------------------------------------------------------- run set-up


def parse_sweeps(sweeps: Sequence[str], method: Any) -> list[dict[str, Any]]:
    """Settings of a ``--sweep name=v1,v2`` list: the grid of all value combinations.

    Raises
    ------
    ValueError
        For malformed sweeps, unknown parameters or invalid values (all checked now).
    """
    infos = {i.name: i for i in method.param_infos}
    axes: list[tuple[str, list[Any]]] = []
    for s in sweeps:
        name, sep, values = s.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise ValueError(f"--sweep expects NAME=V1,V2,..., got {s!r}")
        if name not in infos:
            raise ValueError(f"--sweep: method {method.name!r} has no parameter {name!r}; "
                             f"parameters: {sorted(infos)}")
        if any(n == name for n, _ in axes):
            raise ValueError(f"--sweep: parameter {name!r} given twice")
        vals = [infos[name].convert(v.strip()) for v in values.split(",") if v.strip()]
        axes.append((name, vals))
    if not axes:
        return [{}]
    names = [n for n, _ in axes]
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(v for _, v in axes))]


def _setting_label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _prediction_file(pred_dir: Path, image_id: str) -> Path:
    for ext in PREDICTION_EXTENSIONS:
        p = pred_dir / f"{image_id}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"no prediction for image {image_id} in {pred_dir} "
                            f"(looked for {image_id}{{{','.join(PREDICTION_EXTENSIONS)}}})")


def _ignore_arg(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--ignore expects integers separated by commas, got {text!r}") \
            from None
    return values or None


def _write_text(path: Path, text: str) -> None:
    from napari_useg.core.atomic import atomic_write

    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(text)


def _save_record(per_image: Path, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    from napari_useg.core.atomic import atomic_write

    with atomic_write(per_image / f"{record['id']}.npz", overwrite=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    _write_text(per_image / f"{record['id']}.json", json.dumps(record, indent=1))


def _load_record(per_image: Path, image_id: str) -> dict[str, Any] | None:
    jp = per_image / f"{image_id}.json"
    if not jp.is_file() or not (per_image / f"{image_id}.npz").is_file():
        return None
    try:
        rec = json.loads(jp.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("version") == RECORD_VERSION else None


def _load_arrays(per_image: Path, image_id: str) -> dict[str, np.ndarray]:
    with np.load(per_image / f"{image_id}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _run_jobs(jobs: list[ImageJob], n_workers: int, per_image: Path, quiet: bool,
              total: int, done: int, desc: str, scheduler: str | None = None) -> None:
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, desc=desc, unit="img", file=sys.stderr,
               disable=quiet, leave=True)
    try:
        if scheduler is None and (n_workers <= 1 or len(jobs) <= 1):
            for job in jobs:
                record, arrays = evaluate_image(job)
                _save_record(per_image, record, arrays)
                bar.update(1)
            return
        from napari_useg.batch import iter_map

        # one Dask task per image: local worker processes sized so that workers x threads
        # fits the cores, or the workers of a running cluster (the same engine as `batch`)
        outcomes = iter_map(evaluate_image, jobs, scheduler=scheduler,
                            workers=None if scheduler else min(n_workers, len(jobs)),
                            quiet=quiet, name="evaluate")
        try:
            for o in outcomes:
                if not o.ok:  # stop at the first error, as the serial run does
                    raise o.exception if o.exception is not None else RuntimeError(o.error)
                record, arrays = o.value
                _save_record(per_image, record, arrays)
                bar.update(1)
        finally:
            outcomes.close()  # cancels what is left and closes a local cluster
    finally:
        bar.close()


# --------------------------------------------------------------------------- summary


def summarise(records: list[dict[str, Any]], arrays: list[dict[str, np.ndarray]],
              labels: list[str]) -> dict[str, Any]:
    """Dataset figures (ODS / OIS over the settings) from per-image records."""
    from napari_useg.metrics.bsds import (
        BoundaryCounts,
        RegionCounts,
        collect_boundary,
        collect_region,
    )
    from napari_useg.metrics.protocol import ods_ois
    from napari_useg.metrics.segments import SegmentMatches, segment_pr

    n_set = len(records[0]["settings"])
    if any(len(r["settings"]) != n_set for r in records):
        raise ValueError("images were evaluated with different numbers of settings")
    out: dict[str, Any] = {"n_images": len(records), "settings": labels, "metrics": {}}

    def table(key: str) -> np.ndarray:
        return np.array([[s[key] for s in r["settings"]] for r in records], np.float64)

    for key, better in (("hungarian", True), ("many_to_one", True), ("ari", True)):
        r = ods_ois(table(key), higher_is_better=better)
        out["metrics"][key] = {"ods": r.ods, "ods_setting": labels[r.ods_index], "ois": r.ois,
                               "per_setting": r.per_setting.tolist()}
    thr = np.arange(1, n_set + 1, dtype=np.float64)
    rc = [RegionCounts(thr, *np.array([s["region_counts"] for s in r["settings"]]).T,
                       r["cnt_r_best"], np.array([s["ri"] for s in r["settings"]]),
                       np.array([s["region_voi"] for s in r["settings"]])) for r in records]
    reg = collect_region(rc)
    out["metrics"]["covering"] = {
        "ods": reg.covering_ods, "ods_setting": labels[int(reg.covering_ods_threshold) - 1],
        "ois": reg.covering_ois, "best": reg.covering_best, "per_setting": reg.covering.tolist()}
    out["metrics"]["pri"] = {"ods": reg.pri_ods, "ods_setting": labels[int(reg.pri_ods_threshold)
                                                                      - 1],
                             "ois": reg.pri_ois, "per_setting": reg.pri.tolist()}
    out["metrics"]["voi"] = {"ods": reg.voi_ods, "ods_setting": labels[int(reg.voi_ods_threshold)
                                                                      - 1],
                             "ois": reg.voi_ois, "per_setting": reg.voi.tolist()}
    if all("boundary_counts" in s for r in records for s in r["settings"]):
        bc = [BoundaryCounts(thr, *np.array([s["boundary_counts"] for s in r["settings"]]).T)
              for r in records]
        b = collect_boundary(bc)
        k = int(np.argmax(b.f))
        out["metrics"]["boundary_f"] = {
            "ods": float(b.f[k]), "ods_setting": labels[k], "ois": b.ois_f,
            "ods_recall": float(b.recall[k]), "ods_precision": float(b.precision[k]),
            "ap": b.ap, "ods_interpolated": b.ods_f,
            "per_setting": b.f.tolist(), "recall": b.recall.tolist(),
            "precision": b.precision.tolist()}
    for t in IOU_THRESHOLDS:
        aps, curves = [], []
        for s in range(n_set):
            pooled = SegmentMatches.concatenate([SegmentMatches.from_arrays(
                {f: a[f"s{s}_{f}"] for f in ("thresholds", "sizes", "best_iou", "new_found",
                                             "n_gt")}) for a in arrays])
            c = segment_pr(pooled, t)
            aps.append(c.ap)
            curves.append(c)
        k = int(np.argmax(aps))
        out["metrics"][f"segment_ap@{t}"] = {
            "ods": float(aps[k]), "ods_setting": labels[k], "per_setting": aps,
            "precision": curves[k].final_precision, "recall": curves[k].final_recall}
        out.setdefault("_curves", {})[t] = curves
    seg_seconds = np.array([[s["seconds"] for s in r["settings"]] for r in records])
    out["seconds_per_image"] = {
        "segmentation_per_setting": float(seg_seconds.mean()),
        "segmentation_all_settings": float(seg_seconds.sum(axis=1).mean()),
        "total": float(np.mean([r["seconds_total"] for r in records])),
    }
    return out


_ROWS = (
    ("hungarian", "Hungarian accuracy (mean over annotators, then images)"),
    ("many_to_one", "many-to-one accuracy"),
    ("ari", "adjusted Rand index"),
    ("covering", "segmentation covering"),
    ("pri", "probabilistic Rand index"),
    ("voi", "variation of information (bits, lower is better)"),
    ("boundary_f", "boundary F"),
    ("segment_ap@0.5", "segment AP @ IoU 0.5"),
    ("segment_ap@0.7", "segment AP @ IoU 0.7"),
)


def summary_markdown(summary: dict[str, Any], config: dict[str, Any], command: str) -> str:
    """The Markdown summary table."""
    what = config["method"] or f"predictions {config['predictions']}"
    lines = [f"# napari-useg evaluate: {what} on {config['data']}"
             f"{' (' + config['split'] + ')' if config['split'] else ''}", "",
             f"{summary['n_images']} images, {len(summary['settings'])} setting(s). "
             f"Command: `{command}`", "",
             "| metric | ODS | ODS setting | OIS |", "|---|---|---|---|"]
    m = summary["metrics"]
    for key, title in _ROWS:
        if key not in m:
            continue
        ois = m[key].get("ois")
        lines.append(f"| {title} | {m[key]['ods']:.4f} | {m[key]['ods_setting']} | "
                     f"{'' if ois is None else f'{ois:.4f}'} |")
    if "boundary_f" in m and len(summary["settings"]) > 1:
        lines.append(f"| boundary AP (over settings) | {m['boundary_f']['ap']:.4f} | | |")
    if "covering" in m:
        lines.append(f"| covering, best per region | {m['covering']['best']:.4f} | | |")
    sec = summary["seconds_per_image"]
    lines += ["", f"Seconds per image: {sec['segmentation_per_setting']:.2f} per setting "
                  f"(segmentation), {sec['total']:.2f} in all (segmentation of every setting "
                  f"and scoring).", ""]
    if len(summary["settings"]) > 1:
        lines += ["| setting | Hungarian | many-to-one | covering | PRI | VOI | boundary F |",
                  "|---|---|---|---|---|---|---|"]
        for i, lab in enumerate(summary["settings"]):
            bf = m.get("boundary_f", {}).get("per_setting")
            lines.append(
                f"| {lab} | {m['hungarian']['per_setting'][i]:.4f} | "
                f"{m['many_to_one']['per_setting'][i]:.4f} | "
                f"{m['covering']['per_setting'][i]:.4f} | {m['pri']['per_setting'][i]:.4f} | "
                f"{m['voi']['per_setting'][i]:.4f} | "
                f"{'' if bf is None else f'{bf[i]:.4f}'} |")
        lines.append("")
    lines += ["ODS: the one setting best for the whole set; OIS: each image's best setting. "
              "Covering, PRI, VOI and boundary F follow the BSDS500 benchmark; see "
              "docs/evaluation.md.", ""]
    return "\n".join(lines)


def pr_plot_png(summary: dict[str, Any]) -> bytes:
    """PNG of the boundary PR points (per setting) and the segment PR curves (Agg, no GUI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    grid = np.linspace(0.01, 1, 200)
    for ax in (ax1, ax2):
        for f in np.arange(0.1, 1.0, 0.1):  # iso-F curves
            p = f * grid / (2 * grid - f)
            ok = (p > 0) & (p <= 1)
            ax.plot(grid[ok], p[ok], color="0.85", lw=0.8, zorder=0)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
    m = summary["metrics"]
    if "boundary_f" in m:
        b = m["boundary_f"]
        ax1.plot(b["recall"], b["precision"], "o-", color="C0", label="settings")
        k = int(np.argmax(b["per_setting"]))
        ax1.plot([b["recall"][k]], [b["precision"][k]], "*", ms=14, color="C3",
                 label=f"ODS F={b['ods']:.3f} ({b['ods_setting']})")
        ax1.legend(loc="lower left", fontsize=8)
    ax1.set_title("boundaries (BSDS benchmark)")
    for t, color in zip(IOU_THRESHOLDS, ("C0", "C1"), strict=True):
        key = f"segment_ap@{t}"
        k = summary["settings"].index(m[key]["ods_setting"])
        c = summary["_curves"][t][k]
        ax2.plot(c.recall, c.precision, color=color,
                 label=f"IoU>{t}: AP={c.ap:.3f} ({m[key]['ods_setting']})")
    ax2.legend(loc="upper right", fontsize=8)
    ax2.set_title("segments ranked by size (Kanezaki 2018)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def write_csv(path: Path, records: list[dict[str, Any]], labels: list[str]) -> None:
    """Per-image, per-setting scores."""
    cols = ["id", "setting", "params", "n_annotators", "n_labels", "seconds", "hungarian",
            "many_to_one", "covering", "pri", "voi", "ari", "boundary_recall",
            "boundary_precision", "boundary_f"]
    for t in IOU_THRESHOLDS:
        cols += [f"segment_precision@{t}", f"segment_recall@{t}", f"segment_f@{t}",
                 f"segment_ap@{t}"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in records:
        for s in r["settings"]:
            row: list[Any] = [r["id"], s["index"] + 1, labels[s["index"]], r["n_annotators"],
                              s["n_labels"], s["seconds"]]
            row += [f"{s[k]:.6f}" for k in ("hungarian", "many_to_one", "covering", "pri",
                                             "voi", "ari")]
            if "boundary_counts" in s:
                cr, sr, cp, sp = s["boundary_counts"]
                rec = cr / sr if sr else 0.0
                prec = cp / sp if sp else 0.0
                f = 2 * rec * prec / (rec + prec) if rec + prec else 0.0
                row += [f"{rec:.6f}", f"{prec:.6f}", f"{f:.6f}"]
            else:
                row += ["", "", ""]
            for t in IOU_THRESHOLDS:
                d = s[f"segments@{t}"]
                row += [f"{d['precision']:.6f}", f"{d['recall']:.6f}", f"{d['f']:.6f}",
                        f"{d['ap']:.6f}"]
            w.writerow(row)
    _write_text(path, buf.getvalue())


# --------------------------------------------------------------------------- command


def run(args: argparse.Namespace) -> int:
    from napari_useg import __version__
    from napari_useg.core.registry import get_method
    from napari_useg.io.datasets import load_dataset

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if args.scheduler is not None and args.jobs != 1:
        raise ValueError("--jobs sizes a local cluster; with --scheduler the cluster's own "
                         "workers are used")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    ignore = _ignore_arg(args.ignore)
    ds = load_dataset(args.data, args.split, masks_dir=args.masks_dir, ignore=ignore)
    samples = ds.samples[: args.limit] if args.limit else ds.samples
    params = collect_params(args)
    method = None
    settings: list[dict[str, Any]] = []
    pred_dir = None
    if args.method is not None:
        method = get_method(args.method)
        fixed = dict(params)
        grid = parse_sweeps(args.sweep, method)
        overlap = set(fixed) & set(grid[0])
        if overlap:
            raise ValueError(f"parameter(s) {sorted(overlap)} given both fixed and in --sweep")
        settings = [{**fixed, **g} for g in grid]
        for s in settings:  # validate every setting before any compute
            method.build(args.preset, s)
        settings = [{k: _typed(method, k, v) for k, v in s.items()} for s in settings]
        labels = [_setting_label(g) for g in grid]
    else:
        if args.sweep or params:
            raise ValueError("--sweep and method parameters need --method, not --predictions")
        pred_dir = Path(args.predictions)
        if not pred_dir.is_dir():
            raise NotADirectoryError(f"--predictions {pred_dir} is not a folder")
        for s in samples:
            _prediction_file(pred_dir, s.id)  # all present before starting
        labels = []
    config = {
        "data": str(Path(args.data).resolve()), "kind": ds.kind, "split": ds.split,
        "method": method.name if method else None, "preset": args.preset,
        "settings": settings, "seed": args.seed, "device": args.device,
        "predictions": str(pred_dir.resolve()) if pred_dir else None,
        "ignore": list(ds.ignore) if ds.ignore else None, "masks_dir": args.masks_dir,
        "boundary": not args.no_boundary, "record_version": RECORD_VERSION,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_image = out / "per_image"
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        old.pop("napari_useg_version", None)
        if old != config:
            if not args.overwrite:
                diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                raise FileExistsError(
                    f"{out} holds results of a different evaluation (differs in {diff}); use "
                    f"another --out or pass --overwrite to discard them")
            for p in per_image.glob("*.json"):
                p.unlink()
    per_image.mkdir(exist_ok=True)
    _write_text(cfg_path, json.dumps({**config, "napari_useg_version": __version__}, indent=1))
    jobs, done = [], 0
    for s in samples:
        if _load_record(per_image, s.id) is not None:
            done += 1
            continue
        jobs.append(ImageJob(
            id=s.id, image=str(s.image), annotation=str(s.annotation), kind=ds.kind,
            settings=settings, method=method.name if method else None, preset=args.preset,
            prediction=str(_prediction_file(pred_dir, s.id)) if pred_dir else None,
            seed=args.seed, device=args.device, ignore=ds.ignore,
            boundary=not args.no_boundary))
    if done and not args.quiet:
        print(f"resuming: {done} of {len(samples)} images already evaluated in {per_image}",
              file=sys.stderr)
    desc = method.name if method else "predictions"
    _run_jobs(jobs, args.jobs, per_image, args.quiet, len(samples), done, desc,
              scheduler=args.scheduler)
    records = [_load_record(per_image, s.id) for s in samples]
    missing = [s.id for s, r in zip(samples, records, strict=True) if r is None]
    if missing:  # pragma: no cover - only if files vanish meanwhile
        raise FileNotFoundError(f"results missing for {missing[:5]}")
    arrays = [_load_arrays(per_image, s.id) for s in samples]
    if not labels:
        labels = [_setting_label(p["params"]) for p in records[0]["settings"]]
    summary = summarise(records, arrays, labels)
    command = "napari-useg " + shlex.join(getattr(args, "_argv", None) or ["evaluate", "..."])
    write_csv(out / "per_image.csv", records, labels)
    public = {k: v for k, v in summary.items() if not k.startswith("_")}
    _write_text(out / "summary.json", json.dumps({"config": config, **public}, indent=1))
    _write_text(out / "summary.md", summary_markdown(summary, config, command))
    from napari_useg.core.atomic import atomic_write

    with atomic_write(out / "pr.png", overwrite=True) as tmp:
        tmp.write_bytes(pr_plot_png(summary))
    m = summary["metrics"]
    print(f"{len(records)} images: Hungarian ODS {m['hungarian']['ods']:.4f} "
          f"OIS {m['hungarian']['ois']:.4f}, covering ODS {m['covering']['ods']:.4f}"
          + (f", boundary F ODS {m['boundary_f']['ods']:.4f}" if "boundary_f" in m else "")
          + f"; wrote {out / 'summary.md'}")
    return 0


def _typed(method: Any, name: str, value: Any) -> Any:
    for info in method.param_infos:
        if info.name == name:
            return info.convert(value)
    return value

