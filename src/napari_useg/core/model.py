"""Fitted dataset-level models: prediction on new images, saving and loading.

A :class:`Model` holds a trained network of a dataset-level method (IIC,
InMARS), the method's parameters, the channel layout it was trained on and the
normalisation of raw pixel values. Labels mean the same on every image: label
``j`` (``1..k``) is cluster ``j - 1`` of the network, so a model applied to a
folder of images or to the tiles of a huge one gives consistent classes.

Normalisation (decided once, at fit time, stored in the model):

``"dataset"``
    Per-channel ranges in raw units computed on the pooled training pixels with
    the rules of :func:`napari_useg.core.image.prepare_image` (``uint8``: 0-255;
    floats already in [0, 1]: as they are; anything else, e.g. ``uint16``: 1st
    and 99.8th percentiles). New images are scaled with the *stored* ranges, so
    a dim image stays dim instead of being stretched.
``"per_image_dark"``
    ``"per_image"``, then every image whose background is light (median of the
    scaled channel mean above 0.5: brightfield, stained tissue) is inverted, so
    every image has a dark background, as fluorescence has (stored as
    ``{"mode": "per_image", ..., "dark_background": true}``).
``"per_image"``
    Every image (training and new) is stretched on its own between its 1st and
    99.8th percentiles per channel, whatever its dtype (``uint8`` included); the
    percentiles are stored in the config (``"percentiles": [1.0, 99.8]``). Use it
    when exposure or modality varies between images: with one set of ranges a
    dim fluorescence image stays nearly black and a network can learn "which
    kind of image" instead of "which structure" (measured in docs/benchmarks.md).
    Models saved before this option recorded no ``percentiles`` and keep their
    original rule (that of :func:`~napari_useg.core.image.prepare_image`).
``"auto"`` (default of :func:`napari_useg.fit`)
    ``"per_image_dark"`` for a collection of objects on a plain background (nuclei,
    cells: :func:`~napari_useg.core.image.objects_on_background`), ``"per_image"``
    otherwise; the model stores the mode chosen (and ``"auto": "<mode>"``).

Methods whose ``refine`` parameter is on (or ``"auto"``, for models whose collection
was judged objects on a plain background) refine each image's classes by its own
values (:mod:`napari_useg.core.refinement`): :meth:`Model.predict` first fits the
image's class Gaussians on up to :data:`REFINE_WINDOWS` of its 512-pixel tiles, then
labels every tile with them.

Saved layout (a folder): ``config.json`` (format version, method, parameters,
channel layout, normalisation, training summary, package version) and
``weights.pt`` (a plain ``state_dict``, loaded with ``torch.load(...,
weights_only=True)``, so loading never runs pickled code).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_useg.core.atomic import atomic_folder
from napari_useg.core.device import resolve_device
from napari_useg.core.image import (
    PERCENTILES,
    apply_ranges,
    channel_ranges,
    channels_last,
    light_background,
)
from napari_useg.core.params import build_params, params_to_dict
from napari_useg.core.refinement import (
    Refinement,
    background_features,
    classes_separated,
    feature_margin,
    fit_class_gaussians,
    minus_background,
    sample_grid,
)
from napari_useg.core.registry import get_method
from napari_useg.core.tiling import plan_windows, predict_tiled, read_window, round_up
from napari_useg.core.version import __version__

__all__ = ["Model", "load_model", "model_class", "FORMAT_VERSION", "REFINE_WINDOWS", "REFINE_TILE",
           "REFINE_SAMPLES"]

#: Version of the saved-model layout.
FORMAT_VERSION = 1
#: Tiles of an image, evenly spread, on which a refining model fits its class Gaussians.
REFINE_WINDOWS = 8
#: Side of those tiles (that of :meth:`Model.predict`'s default tiling).
REFINE_TILE = 512
#: Pixels of those tiles sampled for the fit, about at most.
REFINE_SAMPLES = 262_144
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"

_CLASSES: dict[str, type[Model]] = {}


def model_class(name: str):
    """Class decorator: register the :class:`Model` subclass of method ``name``."""

    def deco(cls: type[Model]) -> type[Model]:
        cls.method = name
        _CLASSES[name] = cls
        return cls

    return deco


class Model:
    """A trained dataset-level segmentation model.

    Subclasses (one per method) define ``outputs``, ``build_net``, ``multiple``
    and ``label_window``; users only call :meth:`predict`, :meth:`save` and
    :func:`load_model`.

    Attributes
    ----------
    method : str
        Name of the method that trained it.
    params : dataclass
        The method's parameters.
    net : torch.nn.Module
        The network (in eval mode).
    n_channels : int
        Channels the model expects.
    is_rgb : bool
        Whether the first three channels are RGB.
    normalisation : dict
        ``{"mode": "dataset", "lo": [...], "hi": [...], "dtype": "uint8"}`` or
        ``{"mode": "per_image", "percentiles": [1.0, 99.8]}`` (older models:
        ``{"mode": "per_image"}``, the :func:`~napari_useg.core.image.prepare_image` rules).
    training : dict
        Summary of the training run (steps, seed, images, final loss, seconds).
    """

    method: str = ""
    outputs: tuple[str, ...] = ()

    def __init__(self, params: Any, net: nn.Module, *, n_channels: int, is_rgb: bool,
                 normalisation: dict[str, Any] | None = None,
                 training: dict[str, Any] | None = None,
                 device: torch.device | str | None = None) -> None:
        self.params = params
        self.net = net.eval()
        self.n_channels = int(n_channels)
        self.is_rgb = bool(is_rgb)
        self.normalisation = dict(normalisation or {"mode": "per_image"})
        self.training = dict(training or {})
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.net.to(self.device)
        self._radius: int | None = None

    # ---- to be provided by each method ---------------------------------------------------
    @classmethod
    def build_net(cls, params: Any, n_channels: int, is_rgb: bool) -> nn.Module:
        """A freshly initialised network for ``params`` (weights are then loaded)."""
        raise NotImplementedError

    @property
    def multiple(self) -> int:
        """Input sides and tile origins must be multiples of this."""
        raise NotImplementedError

    @property
    def default_output(self) -> str:
        """Output used when :meth:`predict` is given none."""
        return self.outputs[0]

    def n_labels(self, output: str | None = None) -> int:
        """Number of classes of ``output``."""
        raise NotImplementedError

    def pixel_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel scores ``(N, k, H, W)`` at input resolution (probes the receptive field)."""
        raise NotImplementedError

    def label_window(self, window: np.ndarray, output: str) -> np.ndarray:
        """Cluster indices ``0..k-1`` of a ``float32`` ``(h, w, C)`` window."""
        raise NotImplementedError

    def extra_margin(self, output: str) -> int:
        """Context needed beyond the network's receptive field (e.g. superpixels)."""
        return 0

    def window_probs(self, window: np.ndarray, output: str) -> np.ndarray:
        """Class probabilities ``(k, h, w)`` of a ``float32`` ``(h, w, C)`` window.

        Needed by methods with a ``refine`` parameter (their argmax is
        :meth:`label_window`'s labels).
        """
        raise NotImplementedError

    # ---- per-image refinement --------------------------------------------------------------
    def refines(self, output: str | None = None) -> bool:
        """Whether :meth:`predict` refines each image's classes of ``output``.

        The ``refine`` parameter (:mod:`napari_useg.core.refinement`): ``"on"``,
        ``"off"``, or ``"auto"``: on for models trained on a collection of objects on a
        plain background (whose normalisation inverts light backgrounds, as
        ``normalisation="auto"`` chooses for them). Only outputs of ``n_clusters``
        classes are refined (not IIC's over-clustering head).
        """
        if output is not None and self.n_labels(output) != getattr(self.params, "n_clusters",
                                                                    None):
            return False
        mode = getattr(self.params, "refine", "off")
        if mode == "auto":
            return bool(self.normalisation.get("dark_background"))
        return mode == "on"

    def refinement(self, arr, normalise, output: str,
                   cache: dict[tuple[int, ...], np.ndarray] | None = None
                   ) -> Refinement | None:
        """Fit an image's refinement (``None`` when the model does not refine ``output``, or
        when the image's values do not tell its classes apart: see
        :func:`~napari_useg.core.refinement.classes_separated`).

        The image is cut into the tiles :meth:`predict` makes with ``tile_size=512``
        and the default margin; up to :data:`REFINE_WINDOWS` of them, evenly spread, are
        sampled on a regular grid of the image (about :data:`REFINE_SAMPLES` pixels, in
        image order). The fit thus depends on the image only, not on the tiling of the
        prediction that uses it.

        Parameters
        ----------
        arr : array_like
            The raw ``(H, W, C)`` image (NumPy or dask).
        normalise : callable
            Its normaliser (:meth:`normaliser`).
        output : str
            The output labelled.
        cache : dict, optional
            Receives the class probabilities of the tiles used, by tile
            ``(ys, ye, xs, xe, wy0, wy1, wx0, wx1)``, so that labelling them with the
            same tiles does not run the network again.
        """
        if not self.refines(output):
            return None
        p = self.params
        windows = plan_windows(arr.shape[0], arr.shape[1], REFINE_TILE, self.margin(output),
                               self.multiple)
        pick = np.unique(np.linspace(0, len(windows) - 1, min(len(windows), REFINE_WINDOWS))
                         .round().astype(int))
        chosen = [windows[i] for i in pick]
        step = sample_grid(sum((w[1] - w[0]) * (w[3] - w[2]) for w in chosen), REFINE_SAMPLES)
        h, w = int(arr.shape[0]), int(arr.shape[1])
        sub = normalise(np.asarray(arr[::max(1, h // 256), ::max(1, w // 256)]))
        c = sub.shape[-1]
        dark = light_background(sub, np.zeros(c), np.ones(c))  # objects darker than it
        side = int(p.refine_background)
        feats, plain, probs, where = [], [], [], []
        with torch.no_grad():
            for box in chosen:
                ys, ye, xs, xe, wy0, wy1, wx0, wx1 = box
                win = normalise(read_window(arr, wy0, wy1, wx0, wx1))
                rows = np.arange(ys + (-ys) % step, ye, step)
                cols = np.arange(xs + (-xs) % step, xe, step)
                if rows.size == 0 or cols.size == 0:
                    continue
                prob = self.window_probs(win, output)
                if cache is not None:
                    cache[tuple(box)] = prob
                at = (rows - wy0)[:, None], (cols - wx0)[None]
                means = background_features(win, 0, dark)
                f = minus_background(means, side, dark)[at]
                plain.append(means[at].reshape(-1, f.shape[-1]))
                pr = prob[(slice(None), *at)]
                feats.append(f.reshape(-1, f.shape[-1]))
                probs.append(pr.reshape(pr.shape[0], -1).T)
                where.append((rows[:, None] * w + cols[None]).ravel())
        order = np.argsort(np.concatenate(where), kind="stable")
        feats_s, probs_s = np.concatenate(feats)[order], np.concatenate(probs)[order]
        if not classes_separated(np.concatenate(plain)[order], probs_s):
            return None  # the image's values do not tell the classes apart: the model's labels
        return Refinement(fit_class_gaussians(feats_s, probs_s, p.refine_weight), side, dark)

    def window_labels(self, window: np.ndarray, output: str,
                      refinement: Refinement | None = None,
                      probs: np.ndarray | None = None) -> np.ndarray:
        """Cluster indices of a window: the network's, or refined by the image's fit.

        ``probs``: the window's class probabilities when already computed.
        """
        if refinement is None:
            return self.label_window(window, output)
        return refinement.labels(window, self.window_probs(window, output) if probs is None
                                 else probs)

    # ---- prediction ------------------------------------------------------------------------
    def receptive_radius(self, limit: int = 512) -> int:
        """Pixels of context the network uses on each side, measured once by back-propagation.

        A random window is pushed through the network in eval mode and the
        gradient of the centre pixel's scores with respect to the input is
        non-zero exactly inside the receptive field. Capped at ``limit``.
        """
        if self._radius is not None:
            return self._radius
        m = self.multiple
        r = max(16, m)
        gen = torch.Generator().manual_seed(0)
        while True:
            size = round_up(2 * r + m, 2 * m)
            x = torch.rand(1, self.n_channels, size, size, generator=gen).to(self.device)
            x.requires_grad_(True)
            c = size // 2
            with torch.enable_grad():
                out = self.pixel_logits(x)
                out[0, :, c, c].sum().backward()
            g = (x.grad.abs().sum(dim=(0, 1)) > 0).cpu().numpy()
            ys, xs = np.nonzero(g)
            extent = int(max(np.abs(ys - c).max(), np.abs(xs - c).max())) if ys.size else 0
            if extent < r - 1 or r >= limit:
                self._radius = min(extent + 1, limit)
                return self._radius
            r *= 2

    def margin(self, output: str | None = None) -> int:
        """Default tile margin for ``output``: receptive radius plus any extra context."""
        output = self.check_output(output)
        need = self.receptive_radius() + self.extra_margin(output)
        if self.refines(output):  # the features read the image itself, not the network
            need = max(need, feature_margin(self.params.refine_background))
        return round_up(need, self.multiple)

    def check_output(self, output: str | None) -> str:
        """The output to use (``None``: the default one); ``ValueError`` for an unknown one."""
        output = self.default_output if output is None else output
        if output not in self.outputs:
            raise ValueError(f"{self.method} model has no output {output!r}; "
                             f"choose one of {list(self.outputs)}")
        return output

    def normaliser(self, arr):
        """The function scaling windows of ``arr`` (raw, channels last) to [0, 1].

        Per-image ranges are read from ``arr`` (NumPy or dask) here; a ``UserWarning``
        is given first when the image's dtype or value range is far from the
        training images' (see :meth:`check_values`).
        """
        self.check_values(arr, stacklevel=4)
        mode = self.normalisation.get("mode")
        if mode == "per_image":
            pct = self.normalisation.get("percentiles")  # absent in older models
            lo, hi = channel_ranges([arr], percentiles=None if pct is None else tuple(pct))
        elif mode == "dataset":
            lo = np.asarray(self.normalisation["lo"], dtype=np.float64)
            hi = np.asarray(self.normalisation["hi"], dtype=np.float64)
            want = self.normalisation.get("dtype")
            if want and str(np.dtype(arr.dtype)) != want:
                warnings.warn(
                    f"the model was trained on {want} images and is applied to a "
                    f"{np.dtype(arr.dtype)} image: values are scaled with the training ranges "
                    f"({lo.tolist()} .. {hi.tolist()}); convert the image if they differ",
                    UserWarning, stacklevel=3,
                )
        else:  # pragma: no cover - corrupted config
            raise ValueError(f"unknown normalisation mode {mode!r}")

        flip = bool(mode == "per_image" and self.normalisation.get("dark_background")
                    and light_background(arr, lo, hi))

        def normalise(raw: np.ndarray) -> np.ndarray:
            if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(raw).all():
                raise ValueError("image contains NaN or infinite values")
            out = apply_ranges(raw, lo, hi)
            return 1.0 - out if flip else out

        return normalise

    def check_values(self, arr, *, stacklevel: int = 2) -> list[str]:
        """Warn when an image's values lie far outside those the model was trained on.

        The image's per-channel 1st and 99.8th percentiles (of a subsample; NumPy
        images only, a lazy image is not read for this) are compared with the
        training images' (``training["value_range"]``): values reaching more than
        one training range beyond either end, or (``"dataset"`` normalisation) a
        range under 5 % of the training one, give one ``UserWarning`` with the numbers,
        before anything runs. Models saved without the training range are not checked.

        Returns
        -------
        list of str
            The problems found (also the warning's text), empty when none.
        """
        rng = self.training.get("value_range")
        if not rng or not isinstance(arr, np.ndarray) or arr.size == 0:
            return []
        lo = np.asarray(rng["lo"], dtype=np.float64)
        hi = np.asarray(rng["hi"], dtype=np.float64)
        if lo.shape != (arr.shape[-1],):
            return []
        step = max(1, int(np.sqrt(arr.shape[0] * arr.shape[1] / 250_000)))
        sub = np.asarray(arr[::step, ::step], dtype=np.float64).reshape(-1, arr.shape[-1])
        sub = np.where(np.isfinite(sub), sub, np.nan)
        ilo, ihi = np.nanpercentile(sub, PERCENTILES, axis=0)
        span = np.maximum(hi - lo, 1e-12)
        problems = []
        for c in range(lo.size):
            if ilo[c] < lo[c] - span[c] or ihi[c] > hi[c] + span[c]:
                problems.append(f"channel {c}: values {ilo[c]:.4g}..{ihi[c]:.4g}, far outside "
                                f"the training range {lo[c]:.4g}..{hi[c]:.4g}")
            elif (self.normalisation.get("mode") == "dataset"
                  and ihi[c] - ilo[c] < 0.05 * span[c]):
                problems.append(f"channel {c}: values {ilo[c]:.4g}..{ihi[c]:.4g} cover under 5% "
                                f"of the training range {lo[c]:.4g}..{hi[c]:.4g}")
        if problems:
            warnings.warn(
                f"this {self.method} model was trained on {rng.get('dtype', '?')} images and is "
                f"applied to a {np.dtype(arr.dtype)} image whose values differ: "
                + "; ".join(problems) + " (1st-99.8th percentiles); check the image's units or "
                "retrain on similar images", UserWarning, stacklevel=stacklevel)
        return problems

    def describe(self) -> str:
        """What the model was trained on and how, in a few lines (for users and reports).

        Lists the method and its output(s), the training images (count, sizes, channels,
        dtype and value range), the normalisation, the training run (preset, steps,
        seed, final loss, duration) and the package version that trained it. Items a
        model saved by an older version did not record are shown as ``unknown``.
        """
        t = self.training
        unknown = "unknown"
        sizes = t.get("sizes")
        if sizes:
            hs = [int(s[0]) for s in sizes]
            ws = [int(s[1]) for s in sizes]
            size_text = (f"{hs[0]}x{ws[0]}" if len(set(zip(hs, ws, strict=True))) == 1 else
                         f"{min(hs)}-{max(hs)} x {min(ws)}-{max(ws)} (H x W)")
        else:
            size_text = unknown
        rng = t.get("value_range")
        rng_text = (", ".join(f"{a:.4g}..{b:.4g}" for a, b in zip(rng["lo"], rng["hi"],
                                                                   strict=True))
                    + f" ({rng.get('dtype', '?')}, 1st-99.8th percentiles per channel)"
                    if rng else unknown)
        norm = dict(self.normalisation)
        mode = norm.get("mode", unknown)
        if mode == "dataset":
            pairs = zip(norm["lo"], norm["hi"], strict=True)
            norm_text = ("dataset: one range per channel for every image ("
                         + ", ".join(f"{a:.4g}..{b:.4g}" for a, b in pairs) + ")")
        elif mode == "per_image":
            pct = norm.get("percentiles")
            norm_text = ("per_image: each image stretched between its own "
                         + (f"{pct[0]}th and {pct[1]}th percentiles" if pct else
                            "prepare_image ranges"))
            if norm.get("dark_background"):
                norm_text += ", then inverted where its background is light (per_image_dark)"
            if norm.get("auto"):
                norm_text += " (chosen by 'auto')"
        else:
            norm_text = str(mode)
        refine_mode = getattr(self.params, "refine", "off")
        if self.refines():
            refine_text = (f"on ({refine_mode}): classes refined by each image's values, weight "
                           f"{self.params.refine_weight}, background window "
                           f"{self.params.refine_background} px")
        else:
            refine_text = f"off ({refine_mode})"
        final = t.get("final", t.get("final_loss"))
        if isinstance(final, dict):
            final_text = ", ".join(f"{k} {v:.4g}" for k, v in final.items()
                                   if isinstance(v, (int, float)))
        else:
            final_text = unknown if final is None else f"{final:.4g}"
        kind = "RGB" if self.is_rgb and self.n_channels == 3 else (
            "RGB + extra channels" if self.is_rgb else "not RGB")
        lines = [
            f"{self.method} model, outputs {', '.join(self.outputs)} (default "
            f"{self.default_output}), {self.n_labels(self.default_output)} labels",
            f"trained on: {t.get('images', unknown)} images, sizes {size_text}, "
            f"{self.n_channels} channel(s) ({kind})",
            f"training values: {rng_text}",
            f"normalisation: {norm_text}",
            f"per-image refinement: {refine_text}",
            f"training: preset {t.get('preset', unknown)}, {t.get('steps', unknown)} steps, "
            f"seed {t.get('seed', unknown)}, {t.get('seconds', unknown)} s",
            f"final loss: {final_text}",
            f"napari-useg version: {t.get('version', unknown)}",
        ]
        return "\n".join(lines)

    def check_image(self, image, channel_axis: int | None = None):
        """Validate ``image`` against the model's channel layout; return the raw ``(H, W, C)`` view.

        Raises
        ------
        ValueError
            If the number of channels differs from the training images'.
        """
        arr, _ = channels_last(image, channel_axis)
        c = int(arr.shape[-1])
        if c != self.n_channels:
            kind = "RGB" if self.is_rgb and self.n_channels == 3 else f"{self.n_channels}-channel"
            raise ValueError(
                f"this {self.method} model was trained on {kind} images ({self.n_channels} "
                f"channel(s)) but the image has {c} channel(s) (channels-last shape "
                f"{tuple(arr.shape)}); "
                "pass channel_axis or convert the image"
            )
        return arr

    def predict(self, image, *, channel_axis: int | None = None, output: str | None = None,
                tile_size: int = 512, margin: int | None = None,
                on_tile=None) -> np.ndarray:
        """Label an image of any size (tiled, memory bounded by ``tile_size``).

        Parameters
        ----------
        image : array_like
            2-D grayscale, RGB(A), or multichannel with ``channel_axis``; NumPy or
            dask (read one tile at a time). Must have the training images'
            number of channels.
        channel_axis : int, optional
            Axis holding the channels.
        output : str, optional
            Which output to label with (see ``outputs``; e.g. ``"main"`` or
            ``"over"`` for IIC, ``"region"``, ``"backbone"`` or ``"multiscale"``
            for InMARS).
        tile_size : int
            Side of the part of each tile that is kept.
        margin : int, optional
            Context around each tile (default: the network's receptive radius,
            which makes the tiled result equal to a whole-image prediction).
        on_tile : callable, optional
            ``on_tile(done, total)`` after every tile.

        Returns
        -------
        numpy.ndarray
            ``int32`` labels ``1..k`` (label ``j`` is cluster ``j - 1`` on every image).

        Raises
        ------
        ValueError
            For a wrong number of channels, an unknown output or bad tiling values.
        """
        output = self.check_output(output)
        arr = self.check_image(image, channel_axis)
        normalise = self.normaliser(arr)
        return self._predict_raw(arr, normalise, output, tile_size, margin, on_tile)

    def predict_prepared(self, data: np.ndarray, *, output: str | None = None,
                         tile_size: int = 512, margin: int | None = None) -> np.ndarray:
        """:meth:`predict` for data already normalised (``float32`` ``(H, W, C)`` in [0, 1])."""
        output = self.check_output(output)
        if data.ndim != 3 or data.shape[-1] != self.n_channels:
            raise ValueError(f"expected (H, W, {self.n_channels}) data, got {data.shape}")
        return self._predict_raw(data, lambda w: np.asarray(w, dtype=np.float32), output,
                                 tile_size, margin, None)

    def _predict_raw(self, arr, normalise, output, tile_size, margin, on_tile) -> np.ndarray:
        if margin is None:
            margin = self.margin(output)
        self.net.eval()
        plan_windows(arr.shape[0], arr.shape[1], tile_size, margin, self.multiple)  # checks first
        cache: dict[tuple[int, ...], np.ndarray] = {}
        refinement = self.refinement(arr, normalise, output, cache)

        def label(window: np.ndarray, box: tuple[int, ...]) -> np.ndarray:
            return self.window_labels(window, output, refinement, cache.pop(tuple(box), None))

        with torch.no_grad():
            labels = predict_tiled(arr, label, tile_size=tile_size, margin=margin,
                                   multiple=self.multiple, normalise=normalise,
                                   on_tile=on_tile, with_box=True)
        labels += 1
        return labels

    def to(self, device: torch.device | str) -> Model:
        """Move the network to ``device`` (returns ``self``)."""
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    # ---- persistence -----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON-serialisable description (everything but the weights)."""
        return {
            "format": FORMAT_VERSION,
            "method": self.method,
            "params": params_to_dict(self.params),
            "channels": {"n_channels": self.n_channels, "is_rgb": self.is_rgb},
            "normalisation": self.normalisation,
            "training": self.training,
            "napari_useg_version": __version__,
        }

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the model to the folder ``path`` (``config.json`` + ``weights.pt``).

        The folder is written next to its destination and swapped into place in one
        step, so an interrupted save leaves the old model or the new one, never a
        half-written one or none. With ``overwrite`` only a folder holding a model of
        this package (and nothing else) is replaced; any other folder is refused.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is false.
        ValueError
            If ``path`` exists and is not a model folder written by this package.
        """
        with atomic_folder(path, overwrite=overwrite, replaceable=is_model_folder,
                           what="model folder") as tmp:
            state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
            torch.save(state, tmp / WEIGHTS_NAME)
            (tmp / CONFIG_NAME).write_text(json.dumps(self.config(), indent=2, default=float))
        return Path(path)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.method}: {self.n_channels} channel(s), outputs "
                f"{list(self.outputs)}, normalisation {self.normalisation.get('mode')}>")


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a saved model of this package and nothing else.

    This is what :meth:`Model.save` checks before replacing a folder, so that
    ``overwrite`` can never delete a folder of images or notes.
    """
    p = Path(path)
    if not p.is_dir():
        return False
    names = {f.name for f in p.iterdir()}
    if names != {CONFIG_NAME, WEIGHTS_NAME}:
        return False
    try:
        cfg = json.loads((p / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "format" in cfg and "method" in cfg


def _check_finite_ranges(norm: dict[str, Any], n_channels: int, where: Path) -> None:
    if norm.get("mode") != "dataset":
        return
    try:
        lo = np.asarray(norm["lo"], dtype=np.float64)
        hi = np.asarray(norm["hi"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: normalisation ranges are unreadable ({exc})") from None
    if lo.shape != (n_channels,) or hi.shape != (n_channels,):
        raise ValueError(f"{where}: normalisation ranges are for {lo.size} channel(s), the "
                         f"model has {n_channels}")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or not (hi > lo).any():
        raise ValueError(f"{where}: normalisation ranges are not finite increasing ranges "
                         f"(lo={lo.tolist()}, hi={hi.tolist()}); the model is damaged")


def load_model(path: str | os.PathLike, device: str | torch.device = "auto") -> Model:
    """Load a model saved with :meth:`Model.save`.

    Parameters
    ----------
    path : path-like
        The model folder (or its ``config.json``).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.

    Returns
    -------
    Model

    Raises
    ------
    FileNotFoundError
        If the folder or one of its files is missing.
    ValueError
        If the files are not a model this version can read.

    Examples
    --------
    >>> import numpy as np, napari_useg, tempfile, os
    >>> imgs = [np.random.default_rng(i).integers(0, 255, (32, 32), np.uint8) for i in range(2)]
    >>> m = napari_useg.fit(imgs, "iic", preset="fast", steps=1, input_size=16, batch_size=2)
    >>> d = os.path.join(tempfile.mkdtemp(), "m")
    >>> _ = m.save(d)
    >>> bool((napari_useg.load_model(d, "cpu").predict(imgs[0]) == m.predict(imgs[0])).all())
    True
    """
    p = Path(path)
    if p.is_file() and p.name == CONFIG_NAME:
        p = p.parent
    if not p.is_dir():
        raise FileNotFoundError(f"no model folder at {p}")
    cfg_path, w_path = p / CONFIG_NAME, p / WEIGHTS_NAME
    for f in (cfg_path, w_path):
        if not f.is_file():
            raise FileNotFoundError(f"model folder {p} has no {f.name}")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{cfg_path} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_path} is not a model configuration (a JSON object)")
    fmt = cfg.get("format")
    if fmt != FORMAT_VERSION:
        raise ValueError(f"{cfg_path}: model format {fmt!r} is not supported "
                         f"(this version reads format {FORMAT_VERSION})")
    missing = [k for k in ("method", "params", "channels") if k not in cfg]
    if missing:
        raise ValueError(f"{cfg_path} lacks the key(s) {missing}; it is not a complete model "
                         "configuration")
    method = get_method(cfg["method"])  # imports the method modules (registers model classes)
    cls = _CLASSES.get(method.name)
    if cls is None:
        raise ValueError(f"method {method.name!r} has no saved-model support")
    params = build_params(method.params, cfg["params"], method=method.name)
    try:
        ch = cfg["channels"]
        n_channels, is_rgb = int(ch["n_channels"]), bool(ch["is_rgb"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{cfg_path}: 'channels' must hold n_channels and is_rgb ({exc!r})"
                         ) from None
    norm = cfg.get("normalisation")
    if norm is not None and not isinstance(norm, dict):
        raise ValueError(f"{cfg_path}: 'normalisation' must be an object, got {norm!r}")
    _check_finite_ranges(norm or {}, n_channels, cfg_path)
    net = cls.build_net(params, n_channels, is_rgb)
    try:
        with warnings.catch_warnings():  # torch's advice on unpickling is not for users
            warnings.simplefilter("ignore")
            state = torch.load(w_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        # say what is wrong in one sentence; torch's own message suggests unsafe loading
        reason = type(exc).__name__
        raise ValueError(f"{w_path} is not a readable weights file of a napari-useg model "
                         f"({reason}); it is corrupt, truncated or of another program") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ValueError(f"{w_path} does not hold a network's weights")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"{w_path} does not match the network described in {cfg_path}: "
                         f"{first}") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{w_path}: weights {bad[:3]} hold NaN or infinite values; the model "
                         "is damaged (retrain it)")
    return cls(params, net, n_channels=n_channels, is_rgb=is_rgb, normalisation=norm,
               training=cfg.get("training"), device=resolve_device(device))
