"""Input images: exact scaling (no precision loss, no overflow) and no silently dropped channel."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_useg import fit, iter_segment, segment
from napari_useg.cli import main
from napari_useg.core.image import PERCENTILES, apply_ranges, prepare_image


def _reference(ch: np.ndarray) -> np.ndarray:
    """prepare_image's rule for one channel, all in float64 (the reference)."""
    x = ch.astype(np.float64)
    if ch.dtype.kind == "f" and x.min() >= 0 and x.max() <= 1:
        return x
    lo, hi = np.percentile(x, PERCENTILES)
    if not hi > lo:
        lo, hi = x.min(), x.max()
    if not hi > lo:
        return np.zeros_like(x)
    return np.clip((x - lo) / (hi - lo), 0, 1)


def test_uint32_steps_on_a_large_offset_are_kept():
    img = np.full((64, 64), 3_000_000_000, np.uint32)
    img[:, 32:] += 100
    labels = segment(img, "kmeans", n_clusters=2, window=1)
    assert len(np.unique(labels)) == 2
    assert (labels[:, :32] != labels[:, 32:][:, :1]).all()


def test_float64_steps_of_three_at_1e8_are_kept():
    img = np.full((16, 16), 1e8, np.float64)
    img[:, 8:] += 3
    data = prepare_image(img).data[..., 0]
    np.testing.assert_allclose(data[:, :8], 0.0)
    np.testing.assert_allclose(data[:, 8:], 1.0)


def test_int32_ramp_at_1e9_stays_a_ramp():
    img = np.tile(1_000_000_000 + np.arange(64, dtype=np.int32), (8, 1))
    data = prepare_image(img).data[0, :, 0]
    assert len(np.unique(data)) > 50
    np.testing.assert_allclose(data, _reference(img)[0], atol=1e-6)


@pytest.mark.parametrize("method", ["felzenszwalb", "kmeans"])
def test_finite_values_beyond_float32_range_segment_correctly(method):
    img = np.full((32, 32), -1e300)
    img[:, 16:] = 1e300
    data = prepare_image(img).data
    assert np.isfinite(data).all()
    labels = segment(img, method, **({"n_clusters": 2, "window": 1} if method == "kmeans" else {}))
    left, right = labels[:, :16], labels[:, 16:]
    assert not np.isin(np.unique(left), np.unique(right)).any()


_HUGE = np.where(np.arange(32) < 16, -1e300, 1e300)[None, :].repeat(32, axis=0)
#: The same picture at a scale float32 holds: every method must see the same data.
_SANE = np.where(_HUGE > 0, 255, 0).astype(np.uint8)


@pytest.mark.parametrize("method", ["dfc", "mmt"])
def test_learning_methods_see_beyond_float32_images_exactly(method):
    kw = {"preset": "fast", "max_iter": 5, "seed": 0, "device": "cpu"}
    np.testing.assert_array_equal(segment(_HUGE, method, **kw), segment(_SANE, method, **kw))


def test_a_model_fitted_and_applied_beyond_float32_is_the_sane_scale_model():
    kw = {"preset": "fast", "steps": 2, "input_size": 16, "batch_size": 2, "seed": 0,
          "device": "cpu", "normalisation": "dataset"}
    huge = fit(np.stack([_HUGE, _HUGE[:, ::-1]]), "iic", **kw)
    sane = fit(np.stack([_SANE, _SANE[:, ::-1]]), "iic", **kw)
    assert huge.normalisation["lo"] == [-1e300] and huge.normalisation["hi"] == [1e300]
    np.testing.assert_array_equal(huge.predict(_HUGE), sane.predict(_SANE))


