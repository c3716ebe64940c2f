"""A model says what it was trained on, and warns before labelling unlike images."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from napari_useg import fit, load_model

SMALL_IIC = dict(steps=2, width=0.125, input_size=16, batch_size=2, device="cpu")


def _imgs(n=3, shape=(32, 40, 3), high=200, dtype=np.uint8):
    return [np.random.default_rng(i).integers(10, high, shape).astype(dtype) for i in range(n)]


@pytest.fixture(scope="module")
def model():
    return fit(_imgs() + [_imgs(1, (24, 48, 3))[0]], "iic", seed=3, normalisation="dataset",
               **SMALL_IIC)


def test_describe_lists_the_training(model, tmp_path):
    text = model.describe()
    for part in ("iic model", "4 images", "24-32 x 40-48", "3 channel(s) (RGB)", "uint8",
                 "normalisation: dataset", "2 steps", "seed 3", "final loss: over",
                 "napari-useg version: 0."):
        assert part in text, (part, text)
    model.save(tmp_path / "m")
    assert load_model(tmp_path / "m", "cpu").describe() == text


def test_describe_of_a_per_image_model():
    m = fit(_imgs(2), "iic", normalisation="per_image", **SMALL_IIC)
    assert "per_image: each image stretched between its own 1.0th and 99.8th" in m.describe()


def test_similar_image_gives_no_warning(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(_imgs(1, (30, 30, 3))[0])


def test_value_range_far_outside_warns_with_the_numbers(model):
    img = (_imgs(1)[0].astype(np.uint16) * 250)
    with pytest.warns(UserWarning, match=r"channel 0: values .* far outside the training "
                                         r"range 1\d\.?\d*\.\.1\d\d"):
        model.predict(img)


def test_tiny_value_range_warns_for_dataset_normalisation(model):
    img = _imgs(1, high=200)[0].astype(np.float32) / 255.0  # 0-1 floats, model saw 10-200
    with pytest.warns(UserWarning, match="cover under 5%"):
        model.predict(img)


def test_warning_comes_before_the_work(model, monkeypatch):
    calls = []
    monkeypatch.setattr(type(model), "label_window", lambda self, w, o: calls.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning):
            model.predict(_imgs(1)[0].astype(np.uint16) * 250)
    assert calls == []


def test_other_channel_count_is_refused_with_the_numbers(model):
    with pytest.raises(ValueError, match=r"3 channel\(s\)\) but the image has 4 channel"):
        model.predict(np.zeros((32, 32, 4), np.uint8) + np.arange(4, dtype=np.uint8),
                      channel_axis=-1)


def test_public_output_and_normaliser(model):
    assert model.check_output(None) == "main"
    with pytest.raises(ValueError, match="no output"):
        model.check_output("region")
    img = _imgs(1)[0]
    assert model.normaliser(img)(img).dtype == np.float32


def test_per_image_dark_inverts_light_backgrounds_at_training_and_prediction():
    from napari_useg.core.fitting import normalise_collection

    rng = np.random.default_rng(0)
    dark = rng.integers(0, 30, (32, 32)).astype(np.uint8)
    dark[8:16, 8:16] = 220  # bright nucleus on a dark background (fluorescence)
    light = rng.integers(200, 230, (32, 32)).astype(np.uint8)
    light[8:16, 8:16] = 40  # dark nucleus on a light background (brightfield)
    data, norm = normalise_collection([dark[..., None], light[..., None]], "per_image_dark")
    assert norm == {"mode": "per_image", "percentiles": [1.0, 99.8], "dark_background": True}
    for d in data:  # both: nucleus bright, background dark
        assert d[10:14, 10:14].mean() > 0.8 and d[20:, 20:].mean() < 0.3
    m = fit([dark, light], "iic", normalisation="per_image_dark", **SMALL_IIC)
    assert m.normalisation == norm and "dark_background" in json.dumps(m.config())
    for raw, d in zip((dark, light), data, strict=True):
        assert np.allclose(m.normaliser(raw[..., None])(raw[..., None]), d)
