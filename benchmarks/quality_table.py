"""The quality table of docs/benchmarks.md: one row per evaluated method, from results folders.

Each folder is the ``--out`` of one ``napari-useg evaluate`` run (a parameter sweep, or
``--hierarchy N``: the cuts of one run per image); the row gives, ODS over that run's
settings (OIS where defined): Hungarian ODS / OIS, covering ODS / OIS, PRI, VOI, boundary F
ODS, segment AP@0.5 and AP@0.7, seconds of segmentation per image and setting (for a
hierarchy: per image, the one run).

Examples
--------
::

    napari-useg evaluate --data ../shared/bsds500 --method felzenszwalb \\
        --sweep scale=100,500,1000,1500,2000 --out results/fz
    napari-useg evaluate --data ../shared/bsds500 --method kanezaki --hierarchy --out results/k
    python benchmarks/quality_table.py "Felzenszwalb (scale sweep)=results/fz" \\
        "Kanezaki fast, hierarchy=results/k"
    python benchmarks/quality_table.py --commands   # the evaluate commands of the table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_useg.evaluation.records import load_arrays, load_record
from napari_useg.evaluation.summary import summarise
from napari_useg.evaluation.sweeps import setting_label

#: The rows of docs/benchmarks.md's table: name -> evaluate arguments (after --data/--out).
COMMANDS = {
    "felzenszwalb (scale sweep)": "--method felzenszwalb --sweep scale=100,500,1000,1500,2000",
    "felzenszwalb hierarchy (scale 200, colour merging)":
        "--method felzenszwalb --scale 200 --hierarchy 15",
    "kanezaki fast hierarchy": "--method kanezaki --hierarchy 15",
    "kanezaki fast hierarchy, scale 400":
        "--method kanezaki --region-scale 400 --cut 0.4375 --hierarchy 15",
}

HEADER = ("| method | Hungarian ODS / OIS | covering ODS / OIS | PRI ODS | VOI ODS "
          "| boundary F ODS | segment AP@0.5 | AP@0.7 | s / image | images |")


def merged_summary(folders: list[Path]) -> dict:
    """The summary of several results folders of one configuration over disjoint images.

    An evaluation split into parts (each part a folder of symbolic links to some of the
    images) is summarised as one: the per-image records are pooled and
    :func:`napari_useg.evaluation.summary.summarise` recomputes ODS / OIS over them.
    """
    records, arrays = [], []
    for folder in folders:
        per_image = Path(folder) / "per_image"
        for f in sorted(per_image.glob("*.json")):
            rec = load_record(per_image, f.stem)
            if rec is not None:
                records.append(rec)
                arrays.append(load_arrays(per_image, f.stem))
    if not records:
        raise FileNotFoundError(f"no per-image records in {folders}")
    labels = [setting_label(p["params"]) for p in records[0]["settings"]]
    return summarise(records, arrays, labels)


def row(name: str, folders: list[Path]) -> str:
    """One markdown row from the results folder(s) of one evaluation."""
    if len(folders) == 1 and (folders[0] / "summary.json").is_file():
        s = json.loads((folders[0] / "summary.json").read_text())
    else:
        s = merged_summary(folders)
    m = s["metrics"]

    def ods(key: str) -> str:
        return f"{m[key]['ods']:.3f}" if key in m else "-"

    def ois(key: str) -> str:
        return f"{m[key]['ois']:.3f}" if key in m and "ois" in m[key] else "-"

    secs = s.get("seconds_per_image", {}).get("segmentation_per_setting")
    return (f"| {name} | {ods('hungarian')} / {ois('hungarian')} | {ods('covering')} / "
            f"{ois('covering')} | {ods('pri')} | {ods('voi')} | {ods('boundary_f')} | "
            f"{ods('segment_ap@0.5')} | {ods('segment_ap@0.7')} | "
            f"{'-' if secs is None else f'{secs:.1f}'} | {s['n_images']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="*", metavar="NAME=FOLDER[+FOLDER...]",
                    help="a row name and the results folder of its evaluate run (several, "
                         "joined by '+': parts of one evaluation over disjoint images)")
    ap.add_argument("--commands", action="store_true",
                    help="print the evaluate commands of the documented table and exit")
    ap.add_argument("--data", default="../shared/bsds500")
    args = ap.parse_args()
    if args.commands:
        for name, cmd in COMMANDS.items():
            slug = name.split(" (")[0].replace(",", "").replace(" ", "_")
            print(f"# {name}\nnapari-useg evaluate --data {args.data} --split val {cmd} "
                  f"--out results/quality/{slug}")
        return
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for item in args.rows:
        name, folders = item.rsplit("=", 1)
        print(row(name, [Path(f) for f in folders.split("+")]))


if __name__ == "__main__":
    main()
