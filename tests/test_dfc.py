"""Differentiable feature clustering (Kim 2020): losses, accuracy, scribbles, reference mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_useg import fit, get_method, iter_segment, segment, segment_collection
from napari_useg.methods.dfc import prepare_scribbles, scribbles_to_working
from napari_useg.metrics import hungarian_accuracy
from napari_useg.nn.losses import spatial_continuity_loss, total_variation_loss
from synthetic import three_regions


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny images: one torch thread is faster, and immune to a busy machine (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# 16 channels, continuity weight 3 and up to 60 iterations: the three-region image
# reaches min_labels = 3 within 15 iterations (measured 0.985-0.998 for seeds 0-2);
# with mu = 1 such a tiny image keeps extra clusters along its borders.
SYNTH = dict(n_features=16, n_clusters=16, mu=3.0, max_iter=60, patience=0)


def test_continuity_loss_matches_the_authors_formula():
    torch.manual_seed(0)
    r = torch.randn(1, 5, 7, 9)
    # demo.py: L1Loss (mean) of the vertical and horizontal differences against zeros
    hp_y = r[:, :, 1:, :] - r[:, :, :-1, :]
    hp_z = r[:, :, :, 1:] - r[:, :, :, :-1]
    expected = (torch.nn.functional.l1_loss(hp_y, torch.zeros_like(hp_y))
                + torch.nn.functional.l1_loss(hp_z, torch.zeros_like(hp_z)))
    assert torch.allclose(spatial_continuity_loss(r), expected)
    # exact per-direction means: (H-1)*W*q and H*(W-1)*q elements
    manual = hp_y.abs().sum() / (6 * 9 * 5) + hp_z.abs().sum() / (7 * 8 * 5)
    assert torch.allclose(spatial_continuity_loss(r), manual)


def test_total_variation_matches_the_paper_formula():
    torch.manual_seed(1)
    y = torch.randn(1, 3, 4, 5)
    h, w = 4, 5
    total = 0.0
    for j in range(h - 1):  # the paper's double sum over the (H-1) x (W-1) grid
        for i in range(w - 1):
            total += (y[0, :, j, i + 1] - y[0, :, j, i]).abs().sum()
            total += (y[0, :, j + 1, i] - y[0, :, j, i]).abs().sum()
    assert torch.allclose(total_variation_loss(y, "sum"), total)
    assert torch.allclose(total_variation_loss(y), total / (3 * 4 * 3))
    with pytest.raises(ValueError, match="reduction"):
        total_variation_loss(y, "max")


def test_separates_three_colour_regions():
    img, gt = three_regions()
    labels = segment(img, "dfc", seed=0, device="cpu", **SYNTH)
    assert hungarian_accuracy(labels, gt) >= 0.95


def test_same_seed_same_labels():
    img, _ = three_regions()
    a = segment(img, "dfc", seed=3, device="cpu", **SYNTH)
    b = segment(img, "dfc", seed=3, device="cpu", **SYNTH)
    assert np.array_equal(a, b)


def test_working_resolution_returns_full_resolution_labels():
    img, gt = three_regions((96, 128))
    labels = segment(img, "dfc", seed=0, device="cpu", max_side=48, **SYNTH)
    assert labels.shape == (96, 128)
    assert hungarian_accuracy(labels, gt) >= 0.9


def test_stops_at_min_labels_and_reports_why():
    img, _ = three_regions()
    snaps = list(iter_segment(img, "dfc", seed=0, device="cpu", **SYNTH))
    assert snaps[-1].done and snaps[-1].step < SYNTH["max_iter"]
    assert "min_labels" in snaps[-1].message
    assert snaps[-1].n_labels <= 3


def test_presets_and_inputs_are_declared():
    m = get_method("dfc")
    assert m.default_preset == "fast"
    assert m.defaults("paper")["n_clusters"] == 100 and m.defaults("paper")["n_conv"] == 2
    assert m.defaults("paper")["mu"] == 1.0
    assert [i.name for i in m.inputs] == ["scribbles"]
    assert m.inputs[0].layer_type == "labels"


# --- scribbles ---------------------------------------------------------------------------------


def _two_similar_halves(h=40, w=40, diff=2.0, noise=4.0, seed=0):
    """Two touching halves whose colours differ by less than the pixel noise."""
    gt = np.ones((h, w), int)
    gt[:, w // 2:] = 2
    colours = np.array([[0, 0, 0], [120, 120, 120], [120 + diff, 120, 120 - diff]], float)
    rng = np.random.default_rng(seed)
    img = np.clip(colours[gt] + rng.normal(0, noise, (h, w, 3)), 0, 255).astype(np.uint8)
    scr = np.zeros((h, w), np.int32)  # two strokes per half
    scr[h // 4: 3 * h // 4, w // 6] = 1
    scr[h // 2, 3: w // 2 - 3] = 1
    scr[h // 4: 3 * h // 4, w - w // 6] = 2
    scr[h // 2, w // 2 + 3: -3] = 2
    return img, gt, scr


SCRIBBLE_RUN = dict(n_features=32, n_clusters=32, max_iter=80, patience=0, device="cpu")


# Measured on this image (interior accuracy, unsupervised -> with strokes), seeds 0-5:
# 0.80->0.92, 0.90->0.92, 0.50->0.93, 0.80->0.91, 0.50->0.50, 0.50->0.92. The test uses
# the seeds where the unsupervised run merges the halves (0.50) and the strokes split
# them; seed 4 is a known failure of the method (the scribble term, weight 0.5, loses
# to the similarity term once every pixel sits in one cluster).
@pytest.mark.parametrize("seed", [2, 5])
def test_a_few_strokes_separate_regions_the_unsupervised_run_merges(seed):
    img, gt, scr = _two_similar_halves()
    inner = (slice(2, -2), slice(2, -2))  # borders get their own clusters (zero padding)
    plain = segment(img, "dfc", seed=seed, **SCRIBBLE_RUN)
    assert hungarian_accuracy(plain[inner], gt[inner]) <= 0.55  # merged
    guided = segment(img, "dfc", seed=seed, scribbles=scr, **SCRIBBLE_RUN)
    assert hungarian_accuracy(guided[inner], gt[inner]) >= 0.9
    # the painted classes come back with the user's ids, on their own side
    assert np.bincount(guided[inner][gt[inner] == 1]).argmax() == 1
    assert np.bincount(guided[inner][gt[inner] == 2]).argmax() == 2


def test_scribble_ids_map_to_channels_in_order():
    scr = np.zeros((6, 6), np.int64)
    scr[0, 0], scr[1, 1], scr[2, 2] = 7, 3, 7
    s = prepare_scribbles(scr, (6, 6), n_clusters=4)
    assert s.ids.tolist() == [3, 7] and s.n_classes == 2
    assert s.channels[0, 0] == 1 and s.channels[1, 1] == 0 and s.channels[5, 5] == -1


def test_scribbles_to_working_keeps_one_pixel_strokes():
    ch = np.full((40, 60), -1, np.int64)
    ch[:, 7] = 0  # one-pixel-wide vertical stroke
    ch[33, :] = 1  # one-pixel-wide horizontal stroke
    small = scribbles_to_working(ch, (10, 15))
    assert (small[:, 1] == 0).sum() >= 8  # the vertical stroke survives in column 7 // 4
    assert (small[8, :] == 1).sum() >= 13  # the horizontal one in row 33 // 4
    assert set(np.unique(small)) == {-1, 0, 1}


def test_min_labels_becomes_the_number_of_scribble_classes():
    img, gt, scr = _two_similar_halves(32, 32, diff=60, noise=2)  # easy: reaches 2 labels
    snaps = list(iter_segment(img, "dfc", seed=0, scribbles=scr, n_features=8, n_clusters=8,
                              mu=5.0, min_labels=5, max_iter=100, patience=0, device="cpu"))
    assert "min_labels 2" in snaps[-1].message  # not the 5 asked for: 2 scribble classes
    assert snaps[-1].info["scribble_ids"] == [1, 2]
    assert hungarian_accuracy(snaps[-1].labels, gt) >= 0.95
    # the fast preset's hierarchy cut does not replace the scribbled classes' ids
    assert "scribbled classes (no hierarchy cut" in snaps[-1].message
    assert set(np.unique(snaps[-1].labels)) <= {1, 2}
    assert np.bincount(snaps[-1].labels[gt == 2]).argmax() == 2


def test_bad_scribbles_raise_before_any_computation():
    img, _, scr = _two_similar_halves(h=16, w=16)
    with pytest.raises(ValueError, match="spatial shape"):
        iter_segment(img, "dfc", scribbles=scr[:8])
    with pytest.raises(TypeError, match="integer labels"):
        iter_segment(img, "dfc", scribbles=scr.astype(float))
    many = np.arange(16 * 16).reshape(16, 16) % 40 + 1  # 40 classes
    with pytest.raises(ValueError, match="40 classes.*n_clusters"):
        iter_segment(img, "dfc", scribbles=many, n_clusters=32)
    with pytest.raises(ValueError, match="no painted pixel"):
        iter_segment(img, "dfc", scribbles=np.zeros((16, 16), np.int32))
    with pytest.raises(ValueError, match="negative"):
        iter_segment(img, "dfc", scribbles=-scr)


# --- reference-image mode ----------------------------------------------------------------------

REF = dict(n_features=16, n_clusters=16, max_iter=40, work_size=32, device="cpu")


def _pair():
    """Two images made of the same two colours in different layouts (and sizes)."""
    rng = np.random.default_rng(0)
    red, blue = np.array([200, 30, 30]), np.array([30, 30, 200])
    a_gt = np.zeros((40, 48), int)
    a_gt[:, 24:] = 1  # left red, right blue
    b_gt = np.zeros((56, 36), int)
    b_gt[:28] = 1  # top blue, bottom red
    imgs = []
    for gt in (a_gt, b_gt):
        im = np.where(gt[..., None] == 0, red, blue) + rng.normal(0, 8, gt.shape + (3,))
        imgs.append(np.clip(im, 0, 255).astype(np.uint8))
    return imgs, [a_gt, b_gt]


def test_reference_mode_labels_mean_the_same_in_every_image():
    imgs, gts = _pair()
    out = segment_collection(imgs, seed=0, **REF)
    assert [o.shape for o in out] == [g.shape for g in gts]
    red = [np.bincount(o[g == 0]).argmax() for o, g in zip(out, gts, strict=True)]
    blue = [np.bincount(o[g == 1]).argmax() for o, g in zip(out, gts, strict=True)]
    assert red[0] == red[1] and blue[0] == blue[1] and red[0] != blue[0]
    for o, g in zip(out, gts, strict=True):
        assert hungarian_accuracy(o, g) >= 0.9


def test_reference_mode_border_context_is_mirrored():
    # segment_collection is fit("dfc_ref") + Model.predict, whose tiles read the context
    # beyond the image border by mirror reflection (as for every saved model), where the
    # former reference mode let the convolutions zero-pad the whole image. The same seed
    # gives the same network and the same labels except within n_conv pixels of the border
    # (there the numbering 1..n may also shift when a channel appears only in that strip).
    imgs, _ = _pair()
    model = fit(imgs, "dfc_ref", seed=0, **REF)
    m = model.params.n_conv
    p = model.predict(imgs[0])

    def net_labels(im):
        x = torch.from_numpy(im.transpose(2, 0, 1).astype(np.float32) / 255)[None]
        with torch.no_grad():
            return model.net(x)[0].argmax(dim=0).numpy() + 1

    mirrored = np.pad(imgs[0], ((m, m), (m, m), (0, 0)), mode="reflect")
    assert np.array_equal(net_labels(mirrored)[m:-m, m:-m], p)
    assert np.array_equal(net_labels(imgs[0])[m:-m, m:-m], p[m:-m, m:-m])


def test_reference_model_predicts_new_images_and_is_deterministic():
    imgs, gts = _pair()
    m1 = fit(imgs, "dfc_ref", seed=1, **REF)
    m2 = fit(np.stack([imgs[0], imgs[0]]), "dfc_ref", seed=1, **{**REF, "max_iter": 2})  # stack
    again = fit(imgs, "dfc_ref", seed=1, **REF)
    p = m1.predict(imgs[1])
    assert p.shape == gts[1].shape and p.min() >= 1
    assert np.array_equal(p, again.predict(imgs[1]))
    assert np.array_equal(m1.predict(imgs[1], tile_size=16), p)  # tiles give the same labels
    assert m2.predict(imgs[0]).shape == gts[0].shape


def test_reference_mode_bad_input():
    imgs, _ = _pair()
    with pytest.raises(ValueError, match="no images"):
        segment_collection([], **REF)
    with pytest.raises(ValueError, match="channels"):
        segment_collection([imgs[0], imgs[1][..., 0]], **REF)
    with pytest.raises(ValueError, match="preset"):
        segment_collection(imgs, preset="nope", **REF)
    with pytest.raises(TypeError, match="unknown parameter"):
        segment_collection(imgs, scribbles=None, **REF)
    model = fit(imgs, "dfc_ref", **{**REF, "max_iter": 1})
    with pytest.raises(ValueError, match="3 channel"):
        model.predict(imgs[0][..., 0])
