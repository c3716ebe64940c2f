"""The registry of segmentation methods.

A method is one module in :mod:`napari_useg.methods` that builds a
:class:`Method` and passes it to :func:`register` at import time. The registry
imports every module of that package on first use, so adding a method is adding
a file: the Python API, the CLI and the napari widgets all read the same
:class:`Method` (its parameter dataclass, presets and extra inputs).

Two shapes of method exist:

* ``kind="image"``: fitted on the image it segments (Kanezaki 2018, DFC, MMT,
  classical baselines). ``run(image, params, ctx)`` is an iterator of
  :class:`~napari_useg.core.progress.Progress` whose last item holds the labels.
* ``kind="dataset"``: fitted on a collection, then applied to other images
  (IIC, InMARS). They provide ``fit(images, params, ctx)`` (an iterator whose
  last item carries the fitted model in ``info["model"]``) and also a ``run``
  that fits on the one image given and predicts it, so :func:`segment` works for
  every method.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from napari_useg.core.params import ParamInfo, build_params, param_infos
from napari_useg.core.resources import pixel_memory

__all__ = [
    "Method",
    "InputInfo",
    "RunContext",
    "register",
    "get_method",
    "list_methods",
    "all_methods",
]


@dataclass(frozen=True)
class InputInfo:
    """An extra array input of a method (not a scalar parameter).

    Attributes
    ----------
    name : str
        Keyword name in :func:`napari_useg.segment` (e.g. ``"scribbles"``).
    help : str
        One-line description.
    layer_type : str
        napari layer type the widgets offer for it (``"labels"`` or ``"image"``).
    required : bool
        Whether the method refuses to run without it.
    """

    name: str
    help: str
    layer_type: str = "labels"
    required: bool = False


@dataclass
class RunContext:
    """What a method's iterator needs besides the image and the parameters.

    Attributes
    ----------
    seed : int
        Seed for every random choice (network initialisation, k-means seeding).
    device : torch.device
        Where tensors live (``cpu`` for non-torch methods).
    preview_every : int
        Attach the current label map to a snapshot every this many steps
        (0: only to the final one).
    inputs : dict
        Extra array inputs declared by the method (see :class:`InputInfo`).
    spacing : tuple of float
        Pixel/voxel size along each spatial axis (unit spacing when the user gave none).
    """

    seed: int = 0
    device: Any = None
    preview_every: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)
    spacing: tuple[float, ...] = (1.0, 1.0)

    def wants_preview(self, step: int, total: int) -> bool:
        """True when the snapshot of ``step`` should carry a label map."""
        if step >= total:
            return True
        return self.preview_every > 0 and step % self.preview_every == 0


@dataclass(frozen=True)
class Method:
    """Declaration of one segmentation method.

    Attributes
    ----------
    name : str
        Registry key (``method=`` in the API, ``--method`` on the CLI).
    title : str
        Short human name for menus.
    summary : str
        One paragraph: what it does.
    reference : str
        The paper it implements.
    params : type
        Frozen dataclass of parameters declared with :func:`napari_useg.core.params.param`.
    run : callable
        ``run(image: PreparedImage, params, ctx: RunContext) -> Iterator[Progress]``.
    presets : mapping
        Named parameter overrides, e.g. ``{"paper": {...}, "fast": {...}}``.
    default_preset : str or None
        Preset used when the caller names none.
    kind : {"image", "dataset"}
        Per-image or dataset-level method.
    uses_torch : bool
        Whether ``device`` matters.
    inputs : tuple of InputInfo
        Extra array inputs.
    fit : callable or None
        Dataset-level methods: ``fit(images, params, ctx) -> Iterator[Progress]``.
    memory : callable or None
        ``memory(shape, n_channels, params) -> int``: estimated peak bytes of a run on
        one image, or on one volume when ``shape`` is ``(Z, Y, X)`` (default:
        :func:`napari_useg.core.resources.pixel_memory`).
    volumes : bool
        Whether ``run`` also takes a volume (``(Z, Y, X, C)`` prepared data,
        ``spatial_dims=3``); other methods refuse volumes with a clear error.
    volume_preset : str or None
        Preset used for a volume when the caller names none (``default_preset`` if ``None``).
    lazy_volumes : bool
        Whether ``run`` reads a volume only a window at a time, so that a lazy volume
        (dask, zarr, memmap) is passed as a
        :class:`~napari_useg.core.lazy_volume.LazyVolume` rather than read into memory;
        ``memory`` then takes ``lazy=True``.
    """

    name: str
    title: str
    summary: str
    reference: str
    params: type
    run: Callable[..., Iterator[Any]]
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_preset: str | None = None
    kind: str = "image"
    uses_torch: bool = False
    inputs: tuple[InputInfo, ...] = ()
    fit: Callable[..., Iterator[Any]] | None = None
    memory: Callable[[tuple[int, ...], int, Any], int] | None = None
    volumes: bool = False
    volume_preset: str | None = None
    lazy_volumes: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("image", "dataset"):
            raise ValueError(f"method {self.name!r}: kind must be 'image' or 'dataset'")
        if self.lazy_volumes and not (self.volumes and self.memory is not None):
            raise ValueError(f"method {self.name!r}: lazy_volumes needs volumes=True and a "
                             "memory estimate that takes lazy=True")
        if self.default_preset is not None and self.default_preset not in self.presets:
            raise ValueError(
                f"method {self.name!r}: unknown default preset {self.default_preset!r}"
            )
        if self.volume_preset is not None and self.volume_preset not in self.presets:
            raise ValueError(
                f"method {self.name!r}: unknown volume preset {self.volume_preset!r}"
            )
        names = {p.name for p in param_infos(self.params)}
        for pname, values in self.presets.items():
            bad = set(values) - names
            if bad:
                raise ValueError(
                    f"method {self.name!r}: preset {pname!r} sets unknown {sorted(bad)}"
                )
            build_params(self.params, values, method=self.name)  # presets must validate
        object.__setattr__(self, "presets", MappingProxyType(dict(self.presets)))

    @property
    def param_infos(self) -> list[ParamInfo]:
        """Declared parameters, in order."""
        return param_infos(self.params)

    def preset_values(self, preset: str | None) -> dict[str, Any]:
        """Parameter overrides of ``preset`` (``None``: the default preset)."""
        if preset is None:
            preset = self.default_preset
        if preset is None:
            return {}
        if preset not in self.presets:
            raise ValueError(
                f"method {self.name!r} has no preset {preset!r}; "
                f"presets: {sorted(self.presets) or 'none'}"
            )
        return dict(self.presets[preset])

    def defaults(self, preset: str | None = None) -> dict[str, Any]:
        """All parameter values under ``preset`` (declared defaults + preset overrides)."""
        values = {p.name: p.default for p in self.param_infos}
        values.update(self.preset_values(preset))
        return values

    def build(self, preset: str | None = None, values: Mapping[str, Any] | None = None) -> Any:
        """Validated parameter object: defaults, then ``preset``, then explicit ``values``."""
        merged = self.preset_values(preset)
        merged.update(values or {})
        return build_params(self.params, merged, method=self.name)

    def preset_for(self, preset: str | None, spatial_dims: int = 2) -> str | None:
        """The preset a run uses: ``preset``, else the volume or the default preset."""
        if preset is not None:
            return preset
        if spatial_dims == 3 and self.volume_preset is not None:
            return self.volume_preset
        return self.default_preset

    def memory_needed(self, shape: tuple[int, ...], n_channels: int, params: Any, *,
                      lazy: bool = False) -> int:
        """Estimated peak bytes of running on one image (or volume) of ``shape``
        (``lazy``: a volume read a window at a time, for a method with ``lazy_volumes``)."""
        if lazy:
            if not self.lazy_volumes:
                raise ValueError(f"method {self.name!r} does not read volumes lazily")
            return int(self.memory(shape, n_channels, params, lazy=True))  # type: ignore[misc]
        if self.memory is not None:
            return int(self.memory(shape, n_channels, params))
        return pixel_memory(shape, n_channels)

    def check_inputs(self, inputs: Mapping[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
        """Validate the extra array inputs against the image's spatial ``shape``."""
        known = {i.name: i for i in self.inputs}
        unknown = sorted(set(inputs) - set(known))
        if unknown:
            raise TypeError(f"method {self.name!r} takes no input(s) {unknown}")
        out: dict[str, Any] = {}
        for name, info in known.items():
            value = inputs.get(name)
            if value is None:
                if info.required:
                    raise ValueError(f"method {self.name!r} needs the input {name!r}")
                continue
            arr = np.asarray(value)
            if info.layer_type == "labels":
                if arr.shape != tuple(shape):
                    raise ValueError(
                        f"{name} must have the image's spatial shape {tuple(shape)}, "
                        f"got {arr.shape}"
                    )
                if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
                    raise TypeError(f"{name} must hold integer labels, got dtype {arr.dtype}")
                if arr.size and arr.min() < 0:
                    raise ValueError(f"{name} must not hold negative labels")
            out[name] = arr
        return out


