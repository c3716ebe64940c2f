"""How long: elapsed and remaining time of a run, and a rough estimate before it starts.

:func:`eta_text` turns the time elapsed and the fraction done into ``"0:12 elapsed,
about 0:40 left"`` (the remaining time from the measured rate so far).
:func:`estimate_seconds` guesses a run's duration before it starts, from the working
image size, the iteration budget and :data:`CPU_SECONDS_PER_PIXEL_STEP`, so the
segmentation widget can warn about a preset that will run long on the chosen device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CPU_SECONDS_PER_PIXEL_STEP", "LONG_RUN", "format_duration", "eta_text",
           "estimate_seconds", "estimate_text"]

#: CPU seconds per pixel and per iteration of the per-image learning methods, by method and
#: preset (one core; a run on several cores is faster). Measured with one thread
#: (``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``) on the project's 2-core x86-64
#: development machine (load average about 2): the median step time of 8 iterations on the
#: top-left 128x128 crop of the ``chelsea`` sample, divided by its 16384 pixels. A GPU is
#: not estimated (it is typically tens of times faster).
CPU_SECONDS_PER_PIXEL_STEP: dict[tuple[str, str], float] = {
    ("kanezaki", "paper"): 9.6e-6,
    ("kanezaki", "fast"): 1.9e-6,
    ("dfc", "paper"): 3.3e-5,
    ("dfc", "fast"): 6.1e-6,
    ("mmt", "paper"): 1.2e-4,
    ("mmt", "fast"): 6.7e-6,
}
#: Runs estimated longer than this many seconds are announced before they start.
LONG_RUN = 60.0


def format_duration(seconds: float) -> str:
    """``"0:07"``, ``"12:30"``, ``"1:02:03"``."""
    s = max(int(round(seconds)), 0)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def eta_text(elapsed: float, fraction: float) -> str:
    """Elapsed time and, once some work is done, the time left at the rate so far."""
    text = f"{format_duration(elapsed)} elapsed"
    if 0.0 < fraction < 1.0 and elapsed > 0.5:
        left = elapsed * (1.0 - fraction) / fraction
        text += f", about {format_duration(left)} left"
    return text


def estimate_seconds(method: str, preset: str | None, params: Mapping[str, Any],
                     shape: tuple[int, ...], *, device: str = "cpu",
                     n_slices: int = 1) -> float | None:
    """A rough duration of a run on the CPU, or ``None`` when there is no estimate.

    Parameters
    ----------
    method, preset : str
        The method and the preset the values come from (``"x (modified)"`` counts as x).
    params : mapping
        The parameter values (``max_iter`` is the iteration budget; ``max_side``, when
        set, the working resolution).
    shape : tuple of int
        ``(..., H, W)`` of one slice.
    device : str
        The device the run will use; only ``"cpu"`` is estimated.
    n_slices : int
        Slices segmented one after the other.
    """
    if device != "cpu" or preset is None:
        return None
    rate = CPU_SECONDS_PER_PIXEL_STEP.get((method, preset.split(" ")[0]))
    steps = params.get("max_iter")
    if rate is None or not steps:
        return None
    h, w = (int(n) for n in shape[-2:])
    side = int(params.get("max_side") or 0)
    if side > 0 and max(h, w) > side:
        f = side / max(h, w)
        h, w = max(int(h * f), 1), max(int(w * f), 1)
    return float(rate * h * w * int(steps) * max(int(n_slices), 1))


def estimate_text(seconds: float | None, device: str) -> str:
    """A warning for runs estimated longer than :data:`LONG_RUN` (else ``""``)."""
    if seconds is None or seconds < LONG_RUN:
        return ""
    return (f"this may take about {format_duration(seconds)} on the {device} (at most; "
            "it stops early when the labels settle): consider the 'fast' preset, fewer "
            "iterations, or a GPU")
