"""What an evaluation writes: ``per_image.csv``, ``summary.md``, ``summary.json``, ``pr.png``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.core.atomic import atomic_write
from napari_useg.evaluation.coverage import skipped_lines
from napari_useg.evaluation.jobs import IOU_THRESHOLDS
from napari_useg.evaluation.records import write_text

__all__ = ["summary_markdown", "pr_plot_png", "write_csv", "write_reports", "headline"]


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
    """The Markdown summary table (``summary.md``).

    Parameters
    ----------
    summary : dict
        :func:`~napari_useg.evaluation.summarise`'s result.
    config : dict
        The evaluation's configuration (``config.json``).
    command : str
        The command line shown (or how the run was started).

    Returns
    -------
    str
    """
    what = config["method"] or f"predictions {config['predictions']}"
    lines = [f"# napari-useg evaluate: {what} on {config['data']}"
             f"{' (' + config['split'] + ')' if config['split'] else ''}", "",
             f"{summary['n_images']} images, {len(summary['settings'])} setting(s). "
             f"Command: `{command}`", ""]
    skipped = skipped_lines(summary.get("skipped", []),
                            summary.get("n_dataset_images", summary["n_images"]))
    if skipped:
        lines += [f"**{skipped[0]}**", "", *skipped[1:], ""]
    lines += ["| metric | ODS | ODS setting | OIS |", "|---|---|---|---|"]
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
    """PNG of the boundary PR points (per setting) and the segment PR curves (Agg, no GUI).

    Parameters
    ----------
    summary : dict
        :func:`~napari_useg.evaluation.summarise`'s result (with its ``_curves``).

    Returns
    -------
    bytes
        The PNG file.
    """
    # matplotlib is heavy and only needed for this picture: imported here, not at module top
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
    """Write ``per_image.csv``: one row per image and setting.

    Parameters
    ----------
    path : pathlib.Path
        Destination (written atomically).
    records : list of dict
        Per-image records.
    labels : list of str
        Name of each setting.
    """
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
    write_text(path, buf.getvalue())


def write_reports(out: Path, summary: dict[str, Any], records: list[dict[str, Any]],
                  labels: list[str], config: dict[str, Any], command: str) -> None:
    """Write ``per_image.csv``, ``summary.json``, ``summary.md`` and ``pr.png`` in ``out``.

    Parameters
    ----------
    out : pathlib.Path
        The results folder.
    summary : dict
        :func:`~napari_useg.evaluation.summarise`'s result.
    records : list of dict
        Per-image records.
    labels : list of str
        Name of each setting.
    config : dict
        The evaluation's configuration (also in ``summary.json``).
    command : str
        Shown in ``summary.md``.
    """
    write_csv(out / "per_image.csv", records, labels)
    public = {k: v for k, v in summary.items() if not k.startswith("_")}
    write_text(out / "summary.json", json.dumps({"config": config, **public}, indent=1))
    write_text(out / "summary.md", summary_markdown(summary, config, command))
    with atomic_write(out / "pr.png", overwrite=True) as tmp:
        tmp.write_bytes(pr_plot_png(summary))


def headline(summary: dict[str, Any]) -> str:
    """One line of the main figures (Hungarian, covering and boundary F)."""
    m = summary["metrics"]
    n_skipped = len(summary.get("skipped", []))
    return (f"{summary['n_images']} images"
            + (f" ({n_skipped} not scored)" if n_skipped else "")
            + f": Hungarian ODS {m['hungarian']['ods']:.4f} "
            f"OIS {m['hungarian']['ois']:.4f}, covering ODS {m['covering']['ods']:.4f}"
            + (f", boundary F ODS {m['boundary_f']['ods']:.4f}" if "boundary_f" in m else ""))
