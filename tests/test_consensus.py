"""Consensus of several runs and its agreement map: core, API, command line and napari."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from napari.components import ViewerModel

from napari_useg import iter_segment, run_on_layer, segment
from napari_useg.cli import main
from napari_useg.core.consensus import agreement_map, consensus
from napari_useg.core.options import RunOptions
from napari_useg.metrics import adjusted_rand_index, hungarian_accuracy
from synthetic import three_regions


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return adjusted_rand_index(a, b) == pytest.approx(1.0)


def corrupted_runs(truth: np.ndarray, k: int, seed: int = 0) -> tuple[list[np.ndarray],
                                                                     np.ndarray]:
    """``k`` copies of ``truth``, each with its own 15 % of pixels relabelled at random and
    its label values permuted; also a mask of the pixels corrupted in at least one run."""
    rng = np.random.default_rng(seed)
    runs, touched = [], np.zeros(truth.shape, bool)
    n = int(truth.max()) + 1
    for _ in range(k):
        run = truth.copy()
        noise = rng.random(truth.shape) < 0.15
        run[noise] = rng.integers(1, n, int(noise.sum()))
        touched |= noise & (run != truth)
        runs.append(rng.permutation(np.arange(10, 10 + n))[run])
    return runs, touched


@settings(max_examples=25, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(2, 12), st.integers(2, 12)),
              elements=st.integers(0, 4)), st.integers(1, 5))
def test_identical_runs_give_their_partition_and_full_agreement(labels, k):
    out, agreement = consensus([labels] * k, min_size=1)
    assert same_partition(out, labels)
    assert out.dtype == np.int32 and out.min() == 1
    np.testing.assert_array_equal(agreement, np.ones(labels.shape, np.float32))


def test_majority_of_runs_wins_and_agreement_marks_the_disagreement():
    truth = np.ones((20, 30), np.int64)
    truth[:, 15:] = 2
    other = truth.copy()
    other[5:10, 3:8] = 3  # one run of three sees an extra segment
    out, agreement = consensus([truth, other + 5, truth * 7], min_size=1)
    assert same_partition(out, truth)
    assert agreement[7, 5] < agreement[15, 5] <= agreement[15, 25] == pytest.approx(1.0)


def test_consensus_beats_the_runs_it_combines_and_flags_their_errors():
    _, truth = three_regions((60, 80))
    runs, touched = corrupted_runs(truth, 5)
    out, agreement = consensus(runs)
    single = np.mean([hungarian_accuracy(r, truth) for r in runs])
    # each run is 85-90 % right; a pixel is wrong in the vote only if >= 3 of 5 runs
    # corrupted it the same way, so the consensus recovers the regions
    assert single < 0.92 and hungarian_accuracy(out, truth) > 0.99
    assert agreement[touched].mean() < agreement[~touched].mean()


def test_consensus_is_independent_of_label_values_and_run_order():
    _, truth = three_regions((30, 40))
    runs, _ = corrupted_runs(truth, 3, seed=2)
    a, ag_a = consensus(runs)
    b, ag_b = consensus([r * 3 + 100 for r in runs[::-1]])
    assert same_partition(a, b)
    np.testing.assert_allclose(ag_a, ag_b)


def test_small_consensus_segments_join_a_neighbour():
    truth = np.ones((20, 20), np.int64)
    truth[:, 10:] = 2
    truth[2:4, 2:4] = 3  # 4 pixels, unanimous
    out, _ = consensus([truth] * 3, min_size=10)
    assert out.max() == 2 and (out[2:4, 2:4] == out[0, 0]).all()
    out, _ = consensus([truth] * 3, min_size=4)
    assert out.max() == 3


def test_agreement_map_values():
    a = np.zeros((4, 4), int)
    a[:, 2:] = 1
    b = np.zeros((4, 4), int)  # one segment
    ag = agreement_map(a, [a, b])
    # left half: IoU 1 with a, 8/16 with b
    np.testing.assert_allclose(ag, np.full((4, 4), 0.75))


@pytest.mark.parametrize("maps, match", [
    ([], "at least one"),
    ([np.zeros((4, 4), int), np.zeros((4, 5), int)], "shape"),
    ([np.zeros((4, 4), float)], "integers"),
    ([np.zeros(4, int)], "2-D or 3-D"),
])
def test_consensus_refuses_bad_runs(maps, match):
    with pytest.raises(ValueError, match=match):
        consensus(maps)


def test_consensus_works_on_volumes():
    truth = np.ones((6, 10, 10), np.int64)
    truth[:, :, 5:] = 2
    out, agreement = consensus([truth, truth, truth[::-1]], min_size=1)
    assert out.shape == truth.shape and same_partition(out, truth)
    assert agreement.shape == truth.shape


# ---------------------------------------------------------------- run options and API

@pytest.mark.parametrize("kwargs, error", [
    ({"runs": 0}, ValueError), ({"runs": True}, TypeError), ({"runs": 1000}, ValueError),
    ({"runs": 2, "seed": 2**63 - 1}, ValueError),
])
def test_runs_option_is_checked(kwargs, error):
    with pytest.raises(error, match="runs"):
        RunOptions(**kwargs)


def test_api_runs_returns_consensus_of_the_seeds_with_agreement():
    img, truth = three_regions((40, 56), noise=40.0)
    kw = dict(n_clusters=3, window=3, seed=4)
    snaps = list(iter_segment(img, "kmeans", runs=3, preview_every=0, **kw))
    last = snaps[-1]
    assert last.done and "consensus of 3 runs (seeds 4..6)" in last.message
    assert [s.step for s in snaps] == sorted(s.step for s in snaps)
    assert last.step == last.total
    runs = last.info["runs"]
    for r, run in enumerate(runs):  # each run is the single run with its seed
        assert same_partition(run, segment(img, "kmeans", **{**kw, "seed": 4 + r}))
    agreement = last.info["agreement"]
    assert agreement.dtype == np.float32 and agreement.shape == img.shape[:2]
    assert 0 < agreement.min() and agreement.max() <= 1
    expected, _ = consensus(runs)
    assert same_partition(last.labels, expected)
    # deterministic, and runs=1 is the plain run
    np.testing.assert_array_equal(segment(img, "kmeans", runs=3, **kw), last.labels)
    assert same_partition(segment(img, "kmeans", runs=1, **kw), runs[0])


def test_api_runs_then_instances():
    img = np.zeros((40, 40), np.uint8)
    img[5:15, 5:15] = 200
    img[25:35, 22:36] = 200
    objects = segment(img, "otsu", runs=2, result="instances", min_object_size=4)
    assert objects.max() == 2 and (objects == 0).sum() > 0


# ---------------------------------------------------------------- command line

def test_cli_writes_agreement_tiff(tmp_path, capsys):
    img, _ = three_regions((32, 40), noise=30.0)
    src = tmp_path / "img.tif"
    tifffile.imwrite(src, img)
    out, agree = tmp_path / "labels.tif", tmp_path / "agreement.tif"
    rc = main(["segment", str(src), "--method", "kmeans", "--n-clusters", "3", "--window", "1",
               "--runs", "2", "--agreement", str(agree), "-o", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    values = tifffile.imread(agree)
    assert values.dtype == np.float32 and values.shape == img.shape[:2]
    assert 0 <= values.min() and values.max() <= 1
    assert "mean agreement" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--agreement", "a.tif"], "--runs K with K >= 2"),
    (["--runs", "2", "--agreement", "a.png"], "must end in .tif"),
    (["--runs", "2", "--agreement", "labels.tif"], "also another output"),
    (["--runs", "0"], "runs must be >= 1"),
])
def test_cli_agreement_errors_are_one_line(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    img, _ = three_regions((16, 16))
    tifffile.imwrite("img.tif", img)
    rc = main(["segment", "img.tif", "--method", "kmeans", "-o", "labels.tif", "--quiet",
               *extra])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "labels.tif").exists()


# ---------------------------------------------------------------- napari (no Qt)

def test_run_on_layer_adds_agreement_layer_under_the_labels():
    viewer = ViewerModel()
    img, _ = three_regions((30, 40), noise=40.0)
    viewer.add_image(img, name="img", rgb=True, scale=(2.0, 0.5))
    out = run_on_layer(viewer, "img", method="kmeans", n_clusters=3, window=1, runs=2)
    ag = viewer.layers["img kmeans agreement"]
    assert ag.data.shape == out.data.shape and ag.data.dtype == np.float32
    np.testing.assert_allclose(ag.scale, (2.0, 0.5))
    assert viewer.layers.index(ag) == viewer.layers.index(out) - 1  # labels stay on top
    assert out.metadata["napari_useg"]["runs"] == 2
    n = len(viewer.layers)
    run_on_layer(viewer, "img", method="kmeans", n_clusters=3, window=1, runs=2, seed=1)
    assert len(viewer.layers) == n  # refreshed, not duplicated
    run_on_layer(viewer, "img", method="kmeans", n_clusters=3, window=1)
    assert len(viewer.layers) == n  # a single run adds none


def test_runs_of_varying_object_size_keep_the_object():
    """Two-class runs whose foreground grows and shrinks from seed to seed (as volume runs
    do): renaming by raw overlap would send a large foreground to the reference's
    background (it covers more of it), and the object would vanish from the vote."""
    yy, xx = np.mgrid[:64, :64]
    d2 = (yy - 32) ** 2 + (xx - 32) ** 2
    runs = [np.where(d2 <= r * r, 2, 1) for r in (10, 6, 7, 12, 5)]
    out, agreement = consensus(runs, min_size=1)
    assert out.max() == 2
    fg = out == out[32, 32]
    assert (d2 <= 36).sum() <= fg.sum() <= (d2 <= 100).sum()
    assert agreement[32, 32] > agreement[0, 0] - 0.5  # the object is not the unsure part
