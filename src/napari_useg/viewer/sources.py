"""What a job reads from napari Image layers (Qt-free).

* :func:`source_from_layers` resolves the image to segment from one Image layer (RGB,
  grayscale, a stack, or multichannel with a channel axis) or several single-channel
  layers combined as channels, into a :class:`LayerSource`;
* :func:`images_from_layers` reads Image layers as a training collection
  (:class:`LayerImages`: every 2-D slice of a stack layer is one image);
* :func:`layer_channels` counts the channels a model sees in a layer, without reading pixels.

napari itself is imported only inside :func:`is_layer`, so that ``import napari_useg``
(the command line) stays light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_useg.core.image import channels_last

__all__ = [
    "LayerSource",
    "LayerImages",
    "is_layer",
    "resolve_layer",
    "source_from_layers",
    "layer_source",
    "layer_channels",
    "images_from_layers",
    "guess_channel_axis",
    "describe_reading",
]

#: A leading axis of a 3-D layer at most this long, with both other axes at least
#: :data:`_LARGE_AXIS` long, is taken for channels rather than slices.
MAX_GUESSED_CHANNELS = 4
_LARGE_AXIS = 32
#: Axis labels (napari ``axis_labels`` or ``metadata["axes"]``) that name a channel axis.
_CHANNEL_NAMES = ("c", "ch", "channel", "channels")


def is_layer(obj: Any, kind: str) -> bool:
    """True when ``obj`` is a napari layer of type ``kind`` (``"image"``, ``"labels"``)."""
    import napari.layers  # deferred: napari is heavy and the CLI imports this package

    cls = {"image": napari.layers.Image, "labels": napari.layers.Labels}[kind]
    return isinstance(obj, cls)


def resolve_layer(viewer: Any, layer: Any) -> Any:
    """``layer`` itself, or the layer of ``viewer`` it names (``ValueError`` if none)."""
    if isinstance(layer, str):
        if viewer is None:
            raise ValueError(f"a layer name ({layer!r}) needs a viewer")
        try:
            return viewer.layers[layer]
        except KeyError:
            raise ValueError(
                f"no layer named {layer!r}; layers: {[lay.name for lay in viewer.layers]}"
            ) from None
    return layer


def _layer_name(layer: Any) -> str:
    return str(getattr(layer, "name", "image"))


@dataclass(frozen=True)
class LayerSource:
    """The array to segment, resolved from one or more napari Image layers.

    Attributes
    ----------
    data : array_like
        ``(stack..., Y, X)`` without channels, or ``(stack..., Y, X, C)`` with the
        channels last (numpy or dask; slices are read one at a time).
    has_channels : bool
        Whether the last axis of ``data`` holds channels.
    rgb : bool
        Whether the channels are an RGB(A) layer's (then an alpha channel is dropped).
    name : str
        Name used for the output layer (the layer's name, or ``"a+b"`` for combined layers).
    layer_names : tuple of str
        Names of the source layers.
    scale, translate : tuple of float
        Of the output Labels layer (``(stack..., Y, X)``), taken from the first source layer.
    channel_axis : int or None
        Channel axis of the source layer's data as chosen by the user (``-1`` for RGB or
        combined layers, ``None`` for no channels).
    spatial_dims : {2, 3}
        2: every 2-D slice is segmented alone; 3 ("volume" mode): every 3-D block
        ``(Z, Y, X)`` of the last three axes is one volume.
    """

    data: Any
    has_channels: bool
    rgb: bool
    name: str
    layer_names: tuple[str, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    channel_axis: int | None
    spatial_dims: int = 2

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the label map: ``(stack..., Y, X)``."""
        shape = tuple(int(s) for s in self.data.shape)
        return shape[:-1] if self.has_channels else shape

    @property
    def stack_shape(self) -> tuple[int, ...]:
        """Shape of the stack axes (empty for a single 2-D image or a single volume)."""
        return self.out_shape[:-self.spatial_dims]

    @property
    def spacing(self) -> tuple[float, ...]:
        """The layer's ``scale`` along the spatial axes: the pixel/voxel spacing."""
        return tuple(self.scale[-self.spatial_dims:])

    def as_volumes(self) -> LayerSource:
        """The same source in volume mode (``ValueError`` without three spatial axes)."""
        if len(self.out_shape) < 3:
            raise ValueError(
                f"layer {self.name!r} of shape {tuple(self.data.shape)} has no third spatial "
                "axis: volume mode needs a (Z, Y, X) layer"
            )
        return dataclasses.replace(self, spatial_dims=3)

    @property
    def n_slices(self) -> int:
        """Number of 2-D slices (volumes, in volume mode) segmented one after the other."""
        return int(np.prod(self.stack_shape, dtype=np.int64))

    @property
    def slice_channel_axis(self) -> int | None:
        """``channel_axis`` to pass to :func:`napari_useg.iter_segment` for one slice."""
        if not self.has_channels or self.rgb:
            return None  # RGB(A): the last axis is read as colour (alpha dropped)
        return -1

    def indices(self) -> Iterator[tuple[int, ...]]:
        """Stack positions of the 2-D slices, in order (one empty tuple for a 2-D image)."""
        return np.ndindex(*self.stack_shape)

    def slice(self, index: tuple[int, ...]) -> np.ndarray:
        """The 2-D image (with channels, if any) at stack position ``index``, read."""
        return np.asarray(self.data[index])

    def lazy_slice(self, index: tuple[int, ...]) -> Any:
        """The 2-D image at ``index`` without reading it (dask data stays lazy)."""
        return self.data[index] if index else self.data


