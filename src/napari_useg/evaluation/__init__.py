"""Evaluating segmentations on annotated image folders: the engine of ``napari-useg evaluate``.

For every image of a dataset (BSDS500 layout or ``images/`` + ``masks/``) and every
parameter setting of a sweep, a method segments the image (or a saved prediction is
read) and the result is scored against every annotator with :mod:`napari_useg.metrics`.
The results folder holds one record per image (a rerun resumes), ``per_image.csv``,
``summary.md`` / ``summary.json`` (ODS and OIS over the settings) and ``pr.png``.

* :mod:`.jobs`: :class:`ImageJob` and :func:`evaluate_image`, the picklable per-image
  work, and :func:`read_prediction`;
* :mod:`.sweeps`: :func:`parse_sweeps`, the grid of settings;
* :mod:`.records`: per-image records (tied to their input files' content) and the
  results folder (resume; never someone else's folder);
* :mod:`.coverage`: the images left out of the figures (no annotation, nothing to
  score), listed and counted;
* :mod:`.summary`: :func:`summarise`, the ODS/OIS tables;
* :mod:`.report`: :func:`summary_markdown`, :func:`write_csv`, :func:`pr_plot_png`;
* :mod:`.run`: :func:`evaluate` / :func:`run_evaluation` (and the steps
  :func:`prepare_evaluation`, :func:`iter_evaluate`);
* :mod:`.dataset_protocol`: :func:`evaluate_dataset_method`, the papers' protocol for
  dataset-level methods (train once, apply to every image, pooled and per-image scores);
* :mod:`.bsds_folder`: :func:`evaluate_folder`, the official benchmark's ``allBench`` on
  a folder of ``segs`` / ``ucm2`` / soft boundary files, and :func:`write_official_files`.

Examples
--------
>>> from napari_useg.evaluation import evaluate
>>> res = evaluate("data/BSDS500", "felzenszwalb", sweeps=["scale=100,500"],
...                out="results/fz")  # doctest: +SKIP
>>> print(res.headline())  # doctest: +SKIP
"""

from napari_useg.evaluation.bsds_folder import (
    FolderResult,
    evaluate_folder,
    read_result,
    write_official_files,
)
from napari_useg.evaluation.dataset_protocol import (
    DatasetProtocolResult,
    evaluate_dataset_method,
    iter_dataset_protocol,
)
from napari_useg.evaluation.jobs import (
    IOU_THRESHOLDS,
    ImageJob,
    evaluate_image,
    prediction_file,
    read_prediction,
)
from napari_useg.evaluation.records import RECORD_VERSION, load_arrays, load_record, save_record
from napari_useg.evaluation.report import pr_plot_png, summary_markdown, write_csv
from napari_useg.evaluation.run import (
    EvaluationConfig,
    EvaluationPlan,
    EvaluationResult,
    evaluate,
    iter_evaluate,
    prepare_evaluation,
    run_evaluation,
)
from napari_useg.evaluation.summary import summarise
from napari_useg.evaluation.sweeps import method_settings, parse_sweeps, setting_label

__all__ = [
    "DatasetProtocolResult",
    "EvaluationConfig",
    "EvaluationPlan",
    "EvaluationResult",
    "FolderResult",
    "IOU_THRESHOLDS",
    "ImageJob",
    "RECORD_VERSION",
    "evaluate",
    "evaluate_dataset_method",
    "evaluate_folder",
    "evaluate_image",
    "iter_dataset_protocol",
    "iter_evaluate",
    "load_arrays",
    "load_record",
    "method_settings",
    "parse_sweeps",
    "pr_plot_png",
    "prediction_file",
    "prepare_evaluation",
    "read_prediction",
    "read_result",
    "run_evaluation",
    "save_record",
    "setting_label",
    "summarise",
    "summary_markdown",
    "write_csv",
    "write_official_files",
]
