"""The papers' protocol for dataset-level methods: train once, apply to every image, pool.

IIC (Ji et al. 2019) and InMARS (Mirsadeghi et al. 2021) train *one* network on a
collection and score it with *one* cluster-to-class mapping for the whole set (the
contingency tables of every image summed): a cluster must mean the same class on
every image. Running such a method image by image (training a network per image, as
:func:`~napari_useg.evaluation.evaluate_image` does for per-image methods) measures
something else. Here:

1. the model is trained once on the images of the split (or loaded from ``model``),
   and saved in ``out/model``;
2. it labels every image (``out/predictions/<id>.npy``, each written as it is done);
3. the saved predictions are scored image by image by the usual engine
   (:func:`~napari_useg.evaluation.run_evaluation`, its per-image scores and reports in
   ``out``);
4. the pooled Hungarian and pooled many-to-one accuracies
   (:mod:`napari_useg.metrics.pooled`) are written to ``out/pooled.json`` and added to
   ``out/summary.md`` next to the per-image means.

A rerun with the same configuration resumes (model, predictions and records are
kept); another configuration in the same folder is refused unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.api import iter_fit_with
from napari_useg.core.atomic import atomic_write
from napari_useg.core.model import CONFIG_NAME, Model, is_model_folder, load_model
from napari_useg.core.options import FitOptions
from napari_useg.core.progress import Progress
from napari_useg.core.registry import get_method
from napari_useg.evaluation.jobs import check_image_size
from napari_useg.evaluation.records import write_text
from napari_useg.evaluation.run import EvaluationConfig, EvaluationResult, run_evaluation
from napari_useg.io.bsds import read_bsds_gt
from napari_useg.io.datasets import Sample, load_dataset, read_mask
from napari_useg.io.images import read_image
from napari_useg.metrics.pooled import pooled_hungarian_match, pooled_many_to_one_match

__all__ = ["DatasetProtocolResult", "is_dataset_method", "iter_dataset_protocol",
           "evaluate_dataset_method", "model_method"]

PROTOCOL_NAME = "protocol.json"


def is_dataset_method(method: str | None) -> bool:
    """Whether ``method`` is trained on a collection (IIC, InMARS, dfc_ref)."""
    return method is not None and get_method(method).kind == "dataset"


def model_method(path: str | os.PathLike) -> str:
    """Name of the method that trained the model saved in ``path`` (from its config).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a model folder.
    ValueError
        If its configuration names no method.
    """
    cfg = Path(path) / CONFIG_NAME
    if not cfg.is_file():
        raise FileNotFoundError(f"no model folder at {path} (no {CONFIG_NAME}); save one with "
                                "`napari-useg fit` or Model.save")
    try:
        method = json.loads(cfg.read_text()).get("method")
    except (ValueError, AttributeError):
        method = None
    if not isinstance(method, str):
        raise ValueError(f"{cfg} names no method; it is not a model configuration")
    return method


@dataclass(frozen=True)
class DatasetProtocolResult:
    """Outcome of :func:`evaluate_dataset_method`.

    Attributes
    ----------
    evaluation : EvaluationResult
        Per-image scores of the saved predictions (the usual reports in ``out``).
    pooled : dict
        ``hungarian``, ``many_to_one`` (pooled over the set), ``hungarian_per_image``,
        ``many_to_one_per_image`` (means over images), ``n_images``, the mappings, and
        ``mapping_on`` when the mapping was estimated on some images only.
    model_dir : pathlib.Path
        Folder of the model that labelled the images.
    trained : bool
        Whether the model was trained by this run (``False``: loaded or resumed).
    train_seconds, apply_seconds : float
        Training time (0 when not trained here) and labelling time of all images.
    """

    evaluation: EvaluationResult
    pooled: dict[str, Any]
    model_dir: Path
    trained: bool
    train_seconds: float
    apply_seconds: float

    def headline(self) -> str:
        """One line: pooled and per-image Hungarian and many-to-one accuracy."""
        p = self.pooled
        return (f"pooled Hungarian {p['hungarian']:.3f} (per image {p['hungarian_per_image']:.3f})"
                f", pooled many-to-one {p['many_to_one']:.3f} "
                f"(per image {p['many_to_one_per_image']:.3f}) over {p['n_images']} images")


def _annotations(kind: str, sample: Sample) -> list[np.ndarray]:
    if kind == "bsds":
        return read_bsds_gt(sample.annotation).segmentations
    return [read_mask(sample.annotation)]


def _checked_image(kind: str, sample: Sample, channel_axis: int | None) -> np.ndarray:
    """The sample's image, refused when its size is not its annotation's."""
    image = read_image(sample.image)
    try:
        check_image_size(sample.image, image, channel_axis, _annotations(kind, sample)[0].shape)
    except ValueError as exc:
        raise ValueError(f"image {sample.id}: {exc}") from None
    return image


def _protocol_record(config: EvaluationConfig, options: FitOptions, model: Path | None,
                     output: str | None, mapping_on: Sequence[int] | None) -> dict[str, Any]:
    return {"data": str(Path(config.data).resolve()), "split": config.split,
            "limit": config.limit, "masks_dir": config.masks_dir,
            "ignore": list(config.ignore) if config.ignore else None,
            "method": config.method, "params": {k: config.params[k] for k in sorted(config.params)},
            "model": str(model.resolve()) if model else None, "output": output,
            "seed": options.seed, "preset": options.preset, "device": options.device,
            "channel_axis": options.channel_axis, "normalisation": options.normalisation,
            "mapping_on": sorted(int(i) for i in mapping_on) if mapping_on else None}


def _prepare_folder(out: Path, record: dict[str, Any], overwrite: bool) -> bool:
    """Check/claim ``out`` for this configuration; whether earlier results may be reused."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / PROTOCOL_NAME
    if path.is_file():
        old = json.loads(path.read_text())
        if old == record:
            return True
        if not overwrite:
            diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
            raise FileExistsError(f"{out} holds a dataset-protocol evaluation with other "
                                  f"settings (differs in {diff}); use another --out or pass "
                                  "--overwrite to discard it")
        for sub in ("predictions", "per_image"):  # our own outputs, recomputed
            shutil.rmtree(out / sub, ignore_errors=True)
    write_text(path, json.dumps(record, indent=1))
    return False


