"""How the viewer reads a layer (channel axis guess) and how long a run takes: no Qt."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_useg.viewer.sources import describe_reading, guess_channel_axis
from napari_useg.viewer.timing import (
    CPU_SECONDS_PER_PIXEL_STEP,
    LONG_RUN,
    estimate_seconds,
    estimate_text,
    eta_text,
    format_duration,
)


@pytest.mark.parametrize("shape, kwargs, expected", [
    ((3, 64, 64), {}, 0),  # a small leading axis before two large ones: channels
    ((4, 64, 64), {}, 0),
    ((5, 64, 64), {}, None),  # more than 4: slices
    ((3, 8, 8), {}, None),  # tiny image: no guess
    ((2, 3, 64, 64), {}, None),  # 4-D: ambiguous, no guess
    ((64, 64), {}, None),
    ((64, 64, 3), {"rgb": True}, None),  # RGB: the channels are the last axis already
    ((20, 64, 2), {"metadata": {"axes": "YXC"}}, 2),
    ((2, 20, 64, 64), {"metadata": {"axes": ["t", "c", "y", "x"]}}, 1),
    ((3, 64, 64), {"metadata": {"axes": "ZYX"}}, None),  # named axes, no channel among them
    ((3, 64, 64), {"axis_labels": ("c", "y", "x")}, 0),
])
def test_guess_channel_axis(shape, kwargs, expected):
    viewer = ViewerModel()
    layer = viewer.add_image(np.zeros(shape, np.uint8), **kwargs)
    assert guess_channel_axis(layer) == expected


def test_describe_reading():
    viewer = ViewerModel()
    cyx = viewer.add_image(np.zeros((3, 48, 40)), name="cyx")
    assert describe_reading(cyx, 0) == "one 48x40 image, 3 channels"
    assert describe_reading(cyx, None) == ("3 slices (3) of 48x40, 1 channel, one at a time, "
                                           "ids aligned")
    assert describe_reading(cyx, None, 3) == "one 3x48x40 volume, 1 channel"
    tzyx = viewer.add_image(np.zeros((2, 3, 8, 9)), name="tzyx")
    assert describe_reading(tzyx, None, 3) == ("2 volumes (2) of 3x8x9, 1 channel, one at a "
                                               "time, ids aligned")
    rgb = viewer.add_image(np.zeros((8, 9, 3), np.uint8), rgb=True, name="rgb")
    assert describe_reading(rgb) == "one 8x9 image, RGB"
    assert describe_reading(rgb, 0).startswith("cannot read: ")
    assert "volume mode needs a (Z, Y, X) layer" in describe_reading(rgb, None, 3)
    a = viewer.add_image(np.zeros((8, 9)), name="a")
    b = viewer.add_image(np.zeros((8, 9)), name="b")
    assert describe_reading([a, b]) == "one 8x9 image, 2 channels"


def test_eta_and_durations():
    assert format_duration(7) == "0:07"
    assert format_duration(750) == "12:30"
    assert format_duration(3723) == "1:02:03"
    assert eta_text(10.0, 0.25) == "0:10 elapsed, about 0:30 left"
    assert eta_text(0.1, 0.5) == "0:00 elapsed"  # too early to say
    assert eta_text(12.0, 1.0) == "0:12 elapsed"


def test_estimate_from_size_iterations_and_rate():
    rate = CPU_SECONDS_PER_PIXEL_STEP[("kanezaki", "paper")]
    s = estimate_seconds("kanezaki", "paper", {"max_iter": 100}, (200, 300), device="cpu")
    assert s == pytest.approx(rate * 200 * 300 * 100)
    # the working resolution (max_side) bounds the pixels; slices add up
    s2 = estimate_seconds("kanezaki", "paper (modified)", {"max_iter": 100, "max_side": 150},
                          (200, 300), device="cpu", n_slices=2)
    assert s2 == pytest.approx(rate * 100 * 150 * 100 * 2)
    assert estimate_seconds("kanezaki", "paper", {"max_iter": 100}, (200, 300),
                            device="cuda") is None
    assert estimate_seconds("kmeans", None, {"max_iter": 100}, (200, 300)) is None
    assert estimate_text(LONG_RUN - 1, "cpu") == ""
    assert "about 2:00 on the cpu" in estimate_text(120, "cpu")
