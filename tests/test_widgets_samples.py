"""Sample data through napari's sample menu."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg.io.samples import SAMPLES, sample_ground_truth, sample_image

pytest.importorskip("qtpy")


def test_samples_open_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-useg", "nuclei")
    img, gt = viewer.layers["nuclei"], viewer.layers["nuclei ground truth"]
    assert img.data.shape == (256, 256) and img.data.dtype == np.uint8 and not img.rgb
    assert gt.data.shape == (256, 256) and set(np.unique(gt.data)) == {0, 1}
    assert 0.1 < gt.data.mean() < 0.6  # nuclei cover part of the crop
    viewer.open_sample("napari-useg", "chelsea")
    assert viewer.layers["chelsea"].rgb and viewer.layers["chelsea"].data.shape == (300, 451, 3)


def test_sample_functions():
    assert set(SAMPLES) >= {"chelsea", "nuclei"}
    assert sample_ground_truth("chelsea") is None
    np.testing.assert_array_equal(sample_ground_truth("nuclei") > 0,
                                  sample_ground_truth("nuclei") == 1)
    assert sample_image("nuclei").std() > 10
    with pytest.raises(ValueError, match="unknown sample"):
        sample_image("mars")