def iter_dataset_protocol(config: EvaluationConfig, options: FitOptions | None = None, *,
                          model: str | os.PathLike | None = None, output: str | None = None,
                          mapping_on: Sequence[int] | None = None) -> Iterator[Progress]:
    """:func:`evaluate_dataset_method` step by step.

    Yields training snapshots (``message`` starting with ``"train"``), one snapshot per
    labelled image (``"apply"``), then the final one (``done=True``) with the
    :class:`DatasetProtocolResult` in ``info["result"]``.
    """
    options = (options or FitOptions()).replace(preview_every=0)
    if config.predictions is not None:
        raise ValueError("the dataset protocol runs a method or a saved model, not predictions")
    if config.sweeps:
        raise ValueError("a dataset-level method is trained once per evaluation: run one "
                         "evaluation per setting instead of --sweep")
    model_path = Path(model) if model is not None else None
    if model_path is not None and config.params:
        raise ValueError("method parameters are fixed by the saved model; give either --model "
                         "or method parameters")
    ds = load_dataset(config.data, config.split, masks_dir=config.masks_dir,
                      ignore=config.ignore)
    samples = ds.samples[: config.limit] if config.limit else ds.samples
    if mapping_on is not None and ds.kind == "bsds":
        raise ValueError("mapping_on needs one annotation per image (images/ + masks/)")
    out = Path(config.out)
    record = _protocol_record(config, options, model_path, output, mapping_on)
    reuse = _prepare_folder(out, record, config.overwrite)
    model_dir = out / "model"
    trained = False
    t0 = time.perf_counter()
    fitted: Model
    if model_path is not None:
        fitted = load_model(model_path, options.device)
        if config.method is not None and fitted.method != get_method(config.method).name:
            raise ValueError(f"the model at {model_path} is a {fitted.method} model, not "
                             f"{config.method}")
        model_dir = model_path
    elif reuse and is_model_folder(model_dir):
        fitted = load_model(model_dir, options.device)
    else:
        if config.method is None:
            raise ValueError("give a dataset-level method to train or a saved --model")
        # every size checked before training: a mismatch found after it wastes the run
        images = [_checked_image(ds.kind, s, options.channel_axis) for s in samples]
        snap = None
        for snap in iter_fit_with(images, config.method, options, **config.params):
            yield Progress(step=snap.step, total=snap.total, loss=snap.loss,
                           message=f"train: {snap.message}")
        assert snap is not None and snap.done
        fitted = snap.info["model"]
        fitted.save(model_dir, overwrite=model_dir.exists())
        trained = True
    train_seconds = time.perf_counter() - t0 if trained else 0.0
    output = fitted.default_output if output is None else fitted.check_output(output)
    pred_dir = out / "predictions"
    pred_dir.mkdir(exist_ok=True)
    t1 = time.perf_counter()
    for k, s in enumerate(samples):
        dest = pred_dir / f"{s.id}.npy"
        if not dest.is_file():
            labels = fitted.predict(_checked_image(ds.kind, s, options.channel_axis),
                                    channel_axis=options.channel_axis, output=output)
            with atomic_write(dest, overwrite=True) as tmp, open(tmp, "wb") as fh:
                np.save(fh, labels)
        yield Progress(step=k + 1, total=len(samples), message=f"apply: image {s.id}")
    apply_seconds = time.perf_counter() - t1
    per_image_config = replace(config, method=None, predictions=pred_dir, params={}, sweeps=(),
                               overwrite=True)
    evaluation = run_evaluation(per_image_config, options)
    preds, gts = [], []
    for s in samples:
        lab = np.load(pred_dir / f"{s.id}.npy")
        for g in _annotations(ds.kind, s):  # every annotator's pixels count (BSDS)
            preds.append(lab)
            gts.append(g)
    hung = pooled_hungarian_match(preds, gts, ds.ignore, mapping_on)
    m2o = pooled_many_to_one_match(preds, gts, ds.ignore, mapping_on)
    metrics = evaluation.summary["metrics"]
    pooled = {
        "hungarian": hung.accuracy, "many_to_one": m2o.accuracy,
        "hungarian_per_image": metrics["hungarian"]["ods"],
        "many_to_one_per_image": metrics["many_to_one"]["ods"],
        "n_images": len(samples), "n_pixels": hung.n_scored,
        "hungarian_mapping": {str(k): v for k, v in hung.mapping.items()},
        "many_to_one_mapping": {str(k): v for k, v in m2o.mapping.items()},
        "mapping_on": record["mapping_on"], "method": fitted.method, "output": output,
        "model": str(model_dir), "trained_here": trained,
        "train_seconds": round(train_seconds, 1), "apply_seconds": round(apply_seconds, 1),
        "model_description": fitted.describe(),
    }
    write_text(out / "pooled.json", json.dumps(pooled, indent=1, default=str))
    _add_to_summary(out / "summary.md", pooled)
    result = DatasetProtocolResult(evaluation=evaluation, pooled=pooled, model_dir=model_dir,
                                   trained=trained, train_seconds=train_seconds,
                                   apply_seconds=apply_seconds)
    yield Progress(step=len(samples), total=len(samples), done=True, message=result.headline(),
                   info={"result": result})


