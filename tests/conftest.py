"""Shared fixtures: tiny stand-in methods registered for one test (registry restored after)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from napari_useg.core import registry
from napari_useg.core.params import param
from napari_useg.core.progress import Progress


@dataclass(frozen=True)
class _SlowParams:
    steps: int = param(2000, "number of steps", low=1, high=100000)
    delay: float = param(0.005, "seconds per step", low=0.0, high=10.0)


#: Steps ``slowtest`` has computed (appended from the worker thread).
SLOW_STEPS: list[int] = []


def _slow_run(image, p, ctx):
    """Two stripes; one cheap step after another (a stand-in for a long training loop)."""
    h, w = image.shape
    labels = np.ones((h, w), np.int32)
    labels[:, w // 2:] = 2
    SLOW_STEPS.clear()
    for step in range(1, p.steps + 1):
        time.sleep(p.delay)
        SLOW_STEPS.append(step)
        yield Progress(step=step, total=p.steps, loss=1.0 / step, n_labels=2,
                       labels=labels.copy() if ctx.wants_preview(step, p.steps) else None,
                       done=step == p.steps)


@dataclass(frozen=True)
class _EchoParams:
    offset: int = param(1, "added to the scribbles", low=0, high=10)


def _echo_run(image, p, ctx):
    """Returns the scribbles input (plus ``offset``): shows which slice of it a method got."""
    scribbles = ctx.inputs.get("scribbles")
    labels = np.zeros(image.shape, np.int64) if scribbles is None else scribbles.astype(np.int64)
    yield Progress(step=1, total=1, labels=labels + p.offset, done=True)


@pytest.fixture
def fake_methods(monkeypatch):
    """Register ``slowtest`` (many cheap steps) and ``echotest`` (has a ``scribbles`` input)."""
    registry.all_methods()  # discover the real ones first
    slow = registry.Method(name="slowtest", title="slow test method", summary="test",
                           reference="none", params=_SlowParams, run=_slow_run)
    echo = registry.Method(name="echotest", title="echo test method", summary="test",
                           reference="none", params=_EchoParams, run=_echo_run,
                           inputs=(registry.InputInfo("scribbles", "user scribbles"),))
    monkeypatch.setitem(registry._REGISTRY, "slowtest", slow)
    monkeypatch.setitem(registry._REGISTRY, "echotest", echo)
    return {"slowtest": slow, "echotest": echo, "slow_steps": SLOW_STEPS}
