"""Running an evaluation: dataset, settings, per-image jobs (resumable), summary and reports.

Three steps, usable from Python without the command line:

* :func:`prepare_evaluation` checks everything (dataset, method, settings, predictions,
  results folder) before any computation and lists the images still to do;
* :func:`iter_evaluate` runs them (here, or one Dask task per image with ``jobs`` > 1 or
  a ``scheduler``), saving each record as it finishes, and yields
  :class:`~napari_useg.core.progress.Progress` snapshots; the final one carries the
  :class:`EvaluationResult` after the reports are written;
* :func:`run_evaluation` does both; :func:`evaluate` is its keyword front door.

Examples
--------
>>> from napari_useg.evaluation import evaluate
>>> res = evaluate("data/BSDS500", "kmeans", sweeps=["n_clusters=3,5"],
...                out="results/kmeans", window=1)  # doctest: +SKIP
>>> res.summary["metrics"]["covering"]["ods"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.batch import iter_map
from napari_useg.core.options import RunOptions
from napari_useg.core.progress import Progress
from napari_useg.core.registry import get_method
from napari_useg.evaluation.coverage import Skipped, UnscorableImage, unmatched_images
from napari_useg.evaluation.jobs import ImageJob, evaluate_image, prediction_file
from napari_useg.evaluation.records import (
    RECORD_VERSION,
    input_hashes,
    is_current,
    load_arrays,
    load_record,
    prepare_results_folder,
    save_record,
)
from napari_useg.evaluation.report import headline, write_reports
from napari_useg.evaluation.summary import summarise
from napari_useg.evaluation.sweeps import method_settings, setting_label
from napari_useg.io.datasets import load_dataset
from napari_useg.metrics.bsds import linspace_thresholds

__all__ = ["EvaluationConfig", "EvaluationPlan", "EvaluationResult", "prepare_evaluation",
           "iter_evaluate", "run_evaluation", "evaluate"]


@dataclass(frozen=True)
class EvaluationConfig:
    """What to evaluate and where the results go (the run options come separately).

    Attributes
    ----------
    data : path-like
        Dataset folder: BSDS500 (``images/<split>/`` + ``groundTruth/<split>/``) or
        ``images/`` + ``masks/`` (detected).
    method : str or None
        Method to run; exactly one of ``method`` and ``predictions``.
    predictions : path-like or None
        Folder of saved label maps ``<id>.tif|png|npy`` or ``<id>.mat`` (``segs``).
    params : mapping
        Method parameters shared by every setting.
    sweeps : sequence of str
        ``"NAME=V1,V2,..."`` each: the grid of settings (see
        :func:`~napari_useg.evaluation.parse_sweeps`).
    split : str or None
        Split folder (BSDS500 default: ``val``).
    limit : int or None
        Only the first ``limit`` images (sorted by id).
    out : path-like
        Results folder.
    ignore : sequence of int or None
        Ground-truth values not scored (e.g. 255).
    masks_dir : str or None
        images/ + masks/ layout: name of the masks folder.
    boundary : bool
        Run the boundary benchmark (the slowest part).
    jobs : int
        Images evaluated in parallel (worker processes of a local Dask cluster; 1: here).
    scheduler : str or None
        Address of a running Dask scheduler to evaluate the images on.
    overwrite : bool
        Discard results in ``out`` made with another configuration, or replace the
        report files of a non-empty folder that holds no results of an evaluation.
    quiet : bool
        No messages from the Dask engine (e.g. the dashboard address of a local cluster).
    command : str or None
        How the run was started, shown in ``summary.md``.
    hierarchy : int
        0: one run per setting. N > 0: one run per image (no sweep), its hierarchy cut
        at the benchmark's N thresholds, each cut scored as a setting: ODS / OIS over
        the thresholds, as gPb-owt-ucm is scored.
    """

    data: str | os.PathLike
    method: str | None = None
    predictions: str | os.PathLike | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    sweeps: Sequence[str] = ()
    split: str | None = None
    limit: int | None = None
    out: str | os.PathLike = "results"
    ignore: Sequence[int] | None = None
    masks_dir: str | None = None
    boundary: bool = True
    jobs: int = 1
    scheduler: str | None = None
    overwrite: bool = False
    quiet: bool = False
    command: str | None = None
    hierarchy: int = 0

    def __post_init__(self) -> None:
        if (self.method is None) == (self.predictions is None):
            raise ValueError("give either a method or a predictions folder")
        if self.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {self.jobs}")
        if self.scheduler is not None and self.jobs != 1:
            raise ValueError("--jobs sizes a local cluster; with --scheduler the cluster's own "
                             "workers are used")
        if self.hierarchy < 0:
            raise ValueError(f"--hierarchy must be >= 1 thresholds, got {self.hierarchy}")
        if self.hierarchy and (self.method is None or self.sweeps):
            raise ValueError("--hierarchy scores the cuts of one run of a --method: give no "
                             "--predictions and no --sweep")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        object.__setattr__(self, "sweeps", tuple(self.sweeps))
        object.__setattr__(self, "params", dict(self.params))
        if self.ignore is not None:
            object.__setattr__(self, "ignore", tuple(int(v) for v in self.ignore) or None)


@dataclass(frozen=True)
class EvaluationPlan:
    """A checked evaluation, ready to run (see :func:`prepare_evaluation`).

    Attributes
    ----------
    config : EvaluationConfig
    record : dict
        What the results folder holds (``config.json``, ``summary.json``'s ``config``).
    out, per_image : pathlib.Path
        Results folder and its per-image records.
    ids : list of str
        Every image evaluated, in order.
    jobs : list of ImageJob
        The images still to do.
    labels : list of str
        Name of each setting (empty for predictions: named from the first record).
    resumed : int
        Images already evaluated by an earlier run (from the same input files).
    desc : str
        Short name of the run (the method, or ``"predictions"``).
    inputs : dict
        Image id -> SHA-256 of its input files (stored in its record; a record of other
        files is recomputed).
    skipped : list of Skipped
        Images of the dataset without an annotation (not scored).
    recomputed : int
        Images with a record from an earlier run whose input files changed since.
    """

    config: EvaluationConfig
    record: dict[str, Any]
    out: Path
    per_image: Path
    ids: list[str]
    jobs: list[ImageJob]
    labels: list[str]
    resumed: int
    desc: str
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    recomputed: int = 0


@dataclass(frozen=True)
class EvaluationResult:
    """The outcome of an evaluation.

    Attributes
    ----------
    out : pathlib.Path
        Results folder (``per_image.csv``, ``summary.md``, ``summary.json``, ``pr.png``).
    config : dict
        What was evaluated (as in ``config.json``).
    summary : dict
        ODS/OIS figures, as in ``summary.json``.
    records : list of dict
        Per-image records.
    labels : list of str
        Name of each setting.
    resumed : int
        Images taken from an earlier run.
    skipped : list of dict
        Images of the dataset left out of the figures (``id`` and ``reason``: no
        annotation, or nothing to score); also in ``summary["skipped"]``.
    """

    out: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    labels: list[str]
    resumed: int
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every image of the dataset (within ``limit``) was scored."""
        return not self.skipped

    def headline(self) -> str:
        """One line of the main figures."""
        return headline(self.summary)


def prepare_evaluation(config: EvaluationConfig, options: RunOptions | None = None
                       ) -> EvaluationPlan:
    """Check an evaluation and prepare its results folder, before any computation.

    Parameters
    ----------
    config : EvaluationConfig
    options : RunOptions, optional
        Seed, device, preset and channel axis of the method (default ``RunOptions()``).
        Scores are reproducible for the same options on the same device.

    Returns
    -------
    EvaluationPlan

    Raises
    ------
    ValueError, TypeError
        For bad settings or parameters.
    FileNotFoundError, NotADirectoryError
        For a missing dataset, predictions folder or prediction.
    FileExistsError
        If ``config.out`` holds results of another configuration, or is a non-empty
        folder that holds no results of an evaluation (without ``overwrite``).
    """
    options = (options or RunOptions()).replace(preview_every=0)
    ds = load_dataset(config.data, config.split, masks_dir=config.masks_dir,
                      ignore=config.ignore)
    samples = ds.samples[: config.limit] if config.limit else ds.samples
    method = None
    settings: list[dict[str, Any]] = []
    labels: list[str] = []
    pred_dir = None
    if config.method is not None:
        method = get_method(config.method)
        settings, labels = method_settings(method, config.params, config.sweeps, options.preset)
        if config.hierarchy:
            labels = [f"threshold={t:.4g}" for t in linspace_thresholds(config.hierarchy)]
    else:
        if config.sweeps or config.params:
            raise ValueError("--sweep and method parameters need --method, not --predictions")
        pred_dir = Path(config.predictions)  # type: ignore[arg-type]
        if not pred_dir.is_dir():
            raise NotADirectoryError(f"--predictions {pred_dir} is not a folder")
        for s in samples:
            prediction_file(pred_dir, s.id)  # all present before starting
    record: dict[str, Any] = {
        "data": str(Path(config.data).resolve()), "kind": ds.kind, "split": ds.split,
        "method": method.name if method else None, "preset": options.preset,
        "settings": settings, "seed": options.seed, "device": options.device,
    }
    if options.channel_axis is not None:  # absent by default, as in earlier results folders
        record["channel_axis"] = options.channel_axis
    record.update({
        "predictions": str(pred_dir.resolve()) if pred_dir else None,
        "ignore": list(ds.ignore) if ds.ignore else None, "masks_dir": config.masks_dir,
        "boundary": config.boundary, "record_version": RECORD_VERSION,
    })
    if config.hierarchy:  # absent otherwise, as in earlier results folders
        record["hierarchy"] = config.hierarchy
    out = Path(config.out)
    per_image = prepare_results_folder(out, record, overwrite=config.overwrite)
    jobs, resumed, recomputed = [], 0, 0
    inputs: dict[str, dict[str, str]] = {}
    for s in samples:
        pred = prediction_file(pred_dir, s.id) if pred_dir else None
        inputs[s.id] = input_hashes(s.image, s.annotation, pred)
        old = load_record(per_image, s.id)
        if is_current(old, inputs[s.id]):
            resumed += 1
            continue
        recomputed += old is not None
        jobs.append(ImageJob(
            id=s.id, image=str(s.image), annotation=str(s.annotation), kind=ds.kind,
            settings=settings, method=method.name if method else None,
            prediction=str(pred) if pred else None,
            options=options, ignore=ds.ignore, boundary=config.boundary,
            hierarchy=config.hierarchy))
    return EvaluationPlan(config=config, record=record, out=out, per_image=per_image,
                          ids=[s.id for s in samples], jobs=jobs, labels=labels,
                          resumed=resumed, desc=method.name if method else "predictions",
                          inputs=inputs, skipped=unmatched_images(ds, samples),
                          recomputed=recomputed)


_Outcome = tuple[dict[str, Any], dict[str, np.ndarray]] | UnscorableImage


def _evaluate_or_skip(job: ImageJob) -> _Outcome:
    try:
        return evaluate_image(job)
    except UnscorableImage as exc:
        return exc


def _outcomes(plan: EvaluationPlan) -> Iterator[_Outcome]:
    """Records of the plan's jobs as they finish (in order when run here); an image with
    nothing to score gives its :class:`UnscorableImage` instead."""
    cfg = plan.config
    jobs = plan.jobs
    if cfg.scheduler is None and (cfg.jobs <= 1 or len(jobs) <= 1):
        for job in jobs:
            yield _evaluate_or_skip(job)
        return
    # one Dask task per image: local worker processes sized so that workers x threads
    # fits the cores, or the workers of a running cluster (the same engine as `batch`)
    outcomes = iter_map(_evaluate_or_skip, jobs, scheduler=cfg.scheduler,
                        workers=None if cfg.scheduler else min(cfg.jobs, len(jobs)),
                        quiet=cfg.quiet, name="evaluate")
    try:
        for o in outcomes:
            if not o.ok:  # stop at the first error, as the serial run does
                raise o.exception if o.exception is not None else RuntimeError(o.error)
            yield o.value
    finally:
        outcomes.close()  # cancels what is left and closes a local cluster


def iter_evaluate(plan: EvaluationPlan) -> Iterator[Progress]:
    """Run a prepared evaluation, yielding one snapshot per finished image.

    Each image's record is saved as soon as it is done (a later run resumes from them).
    After the last one the summary and reports are written.

    Parameters
    ----------
    plan : EvaluationPlan
        From :func:`prepare_evaluation`.

    Yields
    ------
    Progress
        ``step`` images done of ``total``; the first snapshot counts the resumed ones.
        The final snapshot has ``done=True`` and the :class:`EvaluationResult` in
        ``info["result"]``.
    """
    total = len(plan.ids)
    done = plan.resumed
    yield Progress(step=done, total=total,
                   message=f"resuming: {done} of {total} images already evaluated" if done
                   else "")
    unscorable: list[Skipped] = []
    for outcome in _outcomes(plan):
        done += 1
        if isinstance(outcome, UnscorableImage):
            unscorable.append(Skipped(outcome.image_id, outcome.reason))
            yield Progress(step=done, total=total, message=str(outcome))
            continue
        record, arrays = outcome
        record = {**record, "inputs": plan.inputs[record["id"]]}
        save_record(plan.per_image, record, arrays)
        yield Progress(step=done, total=total, message=f"image {record['id']}")
    result = _finish(plan, unscorable)
    yield Progress(step=total, total=total, done=True, message=result.headline(),
                   info={"result": result})


def _finish(plan: EvaluationPlan, unscorable: list[Skipped]) -> EvaluationResult:
    left_out = {s.id for s in unscorable}
    ids = [i for i in plan.ids if i not in left_out]
    skipped = sorted([*plan.skipped, *unscorable], key=lambda s: s.id)
    if not ids:
        raise ValueError(f"no image could be scored: {skipped[0].id}: {skipped[0].reason}"
                         + (f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""))
    records = [load_record(plan.per_image, i) for i in ids]
    missing = [i for i, r in zip(ids, records, strict=True)
               if not is_current(r, plan.inputs[i])]
    if missing:  # pragma: no cover - only if files vanish or change meanwhile
        raise FileNotFoundError(f"results missing or out of date for {missing[:5]}")
    done_records: list[dict[str, Any]] = [r for r in records if r is not None]
    arrays = [load_arrays(plan.per_image, i) for i in ids]
    labels = plan.labels or [setting_label(p["params"]) for p in done_records[0]["settings"]]
    summary = summarise(done_records, arrays, labels)
    summary["n_dataset_images"] = len(ids) + len(skipped)
    summary["skipped"] = [s.to_dict() for s in skipped]
    command = plan.config.command or "napari_useg.evaluation.run_evaluation(...)"
    write_reports(plan.out, summary, done_records, labels, plan.record, command)
    public = {k: v for k, v in summary.items() if not k.startswith("_")}
    return EvaluationResult(out=plan.out, config=plan.record, summary=public,
                            records=done_records, labels=labels, resumed=plan.resumed,
                            skipped=summary["skipped"])


def run_evaluation(config: EvaluationConfig, options: RunOptions | None = None
                   ) -> EvaluationResult:
    """Run a whole evaluation (:func:`prepare_evaluation`, then :func:`iter_evaluate`).

    Parameters
    ----------
    config : EvaluationConfig
    options : RunOptions, optional
        How the method runs (default ``RunOptions()``: seed 0, device ``"auto"``).

    Returns
    -------
    EvaluationResult
    """
    *_, last = iter_evaluate(prepare_evaluation(config, options))
    return last.info["result"]


def evaluate(data: str | os.PathLike, method: str | None = None, *,
             predictions: str | os.PathLike | None = None, sweeps: Sequence[str] = (),
             out: str | os.PathLike = "results", split: str | None = None,
             limit: int | None = None, ignore: Sequence[int] | None = None,
             masks_dir: str | None = None, boundary: bool = True, jobs: int = 1,
             scheduler: str | None = None, overwrite: bool = False, quiet: bool = False,
             hierarchy: int = 0, seed: int = 0,
             device: str = "auto", preset: str | None = None,
             channel_axis: int | None = None, **params: Any) -> EvaluationResult:
    """Score a method (or saved predictions) on an annotated image folder.

    The keyword form of :func:`run_evaluation`; writes the same files as
    ``napari-useg evaluate`` (see ``docs/evaluation.md``).

    Parameters
    ----------
    data : path-like
        Dataset folder (BSDS500 or ``images/`` + ``masks/``).
    method : str, optional
        Method to run (or give ``predictions``).
    predictions : path-like, optional
        Folder of saved label maps.
    sweeps : sequence of str
        ``"NAME=V1,V2,..."`` parameter sweeps (their grid is evaluated).
    out : path-like
        Results folder.
    split, limit, ignore, masks_dir, boundary, jobs, scheduler, overwrite, quiet, hierarchy
        See :class:`EvaluationConfig`.
    seed, device, preset, channel_axis
        Run options (:class:`~napari_useg.core.options.RunOptions`); scores are
        reproducible for the same seed on the same device.
    **params
        Method parameters shared by every setting.

    Returns
    -------
    EvaluationResult
    """
    config = EvaluationConfig(
        data=data, method=method, predictions=predictions, params=params, sweeps=sweeps,
        split=split, limit=limit, out=out, ignore=ignore, masks_dir=masks_dir,
        boundary=boundary, jobs=jobs, scheduler=scheduler, overwrite=overwrite,
        quiet=quiet)
    options = RunOptions(seed=seed, device=device, preset=preset, channel_axis=channel_axis)
    return run_evaluation(config, options)
