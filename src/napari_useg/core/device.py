"""Choosing the torch device: ``"auto"`` picks CUDA, then MPS, else the CPU."""

from __future__ import annotations

import torch

__all__ = ["available_devices", "resolve_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Device names usable on this machine, ``"auto"`` first.

    Returns
    -------
    list of str
        E.g. ``["auto", "cpu"]`` on a CPU-only machine, ``["auto", "cpu", "cuda"]`` with a GPU.
    """
    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if _mps_available():
        out.append("mps")
    return out


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device`, checking that it exists.

    Parameters
    ----------
    device : str or torch.device or None
        ``"auto"`` (or ``None``) picks CUDA, then MPS, else CPU. ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` and ``"mps"`` are honoured when present.

    Raises
    ------
    ValueError
        If the device name is not understood or the device is not available here.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"unknown device {device!r}; use one of {available_devices()}"
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available on this machine; "
                f"available: {available_devices()}"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"device {device!r} requested but MPS is not available on this machine; "
                f"available: {available_devices()}"
            )
        return dev
    raise ValueError(f"unsupported device {device!r}; use one of {available_devices()}")
