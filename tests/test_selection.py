"""Choosing one run by the contrast of its foreground (``runs=K, combine="contrast"``)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from napari.components import ViewerModel

from napari_useg import iter_segment, run_on_layer, segment
from napari_useg.api import _combine_runs
from napari_useg.cli import main
from napari_useg.core.image import prepare_image
from napari_useg.core.options import RunOptions
from napari_useg.core.progress import Progress
from napari_useg.core.registry import RunContext
from napari_useg.core.selection import (
    CONTRAST_SHARE,
    choose_by_contrast,
    choose_run,
    foreground_contrast,
)
from napari_useg.metrics import adjusted_rand_index


def square_image(shape=(24, 24)) -> np.ndarray:
    img = np.zeros((*shape, 1), np.float32)
    img[6:18, 6:18] = 1.0
    return img


def square_runs(shape=(24, 24)) -> list[np.ndarray]:
    """Three runs of :func:`square_image`: half the square, the square, one label."""
    half = np.ones(shape, np.int32)
    half[6:18, 6:12] = 2
    whole = np.ones(shape, np.int32)
    whole[6:18, 6:18] = 2
    return [half, whole, np.ones(shape, np.int32)]


# ---------------------------------------------------------------- the criterion

def test_foreground_contrast_is_otsus_between_class_variance():
    img = square_image()
    half, whole, flat = square_runs()
    # the square: w_f = 144/576, both means exact (1 and 0)
    assert foreground_contrast(whole, img) == pytest.approx(0.25 * 0.75)
    # half of it: the other half (72 pixels of 1) is in the background
    w = 72 / 576
    assert foreground_contrast(half, img) == pytest.approx(w * (1 - w) * (1 - 72 / 504) ** 2)
    assert foreground_contrast(flat, img) == 0.0  # no foreground at all
    # channels add up; the label values do not matter
    two = np.concatenate([img, 0.5 * img], axis=-1)
    assert foreground_contrast(whole * 7, two) == pytest.approx(0.1875 * 1.25)


def test_foreground_is_what_instances_would_count():
    """The background is the label owning the largest connected region, even when the
    objects are the brighter label: a run labelling the square 1 and the rest 2 scores
    the same as one labelling them the other way round."""
    img = square_image()
    whole = square_runs()[1]
    assert foreground_contrast(3 - whole, img) == pytest.approx(foreground_contrast(whole, img))


def test_contrast_rules_out_the_runs_that_got_the_foreground_wrong():
    index, scores = choose_by_contrast(square_runs(), square_image())
    assert index == 1 and scores.shape == (3,) and scores[1] > scores[0] > scores[2] == 0
    assert scores[0] < CONTRAST_SHARE * scores[1]  # half the square is no candidate
    index, _ = choose_by_contrast([square_runs()[0]] * 2, square_image())
    assert index == 0  # ties: the first run


def test_among_runs_of_similar_contrast_the_most_typical_is_kept():
    """Three near-equal runs: the square notched at the top, at the bottom, at both.
    The last scores lowest but sits between the other two (two pixels from each), so it
    is kept, where the highest score alone would keep a notched-at-one-end run."""
    whole = square_runs()[1]
    top, bottom, both = whole.copy(), whole.copy(), whole.copy()
    top[6, 6:8] = 1
    bottom[17, 6:8] = 1
    both[6, 6:8] = 1
    both[17, 6:8] = 1
    maps = [top, bottom, both]
    index, scores = choose_by_contrast(maps, square_image())
    assert scores[2] < scores[0] == pytest.approx(scores[1])
    assert scores[2] >= CONTRAST_SHARE * scores.max()
    assert index == 2
    assert choose_run(maps, scores, share=1.0) == 0  # the best score alone: the first
    assert choose_run(maps[:2], scores[:2]) == 0  # two candidates: the higher score


def test_contrast_works_on_volumes_read_in_slabs():
    class Slabs:
        """A lazy volume: shape and slicing along the first axis only."""

        def __init__(self, data):
            self.data, self.shape, self.reads = data, data.shape, 0

        def __getitem__(self, key):
            self.reads += 1
            return self.data[key]

    vol = np.zeros((6, 10, 10, 1), np.float32)
    vol[2:4, 3:7, 3:7] = 1.0
    labels = (vol[..., 0] > 0).astype(np.int32) + 1
    lazy = Slabs(vol)
    assert foreground_contrast(labels, lazy) == pytest.approx(foreground_contrast(labels, vol))
    assert lazy.reads >= 1


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"labels of shape \(24, 24\)"):
        foreground_contrast(square_runs()[1], np.zeros((20, 24, 1)))
    with pytest.raises(ValueError, match="at least one"):
        choose_by_contrast([], square_image())
    with pytest.raises(ValueError, match="one score per run"):
        choose_run(square_runs(), [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one run"):
        choose_run([], [])
    with pytest.raises(ValueError, match="share"):
        choose_run(square_runs(), [1.0, 2.0, 0.0], share=0.0)
    with pytest.raises(ValueError, match="combine must be one of"):
        RunOptions(combine="vote")


# ---------------------------------------------------------------- the runs made one

def test_combine_runs_returns_the_chosen_run_with_its_own_info():
    runs = square_runs()

    def run(prepared, p, ctx):  # one run per seed, with a marker in its info
        yield Progress(step=1, total=1, labels=runs[ctx.seed], done=True,
                       info={"hierarchy": f"tree of seed {ctx.seed}"})

    prepared = prepare_image(square_image()[..., 0])
    ctx = RunContext(seed=0, device=torch.device("cpu"))
    snaps = list(_combine_runs(run, prepared, None, ctx, 3, "contrast"))
    last = snaps[-1]
    assert last.done and last.info["chosen"] == 1
    np.testing.assert_array_equal(last.labels, runs[1])
    assert last.info["hierarchy"] == "tree of seed 1"  # the chosen run's tree
    assert last.info["contrast"].argmax() == 1 and len(last.info["runs"]) == 3
    assert last.info["agreement"].shape == (24, 24)
    assert "run 2 of 3 (seed 1" in last.message
    # the consensus of the same runs keeps no run's tree
    last = list(_combine_runs(run, prepared, None, ctx, 3, "consensus"))[-1]
    assert "hierarchy" not in last.info and "consensus of 3 runs" in last.message


def nuclei_image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    img = 40 + 10 * rng.standard_normal((48, 48))
    for cy, cx in ((12, 12), (12, 34), (34, 20)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] += 150
    return np.clip(img, 0, 255).astype(np.uint8)


def test_api_contrast_returns_one_of_the_runs_and_is_reproducible():
    img = nuclei_image()
    kw = dict(n_clusters=3, window=3, seed=2)
    last = list(iter_segment(img, "kmeans", runs=3, combine="contrast", preview_every=0,
                             **kw))[-1]
    chosen = last.info["chosen"]
    single = segment(img, "kmeans", **{**kw, "seed": 2 + chosen})
    assert adjusted_rand_index(last.labels, single) == pytest.approx(1.0)
    assert chosen == int(np.argmax(last.info["contrast"]))
    np.testing.assert_array_equal(
        segment(img, "kmeans", runs=3, combine="contrast", **kw), last.labels)
    objects = segment(img, "kmeans", runs=2, combine="contrast", result="instances",
                      min_object_size=4, n_clusters=2, window=3)
    assert objects.max() == 3


def test_cli_combine_contrast(tmp_path, capsys):
    src = tmp_path / "nuclei.tif"
    tifffile.imwrite(src, nuclei_image())
    out = tmp_path / "labels.tif"
    rc = main(["segment", str(src), "--method", "kmeans", "--n-clusters", "2", "--runs", "2",
               "--combine", "contrast", "-o", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert "chosen by the contrast of its foreground" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:  # argparse: usage and one line naming the choices
        main(["segment", str(src), "--method", "kmeans", "--runs", "2", "--combine", "vote",
              "-o", str(tmp_path / "other.tif"), "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "'vote'" in err and "contrast" in err
    assert not (tmp_path / "other.tif").exists()


def test_napari_records_how_runs_were_combined():
    viewer = ViewerModel()
    viewer.add_image(nuclei_image(), name="img")
    out = run_on_layer(viewer, "img", method="kmeans", n_clusters=2, runs=2,
                       combine="contrast")
    meta = out.metadata["napari_useg"]
    assert (meta["runs"], meta["combine"]) == (2, "contrast")
    assert "img kmeans agreement" in viewer.layers
