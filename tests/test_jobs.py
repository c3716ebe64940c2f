"""The job protocol shared by the three napari jobs (napari_useg.viewer.jobs), without Qt."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_useg.core.options import FitOptions, RunOptions
from napari_useg.viewer.jobs import JobProgress, run_options
from napari_useg.viewer.model_jobs import make_prediction, make_training, train_on_layers
from napari_useg.viewer.segment_job import make_job
from synthetic import three_regions

TINY_IIC = dict(steps=3, width=0.125, input_size=16, batch_size=2, device="cpu")


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(n)


def rgb(seed: int, shape=(32, 40)) -> np.ndarray:
    return three_regions(shape, seed=seed)[0]


def check_protocol(items: list[JobProgress]) -> JobProgress:
    """Every item is a JobProgress, only the last is done, fractions grow to 1."""
    assert items and all(isinstance(p, JobProgress) for p in items)
    assert [p.done for p in items] == [False] * (len(items) - 1) + [True]
    fractions = [p.fraction for p in items]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 1
    return items[-1]


def predict_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "napari-useg-predict"]


def test_the_three_jobs_yield_one_progress_type_whose_last_item_is_the_result():
    v = ViewerModel()
    a = rgb(0)
    v.add_image(np.stack([a, a[::-1]]), name="st", rgb=True)
    seg = make_job("st", "kmeans", viewer=v, n_clusters=2, window=1)
    last = check_protocol(list(seg.iter()))
    assert last.fraction == 1 and not last.stopped
    assert last.result.shape == (2, 32, 40) and last.result.dtype == np.int32
    train = make_training("st", "iic", viewer=v, **TINY_IIC)
    last = check_protocol(list(train.iter()))
    model = last.result
    assert model.training["steps"] == 3 and last.snap.done
    pred = make_prediction("st", model, viewer=v, tile_size=16)
    items = list(pred.iter())
    last = check_protocol(items)
    assert items[0].tiles is not None and items[0].tiles[1] > 1  # one item per tile
    np.testing.assert_array_equal(last.result[1], model.predict(a[::-1]))
    assert pred.run().shape == (2, 32, 40)
    assert not predict_threads()


def test_stop_is_the_same_for_every_job(fake_methods):
    v = ViewerModel()
    v.add_image(rgb(0)[..., 0], name="gray")
    v.add_image(rgb(0), name="a", rgb=True)
    # segmentation: stop after step 3 of 2000 keeps the labels so far
    seg = make_job("gray", "slowtest", viewer=v, preview_every=1, delay=0.0)
    items = []
    for p in seg.iter():
        items.append(p)
        if p.snap.step == 3:
            seg.stop()
    last = check_protocol(items)
    assert last.stopped and last.snap.step == 3 and fake_methods["slow_steps"][-1] == 3
    assert set(np.unique(last.result)) == {1, 2}
    # training: stop keeps the model of the last checkpoint (every step here)
    train = make_training("a", "iic", viewer=v, **dict(TINY_IIC, steps=50))
    train.stop()  # asked before the first step: that step runs, then training stops
    last = check_protocol(list(train.iter()))
    assert last.stopped and last.result.training["stopped_at"] == 1
    # prediction: stop ends after the current tile and keeps nothing
    model = train_on_layers(v, "a", "iic", **TINY_IIC)
    pred = make_prediction("a", model, viewer=v, tile_size=16)
    pred.stop()
    last = check_protocol(list(pred.iter()))
    assert last.stopped and last.result is None and last.tiles[0] == 1
    assert not predict_threads()


def test_closing_a_prediction_leaves_no_thread():
    v = ViewerModel()
    v.add_image(rgb(0, (64, 64)), name="a", rgb=True)
    model = train_on_layers(v, "a", "iic", **TINY_IIC)
    it = make_prediction("a", model, viewer=v, tile_size=16).iter()
    assert next(it).tiles[0] == 1
    it.close()
    assert not predict_threads()


@pytest.mark.filterwarnings("ignore:the model was trained on uint8")
def test_errors_in_the_prediction_thread_reach_the_caller():
    v = ViewerModel()
    bad = rgb(0).astype(np.float32) / 255
    v.add_image(rgb(0), name="a", rgb=True)
    model = train_on_layers(v, "a", "iic", **TINY_IIC)
    bad[20, 30] = np.nan
    v.add_image(bad, name="nan", rgb=True)
    with pytest.raises(ValueError, match="NaN"):
        make_prediction("nan", model, viewer=v, tile_size=16).run()
    assert not predict_threads()


def test_run_options_are_built_once_from_the_declarations():
    kwargs = {"seed": 3, "n_clusters": 2}
    opts = run_options(RunOptions, None, kwargs)
    assert opts == RunOptions(seed=3) and kwargs == {"n_clusters": 2}
    base = RunOptions(seed=1, device="cpu", preview_every=0)
    assert run_options(RunOptions, base, {}) is base
    assert run_options(RunOptions, base, {"seed": 5}) == base.replace(seed=5)
    with pytest.raises(TypeError, match="FitOptions"):
        run_options(FitOptions, base, {})
    with pytest.raises(ValueError, match="seed"):
        run_options(RunOptions, None, {"seed": -1})
    v = ViewerModel()
    v.add_image(rgb(0), name="a", rgb=True)
    job = make_job("a", "kmeans", viewer=v, options=base, seed=7, n_clusters=2, window=1)
    assert job.options == base.replace(seed=7) and job.params["n_clusters"] == 2
    assert job.metadata(runtime=0, status="x")["seed"] == 7
    # the napari default of checkpoint_every is 1 (Stop keeps exactly the steps done)...
    assert make_training("a", "iic", viewer=v, **TINY_IIC).options.checkpoint_every == 1
    # ... unless options say otherwise
    fit = FitOptions(device="cpu", normalisation="per_image")
    job = make_training("a", "iic", viewer=v, options=fit, steps=2)
    assert job.options == fit and job.normalisation == "per_image"
    with pytest.raises(ValueError, match="normalisation"):
        make_training("a", "iic", viewer=v, normalisation="none")
    with pytest.raises(TypeError, match="channel_axis"):
        make_prediction("a", None, viewer=v, channel_axis="x")


def test_a_given_checkpoint_is_kept(tmp_path):
    v = ViewerModel()
    v.add_image(rgb(0), name="a", rgb=True)
    ckpt = tmp_path / "train.pt"
    model = train_on_layers(v, "a", "iic", checkpoint=ckpt, **TINY_IIC)
    assert ckpt.is_file() and model.training["steps"] == 3
