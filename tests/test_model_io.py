"""Saved models: round trip, channel checks, stored normalisation, resumable fit, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_useg import fit, iter_fit, load_model
from napari_useg.cli import main


def _imgs(n=2, shape=(32, 32, 3), dtype=np.uint8, seed=0, high=255):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, high, shape).astype(dtype) for _ in range(n)]


SMALL_IIC = dict(steps=2, width=0.125, input_size=16, batch_size=2, device="cpu")
SMALL_INMARS = dict(steps=2, channels=4, depth=2, input_size=16, batch_size=2, device="cpu",
                    superpixels=8)


@pytest.mark.parametrize("method,kw", [("iic", SMALL_IIC), ("inmars", SMALL_INMARS)])
def test_save_load_round_trip(tmp_path, method, kw):
    imgs = _imgs()
    model = fit(imgs, method, **kw)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m", device="cpu")
    assert type(again) is type(model) and again.params == model.params
    for out in model.outputs:
        assert np.array_equal(again.predict(imgs[1], output=out), model.predict(imgs[1],
                                                                                output=out))
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["method"] == method and cfg["channels"]["n_channels"] == 3
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)


def test_wrong_channel_count_is_a_clear_error():
    model = fit(_imgs(), "iic", **SMALL_IIC)
    with pytest.raises(ValueError, match="3 channel"):
        model.predict(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="no output"):
        model.predict(_imgs()[0], output="region")


def test_dataset_normalisation_is_stored_and_reused():
    imgs = _imgs(shape=(32, 32, 2), dtype=np.uint16, high=4000)
    model = fit(imgs, "iic", channel_axis=-1, normalisation="dataset", **SMALL_IIC)
    norm = model.normalisation
    assert norm["mode"] == "dataset" and norm["dtype"] == "uint16"
    assert 0 <= norm["lo"][0] < norm["hi"][0] <= 4000
    # a dimmer image is scaled with the training ranges, not stretched on its own
    dim = (imgs[0] // 4).astype(np.uint16)
    fn = model.normaliser(dim)
    assert fn(dim).max() < 0.3
    per = fit(imgs, "iic", channel_axis=-1, normalisation="per_image", **SMALL_IIC)
    assert per.normaliser(dim)(dim).max() == 1.0
    with pytest.warns(UserWarning, match="uint16"):
        model.predict(imgs[0].astype(np.float32), channel_axis=-1)


def test_per_image_normalisation_stretches_uint8_and_survives_save_load(tmp_path):
    # a dim and a bright exposure of the same scene (uint8, as fluorescence PNGs)
    scene = np.random.default_rng(3).random((32, 32))
    dim = (10 + 40 * scene).astype(np.uint8)
    bright = (60 + 190 * scene).astype(np.uint8)
    model = fit([dim, bright], "iic", normalisation="per_image", **SMALL_IIC)
    assert model.normalisation == {"mode": "per_image", "percentiles": [1.0, 99.8]}
    a = model.normaliser(dim[..., None])(dim[..., None])
    b = model.normaliser(bright[..., None])(bright[..., None])
    assert a.min() == 0.0 and a.max() == 1.0 and np.abs(a - b).max() < 0.05
    # training saw exactly what prediction sees
    from napari_useg.core.fitting import normalise_collection as _normalise

    assert np.array_equal(_normalise([dim[..., None]], "per_image")[0][0], a)
    # dataset normalisation leaves the dim image dim
    ds = fit([dim, bright], "iic", normalisation="dataset", **SMALL_IIC)
    assert ds.normaliser(dim[..., None])(dim[..., None]).max() < 0.25
    model.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["normalisation"] == {"mode": "per_image", "percentiles": [1.0, 99.8]}
    again = load_model(tmp_path / "m", device="cpu")
    assert again.normalisation == model.normalisation
    assert np.array_equal(again.predict(dim), model.predict(dim))
    # a model saved before the percentiles were recorded keeps the old rule (uint8: 0-255)
    cfg["normalisation"] = {"mode": "per_image"}
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    old = load_model(tmp_path / "m", device="cpu")
    assert old.normaliser(dim[..., None])(dim[..., None]).max() == pytest.approx(dim.max() / 255)
    assert old.predict(dim).shape == dim.shape


def test_channel_ranges_with_percentiles_for_any_dtype():
    from napari_useg.core.image import apply_ranges, channel_ranges

    x = np.linspace(0.2, 0.4, 200, dtype=np.float32).reshape(10, 20, 1)  # floats in [0, 1]
    assert channel_ranges([x])[1][0] == 1.0  # default rule: used as they are
    lo, hi = channel_ranges([x], percentiles=(0, 100))
    assert lo[0] == pytest.approx(0.2) and hi[0] == pytest.approx(0.4)
    assert apply_ranges(x, lo, hi).max() == pytest.approx(1.0)
    const = np.full((8, 8, 1), 7, np.uint8)
    assert not apply_ranges(const, *channel_ranges([const], percentiles=(1, 99.8))).any()
    for bad in ((50, 50), (-1, 90), (1, 101), (1,)):
        with pytest.raises(ValueError, match="percentiles"):
            channel_ranges([x], percentiles=bad)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")
    model = fit(_imgs(), "iic", **SMALL_IIC)
    model.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["format"] = 99
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format"):
        load_model(tmp_path / "m")


def test_collection_errors():
    with pytest.raises(ValueError, match="channels"):
        fit([np.zeros((16, 16), np.uint8), np.zeros((16, 16, 3), np.uint8)], "iic")
    with pytest.raises(ValueError, match="data types"):  # one range cannot serve both
        fit([np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint16)], "iic",
            normalisation="dataset")
    with pytest.raises(ValueError, match="stack"):
        fit(np.zeros((16, 16), np.uint8), "iic")
    with pytest.raises(FileNotFoundError):
        fit("/nonexistent/folder", "iic")


def test_interrupted_fit_resumes_to_the_same_model(tmp_path):
    imgs = _imgs(n=3)
    kw = dict(SMALL_IIC, steps=6)
    ref = fit(imgs, "iic", seed=1, **kw)
    ck = tmp_path / "ck.pt"
    it = iter_fit(imgs, "iic", seed=1, checkpoint=ck, checkpoint_every=2, **kw)
    for snap in it:
        if snap.step == 3:
            break
    it.close()
    resumed = fit(imgs, "iic", seed=1, checkpoint=ck, checkpoint_every=2, **kw)
    for a, b in zip(ref.net.state_dict().values(), resumed.net.state_dict().values(),
                    strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="another run"):
        fit(imgs, "iic", seed=2, checkpoint=ck, **kw)


def test_cli_fit_and_predict(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(_imgs(n=2)):
        tifffile.imwrite(folder / f"im{i}.tif", im)
    rc = main(["fit", str(folder), "--method", "iic", "--out", str(tmp_path / "model"),
               "--steps", "2", "--width", "0.125", "--input-size", "16", "--batch-size", "2",
               "--device", "cpu", "-q"])
    assert rc == 0 and (tmp_path / "model" / "weights.pt").exists()
    out = tmp_path / "labels.tif"
    rc = main(["predict", "--model", str(tmp_path / "model"), str(folder / "im0.tif"),
               "-o", str(out), "--device", "cpu", "--output", "over"])
    assert rc == 0
    labels = tifffile.imread(out)
    assert labels.shape == (32, 32) and labels.min() >= 1
    rc = main(["predict", "--model", str(tmp_path / "model"), str(folder / "im0.tif"),
               "-o", str(out)])
    assert rc == 2 and "exists" in capsys.readouterr().err
