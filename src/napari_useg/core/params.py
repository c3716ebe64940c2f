"""Parameter declarations shared by the Python API, the CLI and the napari widgets.

Each method declares its parameters exactly once, as a frozen dataclass whose
fields are made with :func:`param`. The field metadata (help text, range,
choices) is what the CLI turns into ``--name`` options and what the widgets turn
into controls, so no parameter list is ever written a second time.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class MyParams:
...     k: int = param(3, "number of clusters", low=2, high=256)
>>> p = build_params(MyParams, {"k": "5"})
>>> p.k
5
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

__all__ = ["param", "ParamInfo", "param_infos", "build_params", "params_to_dict"]


@dataclass(frozen=True)
class ParamInfo:
    """Everything a front end needs to show and validate one parameter.

    Attributes
    ----------
    name : str
        Python identifier of the parameter (``--name-with-dashes`` on the CLI).
    type : type
        One of ``int``, ``float``, ``bool``, ``str``.
    default : object
        Default value (before any preset is applied).
    help : str
        One-line description.
    low, high : float or None
        Inclusive bounds for numbers; ``None`` for unbounded.
    choices : tuple or None
        Allowed values for strings.
    """

    name: str
    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None

    def convert(self, value: Any) -> Any:
        """Convert ``value`` (possibly a CLI string) to this parameter's type and validate it.

        Raises
        ------
        TypeError
            If the value cannot be converted to the declared type.
        ValueError
            If the value is out of range or not one of the choices.
        """
        v = _coerce(self.name, self.type, value)
        if self.type in (int, float):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"parameter {self.name!r} must be finite, got {value!r}")
            if self.low is not None and v < self.low:
                raise ValueError(
                    f"parameter {self.name!r} must be >= {self.low}, got {value!r}"
                )
            if self.high is not None and v > self.high:
                raise ValueError(
                    f"parameter {self.name!r} must be <= {self.high}, got {value!r}"
                )
        if self.choices is not None and v not in self.choices:
            raise ValueError(
                f"parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}"
            )
        return v


def _coerce(name: str, typ: type, value: Any) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise TypeError(f"parameter {name!r} expects true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise TypeError(f"parameter {name!r} expects an integer, got {value!r}")
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
            return _coerce(name, typ, value.item())
        raise TypeError(f"parameter {name!r} expects an integer, got {value!r}")
    if typ is float:
        if isinstance(value, bool):
            raise TypeError(f"parameter {name!r} expects a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(f"parameter {name!r} expects a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, str):
            raise TypeError(f"parameter {name!r} expects a string, got {value!r}")
        return value
    raise TypeError(f"unsupported parameter type {typ!r} for {name!r}")  # pragma: no cover


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple | list | None = None,
) -> Any:
    """Declare one method parameter as a dataclass field.

    Parameters
    ----------
    default : object
        Default value.
    help : str
        One-line description shown by the CLI and the widgets.
    low, high : float, optional
        Inclusive bounds for numeric parameters.
    choices : sequence, optional
        Allowed values for string parameters.

    Returns
    -------
    dataclasses.Field
        A field to assign in a ``@dataclass(frozen=True)`` class body.
    """
    meta = {
        "help": help,
        "low": low,
        "high": high,
        "choices": tuple(choices) if choices is not None else None,
    }
    return dataclasses.field(default=default, metadata=meta)


def param_infos(params_cls: type) -> list[ParamInfo]:
    """List the declared parameters of a parameter dataclass, in declaration order."""
    hints = get_type_hints(params_cls)
    out = []
    for f in fields(params_cls):
        typ = hints[f.name]
        if typ not in (int, float, bool, str):
            raise TypeError(f"{params_cls.__name__}.{f.name}: unsupported type {typ!r}")
        md = f.metadata
        out.append(
            ParamInfo(
                name=f.name,
                type=typ,
                default=f.default,
                help=md.get("help", ""),
                low=md.get("low"),
                high=md.get("high"),
                choices=md.get("choices"),
            )
        )
    return out


def build_params(
    params_cls: type,
    values: Mapping[str, Any] | None = None,
    *,
    method: str = "",
) -> Any:
    """Build a validated parameter object from defaults overridden by ``values``.

    Raises
    ------
    TypeError
        For an unknown parameter name or a value of the wrong type.
    ValueError
        For a value out of range.
    """
    infos = {p.name: p for p in param_infos(params_cls)}
    values = dict(values or {})
    unknown = sorted(set(values) - set(infos))
    if unknown:
        where = f" for method {method!r}" if method else ""
        raise TypeError(
            f"unknown parameter(s) {unknown}{where}; known: {sorted(infos)}"
        )
    kwargs = {name: infos[name].convert(v) for name, v in values.items()}
    obj = params_cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        check()
    return obj


def params_to_dict(params: Any) -> dict[str, Any]:
    """Plain ``dict`` of a parameter object (JSON-serialisable values)."""
    return dataclasses.asdict(params)
