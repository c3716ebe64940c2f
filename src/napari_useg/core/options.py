"""Run options: *how* a method runs, declared once.

A method's parameters say what it computes (:mod:`napari_useg.core.params`); the run
options say how a run goes: seed, device, preset, channel axis, preview cadence and,
for dataset-level training, normalisation and checkpoints. They are declared here,
once, as the fields of :class:`RunOptions` and :class:`FitOptions`; building one checks
every value, and the Python API, the napari jobs, batch, evaluate and every command-line
command build theirs from these classes (the CLI options are generated from the field
declarations, as method parameters are).

Examples
--------
>>> opts = RunOptions(seed=3, device="cpu")
>>> opts.seed, opts.torch_device()
(3, device(type='cpu'))
>>> RunOptions(seed=-1)
Traceback (most recent call last):
...
ValueError: seed must be in [0, 2**63), got -1
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from napari_useg.core.device import resolve_device

__all__ = ["RunOptions", "FitOptions", "OptionInfo", "option_infos", "options_from_keywords",
           "check_seed",
           "check_count", "check_spacing", "NORMALISATIONS", "RESULTS", "COMBINE", "SEGMENT_ONLY",
           "MAX_RUNS"]

#: How a dataset-level model scales raw values to [0, 1] (see :mod:`napari_useg.core.model`).
NORMALISATIONS = ("auto", "dataset", "per_image", "per_image_dark")
#: What a per-image run returns: the method's classes, or countable objects of one class.
RESULTS = ("classes", "instances")
#: How ``runs`` > 1 become one result: their consensus, or one run chosen by how much its
#: foreground stands out from its background (:mod:`napari_useg.core.selection`).
COMBINE = ("consensus", "contrast")
#: Options only ``napari-useg segment`` offers (volumes and objects); other commands skip them.
SEGMENT_ONLY = ("spatial_dims", "spacing", "result", "foreground", "split_objects",
                "min_object_size", "runs", "combine")
#: Most runs a consensus may combine.
MAX_RUNS = 64


def option(default: Any, help: str, *, flag: str | None = None, metavar: str | None = None,
           choices: tuple | None = None, cli: bool = True, type: Any = None,
           nargs: int | None = None) -> Any:
    """Declare one run option as a dataclass field (help text and command-line flag).

    ``type`` (``int``, ``float`` or ``bool``) and ``nargs`` say how the command line
    parses the value (a string otherwise).
    """
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": choices, "cli": cli,
            "type": type, "nargs": nargs}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionInfo:
    """What a front end needs to offer one run option.

    Attributes
    ----------
    name : str
        Field name (``--name-with-dashes`` on the command line unless ``flag`` says otherwise).
    default : object
        Default value.
    help : str
        One-line description.
    flag : str
        Command-line flag.
    metavar : str or None
        Placeholder shown in ``--help``.
    choices : tuple or None
        Allowed values.
    cli : bool
        Whether the command line offers it.
    type : type or None
        How the command line parses the value (``int``, ``float``, ``bool``; ``None``: str).
    nargs : int or None
        Number of values the command-line option takes (``None``: one).
    """

    name: str
    default: Any
    help: str
    flag: str
    metavar: str | None
    choices: tuple | None
    cli: bool
    type: Any = None
    nargs: int | None = None


def option_infos(cls: type) -> list[OptionInfo]:
    """The declared options of :class:`RunOptions` or :class:`FitOptions`, in order."""
    out = []
    for f in fields(cls):
        md = f.metadata
        out.append(OptionInfo(name=f.name, default=f.default, help=md.get("help", ""),
                              flag=md.get("flag") or "--" + f.name.replace("_", "-"),
                              metavar=md.get("metavar"), choices=md.get("choices"),
                              cli=bool(md.get("cli", True)), type=md.get("type"),
                              nargs=md.get("nargs")))
    return out


def check_seed(seed: Any) -> int:
    """A seed as a Python ``int`` in ``[0, 2**63)``; ``TypeError``/``ValueError`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    return int(seed)


def check_count(name: str, value: Any, *, low: int = 0) -> int:
    """An integer option ``>= low`` as a Python ``int``; ``TypeError``/``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_spacing(spacing: Any, spatial_dims: int) -> tuple[float, ...] | None:
    """``spacing`` as a tuple of ``spatial_dims`` positive finite floats (``None`` stays).

    Examples
    --------
    >>> check_spacing([2, 1, 1], 3)
    (2.0, 1.0, 1.0)
    """
    if spacing is None:
        return None
    if isinstance(spacing, (str, bytes)) or not hasattr(spacing, "__len__"):
        raise TypeError(f"spacing must be a sequence of {spatial_dims} numbers (one per "
                        f"spatial axis), got {spacing!r}")
    try:
        out = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        raise TypeError(f"spacing must hold numbers, got {spacing!r}") from None
    if len(out) != spatial_dims:
        raise ValueError(f"spacing needs {spatial_dims} values (one per spatial axis, "
                         f"{'ZYX' if spatial_dims == 3 else 'YX'}), got {len(out)}: {spacing!r}")
    if not all(np.isfinite(v) and v > 0 for v in out):
        raise ValueError(f"spacing values must be positive and finite, got {spacing!r}")
    return out


def _check_device(device: Any) -> str:
    if isinstance(device, torch.device):
        return str(device)
    if device is None:
        return "auto"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    return device


@dataclass(frozen=True)
class RunOptions:
    """How one run goes (every front door builds one of these; building it checks it).

    Attributes
    ----------
    seed : int
        Seed of every random choice.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    preset : str or None
        Named parameter set; the method's default when ``None``.
    channel_axis : int or None
        Axis of the image holding channels.
    preview_every : int
        Attach the current labels to every ``preview_every``-th snapshot (0: final only).
    spatial_dims : {2, 3}
        2: the array is one 2-D image; 3: a ``(Z, Y, X)`` volume (``(Z, Y, X, C)`` once the
        channel axis is moved last) segmented as one volume.
    spacing : tuple of float or None
        Pixel/voxel size along each spatial axis (``(dz, dy, dx)`` for a volume); ``None``
        means isotropic unit spacing. Volume methods (supervoxels, watershed) honour it.
    result : {"classes", "instances"}
        The method's classes, or the connected objects of the foreground class
        (:mod:`napari_useg.core.instances`).
    foreground : int or None
        Class label (``1..n``) holding the objects; default: every class but the one
        owning the largest connected region (the background).
    split_objects : bool
        Split touching objects with a distance-transform watershed (honours ``spacing``).
    min_object_size : int
        Objects smaller than this many pixels/voxels are dropped.
    runs : int
        1: one run. ``K > 1``: the method runs with seeds ``seed .. seed + K - 1`` and the
        result is their consensus, with a per-pixel agreement map
        (:mod:`napari_useg.core.consensus`).
    combine : {"consensus", "contrast"}
        With ``runs`` > 1: ``"consensus"`` (the segments most runs agree on) or
        ``"contrast"`` (one run: of those whose foreground, every label but the one owning
        the largest connected region, stands out most from its background in intensity,
        the one agreeing best with the others; for objects on a background such as
        nuclei; :mod:`napari_useg.core.selection`). The agreement map compares the runs
        with the result either way.
    """

    seed: int = option(0, "seed of every random choice; the same seed, input, device and "
                          "thread count give the same labels", metavar="N")
    device: str = option("auto", "'auto' (CUDA, then MPS, else CPU), 'cpu', 'cuda', 'cuda:N' "
                                 "or 'mps'")
    preset: str | None = option(None, "named parameter set, e.g. 'paper' or 'fast' (the "
                                      "method's default when omitted)")
    channel_axis: int | None = option(None, "axis holding the channels (default: 2-D "
                                            "grayscale or RGB/RGBA)", metavar="AXIS")
    preview_every: int = option(10, "attach the current labels to every N-th progress "
                                    "snapshot (0: final only)", cli=False)
    spatial_dims: int = option(2, "2: one 2-D image; 3: a (Z, Y, X) volume segmented as one "
                                  "volume (methods that support volumes)", choices=(2, 3),
                               type=int, metavar="{2,3}")
    spacing: tuple[float, ...] | None = option(
        None, "pixel/voxel size per spatial axis, e.g. '2 0.5 0.5' for (dz, dy, dx) (default: "
              "the file's ImageJ/OME metadata, else 1)", type=float, nargs=-1,
        metavar="D")
    result: str = option("classes", "'classes' (the method's labels) or 'instances' (the "
                                    "connected objects of the foreground class)",
                         choices=RESULTS)
    foreground: int | None = option(None, "instances: class label holding the objects "
                                          "(default: all but the largest connected class)",
                                    type=int, metavar="LABEL")
    split_objects: bool = option(False, "instances: split touching objects with a distance-"
                                        "transform watershed honouring the spacing", type=bool)
    min_object_size: int = option(64, "instances: drop objects smaller than this many "
                                      "pixels/voxels", type=int, metavar="N")
    runs: int = option(1, "run the method with this many seeds (seed, seed+1, ...) and "
                          "return their consensus plus a per-pixel agreement map in [0, 1] "
                          "(an uncertainty output; K times the time)", type=int, metavar="K")
    combine: str = option("consensus", "with runs K > 1: 'consensus' (the segments most runs "
                                       "agree on) or 'contrast' (one run, chosen by how much "
                                       "its foreground stands out from its background in "
                                       "intensity: objects on a background, e.g. nuclei)",
                          choices=COMBINE)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check_seed(self.seed))
        if isinstance(self.spatial_dims, bool) or self.spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {self.spatial_dims!r}")
        object.__setattr__(self, "spatial_dims", int(self.spatial_dims))
        object.__setattr__(self, "spacing", check_spacing(self.spacing, self.spatial_dims))
        if self.result not in RESULTS:
            raise ValueError(f"result must be one of {RESULTS}, got {self.result!r}")
        if self.foreground is not None:
            object.__setattr__(self, "foreground",
                               check_count("foreground", self.foreground, low=1))
        if not isinstance(self.split_objects, (bool, np.bool_)):
            raise TypeError(f"split_objects must be True or False, got {self.split_objects!r}")
        object.__setattr__(self, "split_objects", bool(self.split_objects))
        object.__setattr__(self, "min_object_size",
                           check_count("min_object_size", self.min_object_size))
        runs = check_count("runs", self.runs, low=1)
        if runs > MAX_RUNS:
            raise ValueError(f"runs must be <= {MAX_RUNS}, got {runs}")
        if self.seed + runs - 1 >= 2**63:
            raise ValueError(f"seed + runs - 1 must be < 2**63 (seeds of the runs), got seed "
                             f"{self.seed} and runs {runs}")
        object.__setattr__(self, "runs", runs)
        if self.combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {self.combine!r}")
        object.__setattr__(self, "device", _check_device(self.device))
        if self.preset is not None and not isinstance(self.preset, str):
            raise TypeError(f"preset must be a name (string), got {self.preset!r}")
        if self.channel_axis is not None:
            if isinstance(self.channel_axis, bool) or not isinstance(self.channel_axis,
                                                                     (int, np.integer)):
                raise TypeError(f"channel_axis must be an integer or None, got "
                                f"{self.channel_axis!r}")
            object.__setattr__(self, "channel_axis", int(self.channel_axis))
        object.__setattr__(self, "preview_every", check_count("preview_every",
                                                              self.preview_every))

    def torch_device(self, uses_torch: bool = True) -> torch.device:
        """The device to run on (checked to exist).

        A method that does not use torch runs on the CPU, but an unavailable device
        is still refused so the user learns of the mistake.
        """
        dev = resolve_device(self.device)
        return dev if uses_torch else torch.device("cpu")

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with some options changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of the options (JSON-serialisable)."""
        d = dataclasses.asdict(self)
        return {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in d.items()}


@dataclass(frozen=True)
class FitOptions(RunOptions):
    """:class:`RunOptions` plus the options of training a dataset-level model.

    Attributes
    ----------
    normalisation : {"auto", "dataset", "per_image", "per_image_dark"}
        How raw values are scaled to [0, 1]: one set of ranges from the pooled
        training pixels, or each image between its own 1st and 99.8th percentiles
        (``"per_image_dark"``: then inverted where its background is light);
        ``"auto"``: ``"per_image_dark"`` for a collection of objects on a plain
        background (:func:`~napari_useg.core.image.objects_on_background`), else
        ``"per_image"``.
    rgb : bool or None
        Whether the first three channels are RGB (default: from the images).
    checkpoint : pathlib.Path or None
        File keeping the training state; rerunning with it resumes.
    checkpoint_every : int
        Steps between checkpoint saves.
    """

    normalisation: str = option("auto", "how raw values are scaled to [0, 1]: one range "
                                      "for the whole collection ('dataset') or each "
                                      "image between its own percentiles ('per_image'; "
                                      "'per_image_dark': then inverted where the "
                                      "background is light; 'auto': per_image_dark for "
                                      "objects on a plain background, else per_image)",
                                choices=NORMALISATIONS)
    rgb: bool | None = option(None, "whether the first three channels are RGB (default: from "
                                    "the images)", cli=False)
    checkpoint: Path | None = option(None, "file keeping the training state; rerun with it "
                                           "to resume", metavar="FILE")
    checkpoint_every: int = option(50, "steps between checkpoint saves", metavar="N")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got "
                             f"{self.normalisation!r}")
        if self.rgb is not None and not isinstance(self.rgb, (bool, np.bool_)):
            raise TypeError(f"rgb must be True, False or None, got {self.rgb!r}")
        if self.checkpoint is not None:
            if not isinstance(self.checkpoint, (str, os.PathLike)):
                raise TypeError(f"checkpoint must be a path, got {self.checkpoint!r}")
            object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        try:
            every = check_count("checkpoint_every", self.checkpoint_every, low=1)
        except TypeError:
            raise ValueError(f"checkpoint_every must be a positive integer, got "
                             f"{self.checkpoint_every!r}") from None
        object.__setattr__(self, "checkpoint_every", every)


Opts = TypeVar("Opts", bound=RunOptions)


def options_from_keywords(cls: type[Opts], options: Opts | None,
                          kwargs: dict[str, Any]) -> Opts:
    """Build run options from ``options`` and the option keywords in ``kwargs``.

    The keywords named like a field of ``cls`` (``seed``, ``device``, ``preset``...) are
    removed from ``kwargs`` (what is left are method parameters) and applied over
    ``options`` (or the declared defaults); building the options checks every value.
    """
    names = {f.name for f in fields(cls)}
    given = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    if options is None:
        return cls(**given)
    if not isinstance(options, cls):
        raise TypeError(f"options must be a {cls.__name__}, got {type(options).__name__}")
    return options.replace(**given) if given else options
