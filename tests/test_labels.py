"""Sequential relabelling: the same result whichever way it is computed."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_useg.core.labels import sequential


def _by_unique(labels: np.ndarray, start: int) -> np.ndarray:
    _, inverse = np.unique(labels.ravel(), return_inverse=True)
    return (inverse.reshape(labels.shape) + start).astype(np.int32)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.one_of(
        arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6))),
        arrays(np.int64, st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)),
               elements=st.integers(-5, 40)),
        arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
               elements=st.integers(0, 2**40)),
        arrays(np.uint16, st.integers(1, 30)),
    ),
    start=st.integers(0, 2),
)
def test_sequential_matches_unique_order(labels, start):
    """Compact ids (lookup table), negative or huge ids (sort): the same int32 relabelling."""
    out = sequential(labels, start=start)
    assert out.dtype == np.int32 and out.shape == labels.shape
    np.testing.assert_array_equal(out, _by_unique(labels, start))


def test_sequential_keeps_order_of_ids():
    labels = np.array([[7, 7, 0], [3, 9, 3]], dtype=np.uint8)
    np.testing.assert_array_equal(sequential(labels), [[3, 3, 1], [2, 4, 2]])