def _add_to_summary(path: Path, pooled: dict[str, Any]) -> None:
    scope = ("mapping estimated on images " + ", ".join(map(str, pooled["mapping_on"]))
             + ", scored on the others") if pooled["mapping_on"] else "estimated on every image"
    text = path.read_text() if path.is_file() else ""
    text += (
        "\n## Dataset protocol (one model, one mapping for the set)\n\n"
        f"{pooled['method']} model (`{pooled['model']}`, output `{pooled['output']}`) "
        f"{'trained once here' if pooled['trained_here'] else 'loaded'} and applied to "
        f"{pooled['n_images']} images ({pooled['apply_seconds']} s). Pooled: one mapping "
        f"from the summed contingency tables ({scope}).\n\n"
        "| score | pooled (one mapping) | mean per image (own mapping) |\n|---|---|---|\n"
        f"| Hungarian accuracy | {pooled['hungarian']:.4f} | "
        f"{pooled['hungarian_per_image']:.4f} |\n"
        f"| many-to-one accuracy | {pooled['many_to_one']:.4f} | "
        f"{pooled['many_to_one_per_image']:.4f} |\n")
    write_text(path, text)


def evaluate_dataset_method(config: EvaluationConfig, options: FitOptions | None = None, *,
                            model: str | os.PathLike | None = None, output: str | None = None,
                            mapping_on: Sequence[int] | None = None) -> DatasetProtocolResult:
    """Train a dataset-level method once (or load ``model``), label every image, score pooled.

    Parameters
    ----------
    config : EvaluationConfig
        Dataset, method and its parameters (no sweeps), results folder.
    options : FitOptions, optional
        Seed, device, preset, channel axis and normalisation of the training.
    model : path-like, optional
        A saved model folder to apply instead of training.
    output : str, optional
        Model output to label with (default: the model's default output).
    mapping_on : sequence of int, optional
        Indices of the images the pooled mappings are estimated on (scored on the
        others); default: every image.

    Returns
    -------
    DatasetProtocolResult

    Examples
    --------
    >>> from napari_useg.evaluation import EvaluationConfig, evaluate_dataset_method
    >>> res = evaluate_dataset_method(EvaluationConfig("shared/microscopy", "iic",
    ...     out="results/iic"))  # doctest: +SKIP
    >>> res.pooled["hungarian"], res.pooled["hungarian_per_image"]  # doctest: +SKIP
    """
    *_, last = iter_dataset_protocol(config, options, model=model, output=output,
                                     mapping_on=mapping_on)
    return last.info["result"]
