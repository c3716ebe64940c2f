"""Parameter sweeps: the grid of method settings an evaluation scores (ODS/OIS choose among them).

A sweep is written ``NAME=V1,V2,...`` (``--sweep`` on the command line); several sweeps
give the grid of all value combinations. Every setting is checked against the method's
declaration before any computation starts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from napari_useg.core.registry import Method

__all__ = ["parse_sweeps", "setting_label", "method_settings"]


def parse_sweeps(sweeps: Sequence[str], method: Method) -> list[dict[str, Any]]:
    """Settings of a ``name=v1,v2`` list: the grid of all value combinations.

    Parameters
    ----------
    sweeps : sequence of str
        ``"NAME=V1,V2,..."`` each (dashes in ``NAME`` read as underscores).
    method : Method
        The method whose parameters are swept.

    Returns
    -------
    list of dict
        One dictionary of converted values per setting (``[{}]`` without sweeps).

    Raises
    ------
    ValueError
        For malformed sweeps, unknown parameters or invalid values (all checked now).
    """
    infos = {i.name: i for i in method.param_infos}
    axes: list[tuple[str, list[Any]]] = []
    for s in sweeps:
        name, sep, values = s.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise ValueError(f"--sweep expects NAME=V1,V2,..., got {s!r}")
        if name not in infos:
            raise ValueError(f"--sweep: method {method.name!r} has no parameter {name!r}; "
                             f"parameters: {sorted(infos)}")
        if any(n == name for n, _ in axes):
            raise ValueError(f"--sweep: parameter {name!r} given twice")
        vals = [infos[name].convert(v.strip()) for v in values.split(",") if v.strip()]
        axes.append((name, vals))
    if not axes:
        return [{}]
    names = [n for n, _ in axes]
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(v for _, v in axes))]


def setting_label(params: Mapping[str, Any]) -> str:
    """The name of a setting in tables: ``"name=value, ..."`` (``"defaults"`` when empty)."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _typed(method: Method, name: str, value: Any) -> Any:
    for info in method.param_infos:
        if info.name == name:
            return info.convert(value)
    return value


def method_settings(method: Method, fixed: Mapping[str, Any], sweeps: Sequence[str],
                    preset: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every setting of a run (fixed parameters plus the sweep grid), checked, and their labels.

    Parameters
    ----------
    method : Method
    fixed : mapping
        Parameters shared by every setting.
    sweeps : sequence of str
        See :func:`parse_sweeps`.
    preset : str, optional
        Preset the settings are built on (checked with it).

    Returns
    -------
    settings : list of dict
        Method parameters of each setting, converted to their declared types.
    labels : list of str
        Name of each setting (the swept values only).

    Raises
    ------
    ValueError, TypeError
        For a parameter both fixed and swept, or any invalid value.
    """
    grid = parse_sweeps(sweeps, method)
    overlap = set(fixed) & set(grid[0])
    if overlap:
        raise ValueError(f"parameter(s) {sorted(overlap)} given both fixed and in --sweep")
    settings = [{**fixed, **g} for g in grid]
    for s in settings:  # validate every setting before any compute
        method.build(preset, s)
    settings = [{k: _typed(method, k, v) for k, v in s.items()} for s in settings]
    return settings, [setting_label(g) for g in grid]