def test_apply_ranges_keeps_precision_and_refuses_non_finite_ranges():
    x = np.array([[[3_000_000_000], [3_000_000_100]]], np.uint32)
    np.testing.assert_allclose(apply_ranges(x, [3e9], [3e9 + 100])[0, :, 0], [0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        apply_ranges(x, [np.nan], [1.0])


def test_rgba_with_varying_fourth_channel_keeps_it_and_warns():
    img = np.zeros((16, 16, 4), np.uint8)
    img[..., 3] = 0
    img[:, 8:, 3] = 255  # the only structure is in the 4th channel (infrared, say)
    with pytest.warns(UserWarning, match="4th channel"):
        prep = prepare_image(img)
    assert prep.n_channels == 4 and not prep.is_rgb
    with pytest.warns(UserWarning):
        labels = segment(img, "kmeans", n_clusters=2, window=1)
    assert len(np.unique(labels[:, :8])) == 1 and labels[0, 0] != labels[0, -1]


def test_the_command_line_gives_a_warning_as_one_line(tmp_path, capsys):
    img = np.zeros((16, 16, 4), np.uint8)
    img[:, 8:, 3] = 255
    src = tmp_path / "rgbi.tif"
    tifffile.imwrite(src, img)
    rc = main(["segment", str(src), "-o", str(tmp_path / "o.tif"), "-m", "kmeans", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0 and (tmp_path / "o.tif").exists()
    assert len(err) == 1 and err[0].startswith("napari-useg segment: warning: image of shape")
    assert "4th channel" in err[0]


def test_rgba_with_constant_alpha_is_rgb_without_warning():
    img = np.zeros((16, 16, 4), np.uint8)
    img[..., 3] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prep = prepare_image(img)
    assert prep.n_channels == 3 and prep.is_rgb


def test_channel_axis_minus_one_keeps_four_channels_silently():
    img = np.random.default_rng(0).integers(0, 255, (16, 16, 4), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prep = prepare_image(img, channel_axis=-1)
    assert prep.n_channels == 4


def test_fit_keeps_the_fourth_channel_of_rgb_ir_tiles():
    tiles = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 4), np.uint8)
    with pytest.warns(UserWarning, match="4th channel"):
        model = fit(tiles, "iic", preset="fast", steps=1, input_size=16, batch_size=2)
    assert model.n_channels == 4


_dtypes = st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.uint32, np.int64,
                           np.float32, np.float64])


@st.composite
def _images(draw):
    dtype = np.dtype(draw(_dtypes))
    shape = (draw(st.integers(4, 12)), draw(st.integers(4, 12)))
    if dtype.kind == "f":
        info = np.finfo(dtype)
        elems = st.floats(float(info.min) / 4, float(info.max) / 4, allow_nan=False,
                          allow_infinity=False, width=dtype.itemsize * 8)
    else:
        info = np.iinfo(dtype)
        elems = st.integers(int(info.min), int(info.max))
    return draw(hnp.arrays(dtype, shape, elements=elems))


@settings(max_examples=150, deadline=None)
@given(_images())
def test_prepare_image_matches_a_float64_reference(img):
    data = prepare_image(img).data[..., 0]
    assert data.dtype == np.float32 and np.isfinite(data).all()
    if img.dtype == np.uint8:
        ref = img / 255.0
    else:
        ref = _reference(img)
    np.testing.assert_allclose(data, ref, atol=2e-6)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from([np.nan, np.inf, -np.inf]), st.integers(0, 15))
def test_non_finite_values_are_refused_by_name(bad, where):
    img = np.zeros((4, 4))
    img.flat[where] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        prepare_image(img)


def test_a_run_that_cannot_fit_is_refused_before_any_copy_with_the_number():
    huge = np.broadcast_to(np.uint8(7), (60_000, 60_000, 3))  # no memory behind it
    with pytest.raises(MemoryError, match=r"kmeans on a 60000x60000 image .* needs about"):
        segment(huge, "kmeans", n_clusters=8, window=15)
    with pytest.raises(MemoryError, match="kanezaki"):
        segment(huge, "kanezaki", preset="paper")


def test_a_run_that_cannot_fit_is_one_line_at_the_command_line(tmp_path, capsys, monkeypatch):
    import tifffile

    import napari_useg.core.resources as resources
    from napari_useg.cli import main

    src = tmp_path / "x.tif"
    tifffile.imwrite(src, np.zeros((64, 64), np.uint8))
    monkeypatch.setattr(resources, "available_bytes", lambda device=None: 1000)
    rc = main(["segment", str(src), "-o", str(tmp_path / "o.tif"), "-m", "kmeans", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "needs about" in err and "1000 B is free" in err
    assert "Traceback" not in err and not (tmp_path / "o.tif").exists()


def test_kmeans_reports_progress_every_iteration():
    img = np.random.default_rng(0).integers(0, 255, (24, 24, 3), np.uint8)
    snaps = list(iter_segment(img, "kmeans", n_clusters=6, window=3, n_init=2, max_iter=20))
    assert len(snaps) > 3
    assert [s.step for s in snaps] == sorted(s.step for s in snaps)
    assert snaps[-1].done and snaps[-1].step == snaps[-1].total == 40


@pytest.mark.parametrize("img", [np.full((24, 24), 7, np.uint16),
                                 np.tile(np.array([0, 255], np.uint8), (24, 12))],
                         ids=["constant", "two-values"])
def test_kmeans_on_fewer_distinct_values_than_clusters_is_quiet(img):
    """No library warning leaks out; the labels are the image's distinct windows."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = segment(img, "kmeans", n_clusters=5, window=1)
    assert labels.shape == img.shape
    assert len(np.unique(labels)) == len(np.unique(img))
