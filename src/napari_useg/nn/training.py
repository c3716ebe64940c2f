"""Training helpers of the dataset-level methods: random crops, resumable checkpoints."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_useg.core.atomic import atomic_write
from napari_useg.core.params import param
from napari_useg.core.refinement import RefineParams

__all__ = ["CropSampler", "CROP_PLACEMENTS", "Checkpoint", "crop_placement_param",
           "fingerprint", "renumber_crop",
           "run_params", "resume", "save_state", "rng_state", "set_rng_state",
           "structure_weights"]


def renumber_crop(sp: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """A crop's superpixel ids renumbered ``offset .. offset + n - 1`` (``-1`` kept); and ``n``."""
    valid = sp >= 0
    uniq, inv = np.unique(sp[valid], return_inverse=True)
    out = np.full(sp.shape, -1, dtype=np.int64)
    out[valid] = inv + offset
    return out, len(uniq)


#: How :class:`CropSampler` places crops in an image.
CROP_PLACEMENTS = ("uniform", "structure")


def crop_placement_param() -> Any:
    """The ``crop_placement`` parameter of a method trained on crops (declared once here)."""
    return param("uniform", "where training crops fall in an image: 'uniform' (the paper) or "
                            "'structure' (more often where it differs from its median: objects "
                            "rather than plain background; not in the paper)",
                 choices=CROP_PLACEMENTS)
#: Grid step (pixels) of the crop positions weighted by ``placement="structure"``.
STRUCTURE_GRID = 8


