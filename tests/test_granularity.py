"""Re-cutting a finished result at another granularity (napari_useg.viewer.granularity), on
napari's ViewerModel: no window, no Qt."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_useg.core.hierarchy import Hierarchy
from napari_useg.viewer.granularity import granularity_range, recut
from napari_useg.viewer.output import META_KEY, LabelsWriter, choose_output, is_edited
from napari_useg.viewer.segment_job import make_job


def blocks(n_slices: int = 2) -> np.ndarray:
    """A stack of 32x32 slices of six flat blocks of distinct grey levels, a little noise."""
    rng = np.random.default_rng(0)
    img = np.zeros((n_slices, 32, 32))
    levels = [20, 60, 100, 140, 180, 220]
    for i, level in enumerate(levels):
        r, c = divmod(i, 3)
        img[:, r * 16:(r + 1) * 16, c * 11:(c + 1) * 11] = level
    img[1:, 4:10, 4:10] = 250  # the second slice has one region more
    return np.clip(img + rng.normal(0, 1, img.shape), 0, 255).astype(np.uint8)


def run(viewer: ViewerModel, method: str, **params):
    """Run a job into its result layer as the widget does; the job and the layer."""
    job = make_job(viewer.layers["img"], method, viewer=viewer, preview_every=0, **params)
    _, target = choose_output(viewer, job)
    writer = LabelsWriter(viewer, job, target)
    for p in job.iter():
        writer.track(p)
    return job, writer.finish("done", labels=p.result)


def n_segments(labels: np.ndarray) -> int:
    return int(np.unique(labels[labels > 0]).size)


def nested(fine: np.ndarray, coarse: np.ndarray) -> bool:
    """Every region of ``fine`` lies inside one region of ``coarse``."""
    pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1).shape[1]
    return pairs == np.unique(fine).size


def test_recut_gives_nested_cuts_of_every_slice_and_records_the_cut():
    viewer = ViewerModel()
    viewer.add_image(blocks(), name="img")
    job, layer = run(viewer, "felzenszwalb")
    assert set(job.hierarchies) == {(0,), (1,)}
    assert all(isinstance(h, Hierarchy) for h in job.hierarchies.values())
    low, high, current = granularity_range(job)
    assert low == 1 and high == max(h.n_regions for h in job.hierarchies.values()) >= 6
    assert current == n_segments(layer.data[0])
    original = layer.data.copy()
    cuts = {}
    for k in (high, 5, 3, 1):
        recut(job, layer, k)
        cuts[k] = layer.data.copy()
        for i, h in ((0, job.hierarchies[(0,)]), (1, job.hierarchies[(1,)])):
            assert n_segments(cuts[k][i]) == min(k, h.n_regions)
        meta = layer.metadata[META_KEY]
        assert meta["granularity"] == {"n_segments": k}
        assert meta["n_labels"] == n_segments(cuts[k]) and meta["status"] == "done"
        assert not is_edited(layer)  # the re-cut is napari-useg's own writing
    for fine, coarse in ((high, 5), (5, 3), (3, 1)):
        for i in range(2):
            assert nested(cuts[fine][i], cuts[coarse][i]), (fine, coarse, i)
    # the same cut again gives the same labels; the job's own result is untouched
    recut(job, layer, 3)
    np.testing.assert_array_equal(layer.data, cuts[3])
    np.testing.assert_array_equal(job.result, original)
    # hierarchies stay on the job: the metadata holds plain values only
    assert not any(isinstance(v, Hierarchy) for v in layer.metadata[META_KEY].values())


def test_no_hierarchy_or_edited_layer_is_not_recut():
    viewer = ViewerModel()
    viewer.add_image(blocks(1)[0], name="img")
    job, layer = run(viewer, "kmeans", n_clusters=2, window=1)
    assert job.hierarchies == {} and granularity_range(job) is None
    with pytest.raises(ValueError, match="no hierarchy"):
        recut(job, layer, 2)
    job, layer = run(viewer, "felzenszwalb")
    assert granularity_range(job) is not None
    with pytest.raises(ValueError, match=">= 1"):
        recut(job, layer, 0)
    data = layer.data.copy()
    data[0, 0] = 99
    layer.data = data  # a hand edit
    with pytest.raises(ValueError, match="edited"):
        recut(job, layer, 2)
    assert layer.data[0, 0] == 99