_REGISTRY: dict[str, Method] = {}
_BROKEN: dict[str, str] = {}  # module name -> import error, reported by get_method
_LOCK = threading.Lock()
_DISCOVERED = False


def register(method: Method) -> Method:
    """Add ``method`` to the registry (called by each module of :mod:`napari_useg.methods`)."""
    existing = _REGISTRY.get(method.name)
    if existing is not None and existing is not method and existing.run is not method.run:
        raise ValueError(f"a method named {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    with _LOCK:
        if _DISCOVERED:
            return
        from napari_useg import methods as pkg

        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            try:
                importlib.import_module(f"{pkg.__name__}.{info.name}")
            except Exception as exc:  # noqa: BLE001 - one broken method must not hide the others
                _BROKEN[info.name] = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"napari-useg: method module {info.name!r} failed to import and is "
                    f"unavailable ({_BROKEN[info.name]})",
                    RuntimeWarning,
                    stacklevel=2,
                )
        _DISCOVERED = True


def all_methods() -> dict[str, Method]:
    """Every registered method by name."""
    _discover()
    return dict(_REGISTRY)


def list_methods() -> list[str]:
    """Names of all registered methods, sorted.

    Examples
    --------
    >>> "kanezaki" in list_methods()
    True
    """
    return sorted(all_methods())


def get_method(name: str) -> Method:
    """Look a method up by name.

    Raises
    ------
    ValueError
        If no method has that name (the message lists the known ones).
    """
    methods = all_methods()
    if not isinstance(name, str):
        raise TypeError(f"method must be a string, got {name!r}")
    key = name.strip().lower()
    if key not in methods and key in _BROKEN:
        raise ValueError(f"method {name!r} is unavailable: its module failed to import "
                         f"({_BROKEN[key]})")
    if key not in methods:
        raise ValueError(f"unknown method {name!r}; available: {sorted(methods)}")
    return methods[key]
