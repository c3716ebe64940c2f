"""Label alignment: align_labels (public utility) and the channel permutation of MMT."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from napari_useg import align_labels
from napari_useg.core.align import align_to, channel_permutation, matching, overlap_permutation
from napari_useg.methods.mmt import aligned_targets


def _blobs(shape=(30, 40), n=6, seed=0) -> np.ndarray:
    """A label map of ``n`` ids (0..n-1) with unequal region sizes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    centres = rng.uniform(0, 1, (n, 2)) * shape
    d = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    return d.argmin(axis=0)


@pytest.mark.parametrize("seed", range(5))
def test_align_labels_recovers_a_permutation_exactly(seed):
    ref = _blobs(seed=seed) + 1
    rng = np.random.default_rng(100 + seed)
    perm = rng.permutation(np.arange(50, 56))  # new, arbitrary ids
    relabelled = perm[ref - 1]
    assert np.array_equal(align_labels(ref, relabelled), ref)
    assert np.array_equal(align_labels(ref, relabelled, keep_unmatched=True), ref)


def test_align_labels_keeps_partition_and_gives_fresh_ids_to_extra_clusters():
    ref = np.array([[1, 1, 2, 2, 2, 2]])
    lab = np.array([[7, 7, 3, 3, 9, 9]])  # one more cluster than the reference
    out = align_labels(ref, lab)
    assert out[0, 0] == 1 and out[0, 2] == 2
    assert out[0, 4] not in (1, 2) and out[0, 4] == out[0, 5]
    # same partition: a pixel pair shares an id in `out` iff it does in `lab`
    assert np.array_equal(out[:, :, None] == out[:, None, :], lab[:, :, None] == lab[:, None, :])


def test_matching_is_maximum_overlap():
    ref = np.array([0, 0, 0, 1, 1, 2])
    lab = np.array([5, 5, 6, 6, 6, 7])
    m = matching(ref, lab)
    # brute force over all assignments of {5, 6, 7} to {0, 1, 2}
    table = {(a, b): int(np.sum((lab == a) & (ref == b))) for a in (5, 6, 7) for b in (0, 1, 2)}
    best = max(sum(table[a, b] for a, b in zip((5, 6, 7), p, strict=True))
               for p in itertools.permutations((0, 1, 2)))
    assert sum(table[a, b] for a, b in m.items()) == best


@pytest.mark.parametrize("seed", range(5))
def test_channel_permutation_recovers_a_permutation_exactly(seed):
    q = 12
    ref = _blobs(n=7, seed=seed)  # uses 7 of the 12 channels
    perm = np.random.default_rng(seed).permutation(q)
    lab = perm[ref]
    lut = channel_permutation(ref, lab, q)
    assert np.array_equal(lut[lab], ref)
    assert sorted(lut.tolist()) == list(range(q))  # a permutation of all channels


def test_overlap_permutation_unmatched_ids_keep_their_ids_or_take_a_free_one():
    # id 0 -> 3 (matched); ids 1 and 2 never appear (keep their ids); id 3 is unmatched
    # and its own id is taken by 0, so it gets the smallest free id (0)
    ov = np.zeros((4, 4), int)
    ov[0, 3] = 10
    lut = overlap_permutation(ov)
    assert lut.tolist() == [3, 1, 2, 0]
    # more clusters than reference clusters: the extra one keeps its id
    ov = np.zeros((4, 4), int)
    ov[0, 1], ov[1, 0], ov[2, 0] = 9, 8, 3  # 2 loses the competition for reference id 0
    assert overlap_permutation(ov).tolist() == [1, 0, 2, 3]


def test_overlap_permutation_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        overlap_permutation(np.zeros((2, 3)))


def test_channel_permutation_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="0..3"):
        channel_permutation(np.array([0, 1]), np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="shapes differ"):
        channel_permutation(np.array([0, 1]), np.array([0, 1, 2]), 4)


def test_torch_alignment_matches_numpy():
    q = 10
    ref = _blobs(n=6, seed=3).ravel()
    lab = np.random.default_rng(1).permutation(q)[ref]
    lab[::7] = 9  # some noise so that the matching is not trivial
    got = aligned_targets(torch.from_numpy(lab), torch.from_numpy(ref), q).numpy()
    assert np.array_equal(got, channel_permutation(ref, lab, q)[lab])


def test_align_to_keeps_the_background_of_objects_at_zero():
    ref = np.array([[0, 1, 1, 0, 2, 2, 0, 0]])
    lab = np.array([[0, 4, 4, 0, 0, 9, 9, 3]])  # 4 is object 1; 9 overlaps 2; 3 is new
    out = align_to(ref, lab)
    np.testing.assert_array_equal(out == 0, lab == 0)
    assert out[0, 1] == 1 and out[0, 5] == 2
    assert out[0, 7] not in (0, 1, 2) and out.dtype == np.int32
    # a map without background is aligned as a whole, 0 in the reference never reused
    full = align_to(ref, np.array([[5, 6, 6, 5, 7, 7, 5, 5]]))
    assert full.min() > 0 and full[0, 1] == 1 and full[0, 4] == 2