def source_from_layers(layers: Any, channel_axis: int | None = None) -> LayerSource:
    """Resolve the image to segment from one Image layer or several single-channel ones.

    Parameters
    ----------
    layers : napari.layers.Image or sequence of them
        One layer (RGB, grayscale, a stack, or multichannel with ``channel_axis``), or
        several single-channel layers of the same shape, combined as channels in order.
    channel_axis : int, optional
        Axis of the (single, non-RGB) layer's data holding the channels.

    Returns
    -------
    LayerSource

    Raises
    ------
    TypeError
        If something other than an Image layer is given.
    ValueError
        For multiscale layers, a bad ``channel_axis``, layers of different shapes, or
        data with fewer than two spatial dimensions.
    """
    if isinstance(layers, (list, tuple)):
        layers = list(layers)
    else:
        layers = [layers]
    if not layers:
        raise ValueError("no image layer given")
    for lay in layers:
        if not is_layer(lay, "image"):
            raise TypeError(
                f"{_layer_name(lay)!r} is a {type(lay).__name__}, not an Image layer; "
                "napari-useg segments Image layers"
            )
        if getattr(lay, "multiscale", False):
            raise ValueError(
                f"layer {lay.name!r} is multiscale; segment one resolution level "
                "(add it as its own layer, e.g. viewer.add_image(layer.data[1]))"
            )
    first = layers[0]
    scale = tuple(float(s) for s in first.scale)
    translate = tuple(float(t) for t in first.translate)
    if len(layers) > 1:
        if channel_axis is not None:
            raise ValueError(
                "channel_axis applies to a single multichannel layer; to combine layers, "
                "give single-channel layers and no channel_axis"
            )
        shapes = {tuple(lay.data.shape) for lay in layers}
        rgbs = [lay.name for lay in layers if lay.rgb]
        if rgbs:
            raise ValueError(f"only single-channel layers can be combined; {rgbs} are RGB")
        if len(shapes) != 1:
            raise ValueError(
                "layers combined as channels must have the same shape; got "
                + ", ".join(f"{lay.name!r}: {tuple(lay.data.shape)}" for lay in layers)
            )
        names = tuple(lay.name for lay in layers)
        if len(set(names)) != len(names):
            raise ValueError(f"a layer was given twice: {list(names)}")
        data = np.stack([np.asarray(lay.data) for lay in layers], axis=-1)
        src = LayerSource(data, True, False, "+".join(names), names, scale, translate, -1)
    elif first.rgb:
        if channel_axis not in (None, -1, first.data.ndim - 1):
            raise ValueError(
                f"layer {first.name!r} is RGB: its channels are the last axis; "
                f"channel_axis={channel_axis} is not allowed"
            )
        src = LayerSource(first.data, True, True, first.name, (first.name,), scale,
                          translate, -1)
    elif channel_axis is not None:
        data = first.data
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
            raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
        if not -data.ndim <= channel_axis < data.ndim:
            raise ValueError(
                f"channel_axis={channel_axis} is out of range for layer {first.name!r} "
                f"of shape {tuple(data.shape)}"
            )
        ax = int(channel_axis) % data.ndim
        if data.ndim < 3:
            raise ValueError(
                f"channel_axis needs a layer with at least 3 dimensions; {first.name!r} "
                f"has shape {tuple(data.shape)}"
            )
        moved = np.moveaxis(data, ax, -1)
        keep = [i for i in range(data.ndim) if i != ax]
        src = LayerSource(moved, True, False, first.name, (first.name,),
                          tuple(scale[i] for i in keep), tuple(translate[i] for i in keep), ax)
    else:
        src = LayerSource(first.data, False, False, first.name, (first.name,), scale,
                          translate, None)
    if len(src.out_shape) < 2:
        raise ValueError(
            f"layer {src.name!r} has {len(src.out_shape)} spatial dimension(s) "
            f"(shape {tuple(src.data.shape)}); need at least 2"
        )
    return src