def structure_weights(image: np.ndarray, size: int, step: int = STRUCTURE_GRID) -> np.ndarray:
    """Weights of the crop positions of ``image`` on a grid of ``step`` pixels.

    The weight of the ``size`` x ``size`` crop whose top-left corner is ``(y, x)`` is the
    mean of ``|g - median(g)|`` over it, ``g`` the image's channel mean: crops holding
    what differs from the image's background weigh more (nuclei on a dark or light
    background, fields and roads in a tile), crops of plain background weigh little.

    Returns
    -------
    numpy.ndarray
        ``float64`` ``(ceil((H - size + 1) / step), ceil((W - size + 1) / step))``
        weights, all positive, summing to 1.
    """
    g = image.mean(axis=-1, dtype=np.float32)
    d = np.abs(g - np.median(g))
    # mean over the crop starting at each pixel: a box filter anchored at its corner
    c = ndi.uniform_filter(d, size=size, mode="constant", origin=-(size // 2))
    c = c[: g.shape[0] - size + 1: step, : g.shape[1] - size + 1: step].astype(np.float64)
    c = np.clip(c, 0.0, None) + 1e-6 * (float(c.max(initial=0.0)) + 1e-12)
    return c / c.sum()


class CropSampler:
    """Random square crops from a collection of ``(H, W, C)`` float images.

    Each crop picks an image with probability proportional to its area (every
    pixel is equally likely to be seen) and a position in it: uniform, or with
    ``placement="structure"`` a cell of an 8-pixel grid of positions drawn by
    :func:`structure_weights` (then a uniform offset inside the cell), so that crops
    hold the image's objects more often than its plain background. Images
    smaller than the crop are mirror-padded once (their superpixel maps get
    ``-1``, i.e. ignored). With ``superpixels`` given, each crop's superpixel
    ids are renumbered ``0..n-1`` and offset so they are unique in the batch.

    Parameters
    ----------
    images : list of numpy.ndarray
        ``float32`` ``(H, W, C)`` images.
    size : int
        Crop side.
    superpixels : list of numpy.ndarray, optional
        Integer id maps ``(H, W)`` matching ``images``.
    placement : {"uniform", "structure"}
        Where crops are placed in an image.
    """

    def __init__(self, images: list[np.ndarray], size: int,
                 superpixels: list[np.ndarray] | None = None, *,
                 placement: str = "uniform") -> None:
        if placement not in CROP_PLACEMENTS:
            raise ValueError(f"placement must be one of {CROP_PLACEMENTS}, got {placement!r}")
        self.size = int(size)
        self.placement = placement
        self.images: list[np.ndarray] = []
        self.sps: list[np.ndarray] | None = [] if superpixels is not None else None
        for i, im in enumerate(images):
            h, w = im.shape[:2]
            ph, pw = max(0, self.size - h), max(0, self.size - w)
            if ph or pw:
                im = np.pad(im, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 1
                            else "edge")
            self.images.append(np.ascontiguousarray(im, dtype=np.float32))
            if self.sps is not None:
                sp = np.asarray(superpixels[i]).astype(np.int64)
                if ph or pw:
                    sp = np.pad(sp, ((0, ph), (0, pw)), constant_values=-1)
                self.sps.append(sp)
        areas = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.float64)
        self.total_area = float(areas.sum())
        self.prob = areas / areas.sum()
        # per image: the grid's width and the cumulative weights of its cells
        self.cells: list[tuple[int, np.ndarray]] | None = None
        if placement == "structure":
            weights = [structure_weights(im, self.size) for im in self.images]
            self.cells = [(wt.shape[1], np.cumsum(wt.ravel())) for wt in weights]

    def _position(self, rng: np.random.Generator, i: int) -> tuple[int, int]:
        """Top-left corner of a crop in image ``i``."""
        h, w = self.images[i].shape[:2]
        if self.cells is None:
            return int(rng.integers(0, h - self.size + 1)), int(rng.integers(0, w - self.size + 1))
        width, cdf = self.cells[i]
        j = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), cdf.size - 1)
        gy, gx = divmod(j, width)
        y = gy * STRUCTURE_GRID + int(rng.integers(0, STRUCTURE_GRID))
        x = gx * STRUCTURE_GRID + int(rng.integers(0, STRUCTURE_GRID))
        return min(y, h - self.size), min(x, w - self.size)

    def steps_per_epoch(self, batch: int) -> int:
        """Batches needed to cover the collection's area once."""
        return max(1, math.ceil(self.total_area / (self.size * self.size) / batch))

    def sample(self, rng: np.random.Generator,
               batch: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """A batch ``(B, C, s, s)``, its superpixel ids ``(B, s, s)`` (or None) and their count."""
        s = self.size
        which = rng.choice(len(self.images), size=batch, p=self.prob)
        crops, sps = [], []
        offset = 0
        for i in which:  # loop over the batch, not over pixels
            y, x = self._position(rng, i)
            crops.append(self.images[i][y:y + s, x:x + s])
            if self.sps is not None:
                out, n = renumber_crop(self.sps[i][y:y + s, x:x + s], offset)
                offset += n
                sps.append(out)
        x_np = np.stack(crops).transpose(0, 3, 1, 2)
        xt = torch.from_numpy(np.ascontiguousarray(x_np))
        if self.sps is None:
            return xt, None, 0
        return xt, torch.from_numpy(np.stack(sps)), offset


def run_params(params: Any) -> dict[str, Any]:
    """Parameters that define a training run, less its length (``steps``, ``epochs``).

    A checkpoint can thus be resumed with another length, to extend or shorten a
    run; schedules tied to the total (InMARS's gamma) follow the new total. The
    ``refine`` parameters (applied at prediction only) are left out too.
    """
    d = dataclasses.asdict(params)
    d.pop("steps", None)
    d.pop("epochs", None)
    for f in dataclasses.fields(RefineParams):
        d.pop(f.name, None)
    return d


def fingerprint(obj: Any) -> str:
    """Short stable hash of a JSON-serialisable description (parameters, data shapes)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpoint:
    """Resumable training state in one file (atomically replaced, loaded with ``weights_only``).

    Parameters
    ----------
    path : path-like or None
        File to keep the state in; ``None`` disables checkpointing.
    every : int
        Save every this many steps.
    key : str
        Fingerprint of the run (parameters, seed, data); a checkpoint with
        another key is refused instead of silently resumed.
    """

    def __init__(self, path: str | os.PathLike | None, every: int, key: str) -> None:
        self.path = Path(path) if path is not None else None
        self.every = max(1, int(every))
        self.key = key

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none."""
        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
            raise ValueError(f"checkpoint {self.path} is not readable ({type(exc).__name__}); "
                             "delete it or choose another checkpoint path") from None
        if not isinstance(state, dict) or state.get("key") != self.key:
            raise ValueError(
                f"checkpoint {self.path} belongs to another run (different parameters, seed or "
                "images); delete it or choose another checkpoint path"
            )
        return state

    def due(self, step: int, total: int) -> bool:
        """Whether to save after ``step``."""
        return self.path is not None and (step % self.every == 0 or step == total)

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (plus the run key) atomically."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, overwrite=True) as tmp:
            torch.save({**state, "key": self.key}, tmp)


def rng_state(rng: np.random.Generator) -> str:
    """JSON text of a NumPy generator's state."""
    return json.dumps(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, text: str) -> None:
    """Restore a NumPy generator from :func:`rng_state` text."""
    rng.bit_generator.state = json.loads(text)


def resume(ckpt: Checkpoint, net: torch.nn.Module, opt: torch.optim.Optimizer,
           rng: np.random.Generator, gen: torch.Generator,
           sched: Any | None = None) -> tuple[int, dict[str, Any]]:
    """Restore a run from ``ckpt`` if it holds one; returns ``(steps done, extra state)``."""
    state = ckpt.load()
    if state is None:
        return 0, {}
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["opt"])
    set_rng_state(rng, state["rng"])
    gen.set_state(state["torch_rng"])
    if sched is not None and "sched" in state:
        sched.load_state_dict(state["sched"])
    return int(state["step"]), dict(state.get("extra", {}))


def save_state(ckpt: Checkpoint, step: int, net: torch.nn.Module, opt: torch.optim.Optimizer,
               rng: np.random.Generator, gen: torch.Generator, sched: Any | None = None,
               extra: dict[str, Any] | None = None) -> None:
    """Write the training state after ``step`` steps."""
    state = {"step": step, "net": net.state_dict(), "opt": opt.state_dict(),
             "rng": rng_state(rng), "torch_rng": gen.get_state(), "extra": extra or {}}
    if sched is not None:
        state["sched"] = sched.state_dict()
    ckpt.save(state)
