"""The run-option controls of the widgets, generated from the RunOptions field declarations.

Both widgets offer some of :class:`~napari_useg.core.options.RunOptions` (preset, seed,
device, channel axis, preview cadence) or :class:`~napari_useg.core.options.FitOptions`
(plus normalisation and checkpoints). :class:`RunControls` builds one control per
option from its declaration (:func:`~napari_useg.core.options.option_infos`: default,
help, choices) and reads them back as the options object, whose construction checks
every value, as the command line's options are generated from the same declarations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from magicgui.widgets import ComboBox, SpinBox
from magicgui.widgets.bases import ValueWidget

from napari_useg.core.device import available_devices
from napari_useg.core.options import MAX_RUNS, OptionInfo, RunOptions, option_infos

__all__ = ["RunControls", "NO_AXIS", "NO_PRESET", "axis_choices", "preset_choices"]

#: The channel-axis choice meaning "no channel axis" (``None``).
NO_AXIS = "none"
#: The preset choice meaning "the declared defaults" (``None``): a method's only choice when
#: it has no presets, its first when none of its presets is the default.
NO_PRESET = "(defaults)"

#: Ranges of the integer options' spin boxes (the values are checked by the options).
_RANGES = {"seed": (0, 2**31 - 1), "preview_every": (0, 10000),
           "checkpoint_every": (1, 100000), "runs": (1, MAX_RUNS)}
#: Options whose choices depend on the widget's state (the method, the layers).
_DYNAMIC = ("preset", "channel_axis")


def preset_choices(method: Any) -> list[str]:
    """A method's preset choices: its presets, after :data:`NO_PRESET` if none is the default.

    A method whose presets are all variants (``otsu``: ``watershed``, ``background``) runs
    with none by default; offering only its presets would show the first one chosen while
    the controls hold the declared defaults.
    """
    if method is None or not method.presets:
        return [NO_PRESET]
    first = [] if method.default_preset is not None else [NO_PRESET]
    return first + list(method.presets)


def axis_choices(layer: Any) -> list[tuple[str, Any]]:
    """Channel-axis choices for a layer: ``none`` and, for 3-D+ non-RGB data, each axis."""
    if layer is not None and layer.rgb:
        return [("RGB (last axis)", NO_AXIS)]
    out: list[tuple[str, Any]] = [(NO_AXIS, NO_AXIS)]
    if layer is not None and layer.data.ndim >= 3:
        out += [(f"{i} (size {n})", i) for i, n in enumerate(layer.data.shape)]
    return out


def _control(info: OptionInfo, *, label: str, tooltip: str, value: Any,
             choices: Callable[..., Any] | None) -> ValueWidget:
    if info.name in _DYNAMIC:
        if choices is None:
            raise ValueError(f"the {info.name!r} control needs its choices (a callable)")
        return ComboBox(label=label, tooltip=tooltip, choices=choices)
    if info.name == "device":
        return ComboBox(label=label, tooltip=tooltip, choices=available_devices(), value=value)
    if info.choices:
        return ComboBox(label=label, tooltip=tooltip, choices=list(info.choices), value=value)
    if isinstance(info.default, int) and not isinstance(info.default, bool):
        low, high = _RANGES.get(info.name, (0, 2**31 - 1))
        return SpinBox(label=label, tooltip=tooltip, min=low, max=high, value=value)
    raise ValueError(f"no widget control for the run option {info.name!r}")


class RunControls:
    """Controls for some run options, built from their declarations.

    Parameters
    ----------
    cls : type
        :class:`~napari_useg.core.options.RunOptions` or
        :class:`~napari_useg.core.options.FitOptions`.
    names : sequence of str
        The options offered, in order.
    choices : mapping, optional
        Callables giving the choices of ``preset`` (method presets, or
        :data:`NO_PRESET`) and ``channel_axis`` (see :func:`axis_choices`).
    labels, tooltips, values : mapping, optional
        Per option: a label, tooltip or starting value other than the declared name,
        help or default.
    """

    def __init__(self, cls: type[RunOptions], names: Sequence[str], *,
                 choices: Mapping[str, Callable[..., Any]] | None = None,
                 labels: Mapping[str, str] | None = None,
                 tooltips: Mapping[str, str] | None = None,
                 values: Mapping[str, Any] | None = None) -> None:
        infos = {info.name: info for info in option_infos(cls)}
        unknown = sorted(set(names) - set(infos))
        if unknown:
            raise ValueError(f"{cls.__name__} has no option(s) {unknown}")
        choices, labels = dict(choices or {}), dict(labels or {})
        tooltips, values = dict(tooltips or {}), dict(values or {})
        self.cls = cls
        self.widgets: dict[str, ValueWidget] = {
            name: _control(infos[name], label=labels.get(name, name.replace("_", " ")),
                           tooltip=tooltips.get(name, infos[name].help),
                           value=values.get(name, infos[name].default),
                           choices=choices.get(name))
            for name in names
        }

    def __getitem__(self, name: str) -> ValueWidget:
        return self.widgets[name]

    def __iter__(self) -> Iterator[ValueWidget]:
        return iter(self.widgets.values())

    def values(self) -> dict[str, Any]:
        """The controls' values as option values (``none``/``(defaults)`` become ``None``)."""
        out: dict[str, Any] = {}
        for name, w in self.widgets.items():
            value = w.value
            if name == "channel_axis":
                value = None if value in (None, NO_AXIS) else int(value)
            elif name == "preset":
                value = None if value in (None, NO_PRESET) else value
            out[name] = value
        return out

    def options(self, **given: Any) -> RunOptions:
        """The options object (checked) from the controls, with ``given`` values over them."""
        return self.cls(**{**self.values(), **given})