def _axis_labels(layer: Any) -> list[str]:
    ndim = getattr(getattr(layer, "data", None), "ndim", 0)
    meta = getattr(layer, "metadata", None) or {}
    axes = meta.get("axes")
    if isinstance(axes, str) and len(axes) == ndim:  # e.g. tifffile's "CYX"
        return [a.lower() for a in axes]
    if isinstance(axes, (list, tuple)) and len(axes) == ndim:
        return [str(a).lower() for a in axes]
    labels = getattr(layer, "axis_labels", None)
    if labels is not None and len(labels) == ndim:
        return [str(a).lower() for a in labels]
    return []


def guess_channel_axis(layer: Any) -> int | None:
    """The likely channel axis of an Image layer's data, or ``None`` (none, or RGB).

    In order: an RGB layer has none to choose (its channels are the last axis); an axis
    labelled as channels (``metadata["axes"]`` such as ``"CYX"``, or napari's
    ``axis_labels``); for 3-D data, a leading axis of at most
    :data:`MAX_GUESSED_CHANNELS` entries before two long ones (``(3, 512, 512)``).
    """
    if layer is None or getattr(layer, "rgb", False):
        return None
    shape = tuple(int(n) for n in getattr(layer.data, "shape", ()))
    if len(shape) < 3:
        return None
    labels = _axis_labels(layer)
    for i, name in enumerate(labels):
        if name in _CHANNEL_NAMES:
            return i
    if labels and not any(name.startswith("axis") or name.lstrip("-").isdigit()
                          for name in labels):
        return None  # named axes, none of them channels
    if len(shape) == 3 and shape[0] <= MAX_GUESSED_CHANNELS and min(shape[1:]) >= _LARGE_AXIS:
        return 0
    return None


def describe_reading(layers: Any, channel_axis: int | None = None,
                     spatial_dims: int = 2) -> str:
    """How the layer(s) will be read, in a few words: ``"3 channels, 512x512"``...

    Shown by the segmentation widget before Run (``spatial_dims`` is its mode: 2, slice
    by slice; 3, volumes); the reason when the settings are invalid (``"cannot read:
    ..."``).
    """
    try:
        src = source_from_layers(layers, channel_axis)
        if spatial_dims == 3:
            src = src.as_volumes()
    except (ValueError, TypeError) as exc:
        return f"cannot read: {exc}"
    if src.rgb:
        what = "RGB"
    elif src.has_channels:
        what = f"{int(src.data.shape[-1])} channels"
    else:
        what = "1 channel"
    size = "x".join(str(n) for n in src.out_shape[-src.spatial_dims:])
    kind = "volume" if src.spatial_dims == 3 else "image"
    if src.n_slices > 1:
        stack = "x".join(str(n) for n in src.stack_shape)
        parts = "volumes" if src.spatial_dims == 3 else "slices"
        return (f"{src.n_slices} {parts} ({stack}) of {size}, {what}, one at a time, "
                "ids aligned")
    return f"one {size} {kind}, {what}"


