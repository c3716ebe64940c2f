"""magicgui controls generated from a method's parameter declaration (``Method.param_infos``)."""

from __future__ import annotations

import math
from typing import Any

from magicgui.backends._qtpy.widgets import QBaseRangedWidget
from magicgui.widgets import CheckBox, ComboBox, LineEdit, SpinBox, Widget
from magicgui.widgets.bases import RangedWidget
from qtpy.QtGui import QValidator
from qtpy.QtWidgets import QAbstractSpinBox, QDoubleSpinBox

from napari_useg.core.params import ParamInfo

__all__ = ["control_for", "float_control"]

_INT_LIMIT = 2**53  # QLargeIntSpinBox handles this range
_FLOAT_LIMIT = 1e12
_FLOAT_DECIMALS = 15  # Qt rounds spin-box values to this many decimals


class _SciDoubleSpinBox(QDoubleSpinBox):
    """A QDoubleSpinBox for values from 1e-12 to 1e12: shows ``%g``, accepts ``1e-5``.

    Arrow keys step adaptively (by about a tenth of the value's order of magnitude), so
    learning rates and weights alike are easy to nudge.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setDecimals(_FLOAT_DECIMALS)
        self.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple:
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            partial = t == "" or t[-1] in "eE+-."
            state = QValidator.State.Intermediate if partial else QValidator.State.Invalid
            return state, text, pos
        ok = self.minimum() <= v <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.value())


class _SciBackend(QBaseRangedWidget):
    """magicgui backend wrapping :class:`_SciDoubleSpinBox`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_SciDoubleSpinBox, **kwargs)

    def _mgui_set_value(self, value: Any) -> None:
        super()._mgui_set_value(float(value))


def float_control(value: float, *, low: float | None = None, high: float | None = None,
                  **kwargs: Any) -> RangedWidget:
    """A magicgui float spin box for any magnitude (``%g`` display, scientific input)."""
    lo = float(low) if low is not None else -_FLOAT_LIMIT
    hi = float(high) if high is not None else _FLOAT_LIMIT
    return RangedWidget(widget_type=_SciBackend, value=float(value), min=lo, max=hi,
                        step=None, **kwargs)


def control_for(info: ParamInfo, value: Any = None) -> Widget:
    """A magicgui widget for one declared parameter, set to ``value`` (default: its default).

    ``int`` and ``float`` give spin boxes bounded by the declared range (floats show
    ``%g`` and accept scientific notation, so ``1e-5`` and ``500`` both fit), ``bool`` a
    check box, ``str`` with choices a combo box (free ``str`` a line edit). The help text
    is the tooltip; the widget's ``name`` is the parameter's name.
    """
    value = info.default if value is None else value
    common = {"name": info.name, "label": info.name, "tooltip": info.help}
    if info.type is bool:
        return CheckBox(value=bool(value), **common)
    if info.type is str:
        if info.choices:
            return ComboBox(value=value, choices=list(info.choices), **common)
        return LineEdit(value=str(value), **common)
    if info.type is int:
        lo = int(math.ceil(info.low)) if info.low is not None else -_INT_LIMIT
        hi = int(math.floor(info.high)) if info.high is not None else _INT_LIMIT
        return SpinBox(value=int(value), min=lo, max=hi, step=1, **common)
    if info.type is float:
        return float_control(value, low=info.low, high=info.high, **common)
    raise TypeError(f"no control for parameter {info.name!r} of type {info.type!r}")
