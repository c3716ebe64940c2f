"""DFC's reference-image mode as the dataset-level method ``dfc_ref``: model, schedules, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile
import torch

from napari_useg import fit, get_method, iter_fit, load_model, segment, segment_collection
from napari_useg.cli import main
from napari_useg.methods.dfc_reference import DfcRefModel

TINY = dict(n_features=8, n_clusters=8, max_iter=6, work_size=16, batch_size=2, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny images: one torch thread is faster, and immune to a busy machine (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _imgs(n=3, shape=(24, 28, 3), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, shape, dtype=np.uint8) for _ in range(n)]


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(),
                                                 b.net.state_dict().values(), strict=True))


def test_registered_as_a_dataset_method():
    m = get_method("dfc_ref")
    assert m.kind == "dataset" and m.fit is not None and m.default_preset == "fast"
    assert set(m.presets) == {"fast", "full", "paper"}
    paper = m.build("paper")
    assert (paper.batch_size, paper.schedule, paper.predict_bn, paper.mu) == (1, "sorted",
                                                                               "image", 5.0)
    # the shared declarations are those of per-image DFC
    dfc = {i.name: i for i in get_method("dfc").param_infos}
    for info in m.param_infos:
        if info.name in ("n_features", "n_clusters", "n_conv", "lr", "momentum", "init"):
            assert info == dfc[info.name]


@pytest.mark.parametrize("predict_bn", ["running", "image"])
def test_save_load_round_trip_gives_identical_labels(tmp_path, predict_bn):
    imgs = _imgs()
    model = fit(imgs, "dfc_ref", seed=2, predict_bn=predict_bn, **TINY)
    assert isinstance(model, DfcRefModel) and model.outputs == ("argmax",)
    new = _imgs(n=1, shape=(40, 33, 3), seed=9)[0]  # another image, another size
    before = model.predict(new)
    assert before.shape == new.shape[:2] and 1 <= before.min() and before.max() <= 8
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m", device="cpu")
    assert type(again) is DfcRefModel and again.params == model.params
    assert again.normalisation == model.normalisation
    assert np.array_equal(again.predict(new), before)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["method"] == "dfc_ref" and cfg["params"]["predict_bn"] == predict_bn


def test_image_statistics_leave_the_running_ones_alone():
    imgs = _imgs()
    model = fit(imgs, "dfc_ref", seed=1, predict_bn="image", **TINY)
    state = {k: v.clone() for k, v in model.net.state_dict().items()}
    a = model.predict(imgs[0])
    assert not model.net.training
    assert all(torch.equal(v, model.net.state_dict()[k]) for k, v in state.items())
    assert np.array_equal(model.predict(imgs[0]), a)
    # each image's own statistics (demo_ref.py): another result than the running ones
    running = DfcRefModel(replace(model.params, predict_bn="running"), model.net,
                          n_channels=3, is_rgb=True, normalisation=model.normalisation)
    assert not np.array_equal(running.predict(imgs[0]), a)


def test_sorted_schedule_trains_each_batch_in_turn():
    imgs = _imgs(n=3)
    snaps = list(iter_fit(imgs, "dfc_ref", preset="paper", seed=0, device="cpu",
                          n_features=4, n_clusters=4, max_iter=2, work_size=8))
    # batch 1: max_iter steps on each of the 3 images in collection order
    assert [s.step for s in snaps] == list(range(1, 7)) and snaps[-1].total == 6
    assert snaps[-1].done and snaps[-1].info["model"].training["steps"] == 6
    # the order is the collection's: other orders give another network
    a = fit(imgs, "dfc_ref", preset="paper", seed=0, device="cpu", n_features=4,
            n_clusters=4, max_iter=2, work_size=8)
    b = fit(imgs[::-1], "dfc_ref", preset="paper", seed=0, device="cpu", n_features=4,
            n_clusters=4, max_iter=2, work_size=8)
    assert not _same_weights(a, b)


def test_interrupted_fit_resumes_to_the_same_model(tmp_path):
    imgs = _imgs(n=3)
    kw = dict(TINY, max_iter=6)
    ref = fit(imgs, "dfc_ref", seed=1, **kw)
    ck = tmp_path / "ck.pt"
    it = iter_fit(imgs, "dfc_ref", seed=1, checkpoint=ck, checkpoint_every=2, **kw)
    for snap in it:
        if snap.step == 3:
            break
    it.close()
    resumed = fit(imgs, "dfc_ref", seed=1, checkpoint=ck, checkpoint_every=2, **kw)
    assert _same_weights(ref, resumed)


def test_segment_fits_on_the_one_image_and_collection_matches_fit():
    imgs = _imgs(n=2)
    labels = segment(imgs[0], "dfc_ref", seed=0, **TINY)
    assert labels.shape == imgs[0].shape[:2] and labels.min() == 1
    out = segment_collection(imgs, seed=4, **TINY)
    model = fit(imgs, "dfc_ref", seed=4, **TINY)
    raw = [model.predict(im) for im in imgs]
    # the same partition, renumbered 1..n over the collection
    joint = np.concatenate([r.ravel() for r in raw])
    mine = np.concatenate([o.ravel() for o in out])
    assert len(set(zip(joint.tolist(), mine.tolist(), strict=True))) == len(np.unique(joint))
    assert sorted(np.unique(mine)) == list(range(1, len(np.unique(joint)) + 1))


def test_cli_fit_writes_a_model_that_predict_reads(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    imgs = _imgs(n=2)
    for i, im in enumerate(imgs):
        tifffile.imwrite(folder / f"im{i}.tif", im)
    rc = main(["fit", str(folder), "--method", "dfc_ref", "--out", str(tmp_path / "model"),
               "--max-iter", "3", "--n-features", "8", "--n-clusters", "8", "--work-size",
               "16", "--seed", "3", "--device", "cpu", "-q"])
    assert rc == 0 and (tmp_path / "model" / "weights.pt").exists()
    out = tmp_path / "labels.tif"
    rc = main(["predict", "--model", str(tmp_path / "model"), str(folder / "im1.tif"),
               "-o", str(out), "--device", "cpu"])
    assert rc == 0
    ref = fit(imgs, "dfc_ref", seed=3, max_iter=3, n_features=8, n_clusters=8, work_size=16,
              device="cpu")
    assert np.array_equal(tifffile.imread(out), ref.predict(imgs[1]))
    capsys.readouterr()
    assert main(["methods", "dfc_ref"]) == 0
    listing = capsys.readouterr().out
    assert "dfc_ref: DFC with reference images" in listing and "[dataset-level]" in listing
    assert "--predict-bn" in listing and "paper" in listing