def layer_source(layer: Any, channel_axis: int | None) -> LayerSource:
    """One layer's :class:`LayerSource`, ignoring ``channel_axis`` where it cannot apply.

    The channel axis applies to multichannel layers: an RGB layer's channels are its last
    axis and a 2-D layer has none, so one setting serves a mixed selection of layers.
    """
    data = getattr(layer, "data", None)
    if getattr(layer, "rgb", False) or (data is not None and getattr(data, "ndim", 3) < 3):
        channel_axis = None
    return source_from_layers(layer, channel_axis)


def layer_channels(layer: Any, channel_axis: int | None = None, viewer: Any = None) -> int:
    """Number of channels a model sees in ``layer`` (RGBA counts 3), without reading pixels."""
    src = layer_source(resolve_layer(viewer, layer), channel_axis)
    first = src.lazy_slice(next(src.indices()))
    arr, _ = channels_last(first, src.slice_channel_axis)
    return int(arr.shape[-1])


@dataclass(frozen=True)
class LayerImages:
    """A training collection read from Image layers.

    Attributes
    ----------
    arrays : list
        Raw ``(H, W, C)`` views, one per 2-D image (dask data stays lazy).
    names : list of str
        ``"<layer>"`` or ``"<layer>[i, ...]"`` for the slices of a stack.
    n_channels : int
        Channels of every image.
    rgb : bool
        Whether the images are RGB.
    layer_names : tuple of str
        The source layers.
    """

    arrays: list[Any]
    names: list[str]
    n_channels: int
    rgb: bool
    layer_names: tuple[str, ...]


def images_from_layers(layers: Any, channel_axis: int | None = None,
                       viewer: Any = None) -> LayerImages:
    """Read Image layers as a training collection (every 2-D slice of a stack is one image).

    Parameters
    ----------
    layers : napari.layers.Image, str or sequence of them
        The layers (names need ``viewer``).
    channel_axis : int, optional
        Channel axis of the (non-RGB) multichannel layers; RGB and 2-D layers ignore it.
    viewer : napari viewer, optional
        To resolve layer names.

    Returns
    -------
    LayerImages

    Raises
    ------
    ValueError, TypeError
        For no layers, non-Image layers, a bad channel axis, images too small, or
        images with different numbers of channels.
    """
    if not isinstance(layers, (list, tuple)):
        layers = [layers]
    layers = [resolve_layer(viewer, lay) for lay in layers]
    if not layers:
        raise ValueError("no Image layer selected: choose one or more layers to train on")
    names_seen = [getattr(lay, "name", "") for lay in layers]
    if len(set(map(id, layers))) != len(layers):
        raise ValueError(f"a layer was given twice: {names_seen}")
    arrays: list[Any] = []
    names: list[str] = []
    rgbs: list[bool] = []
    counts: dict[str, int] = {}
    for lay in layers:
        src = layer_source(lay, channel_axis)
        for idx in src.indices():
            name = f"{lay.name}[{', '.join(map(str, idx))}]" if idx else str(lay.name)
            try:
                arr, is_rgb = channels_last(src.lazy_slice(idx), src.slice_channel_axis)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"layer {lay.name!r}: {exc}") from exc
            arrays.append(arr)
            names.append(name)
            rgbs.append(is_rgb)
            counts.setdefault(str(lay.name), int(arr.shape[-1]))
    if len(set(counts.values())) > 1:
        raise ValueError(
            "the layers have different numbers of channels ("
            + ", ".join(f"{k!r}: {v}" for k, v in counts.items())
            + "); a model needs one channel layout (set the channel axis, or train on "
            "layers of one kind)"
        )
    return LayerImages(arrays, names, int(arrays[0].shape[-1]), all(rgbs),
                       tuple(str(lay.name) for lay in layers))
