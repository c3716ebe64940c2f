"""Turning declarations into command-line options: a method's parameters and the run options.

Method parameters come from the method's own declaration
(:mod:`napari_useg.core.params`); ``--seed``, ``--device``, ``--preset``,
``--channel-axis`` and the training options come from the fields of
:class:`~napari_useg.core.options.RunOptions` / :class:`~napari_useg.core.options.FitOptions`,
so every command offers them with the same names, help and defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from napari_useg.core.options import RunOptions, option_infos
from napari_useg.core.registry import Method, get_method

__all__ = ["preparse_method", "add_method_options", "collect_params", "add_run_options",
           "run_options"]


def preparse_method(argv: Sequence[str], default: str = "kanezaki") -> Method | None:
    """The method named by ``--method`` in ``argv`` (``None`` if the name is unknown)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--method", "-m", default=default)
    known, _ = pre.parse_known_args(list(argv))
    try:
        return get_method(known.method)
    except (ValueError, TypeError):
        return None  # the main parser reports it


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def add_method_options(parser: argparse.ArgumentParser, method: Method | None) -> None:
    """Add ``--param-name VALUE`` options for every parameter of ``method``."""
    if method is None:
        return
    group = parser.add_argument_group(
        f"parameters of {method.name!r} ({method.title})",
        "values are validated against the declared range; defaults shown per preset",
    )
    presets = sorted(method.presets)
    for info in method.param_infos:
        shown = [f"default {_fmt(info.default)}"]
        for pr in presets:
            if info.name in method.presets[pr]:
                shown.append(f"{pr}: {_fmt(method.presets[pr][info.name])}")
        extra = []
        if info.low is not None or info.high is not None:
            extra.append(f"range [{info.low if info.low is not None else '-inf'}, "
                         f"{info.high if info.high is not None else 'inf'}]")
        if info.choices:
            extra.append(f"one of {list(info.choices)}")
        helptext = f"{info.help} ({'; '.join(shown + extra)})"
        flag = "--" + info.name.replace("_", "-")
        if info.type is bool:
            group.add_argument(flag, dest=f"param__{info.name}", default=argparse.SUPPRESS,
                               action=argparse.BooleanOptionalAction, help=helptext)
        else:
            group.add_argument(flag, dest=f"param__{info.name}", default=argparse.SUPPRESS,
                               metavar=info.type.__name__.upper(), help=helptext)


def collect_params(args: argparse.Namespace) -> dict[str, Any]:
    """The method parameters given on the command line (only those given)."""
    return {k[len("param__"):]: v for k, v in vars(args).items() if k.startswith("param__")}


def add_run_options(parser: argparse.ArgumentParser, options_cls: type = RunOptions, *,
                    skip: Sequence[str] = (), help: dict[str, str] | None = None) -> None:
    """Add the command-line run options declared by ``options_cls`` (all but ``skip``).

    ``help`` replaces the declared help text of some options where a command means
    something narrower (e.g. the seed of every image of a batch).
    """
    group = parser.add_argument_group("run options")
    for info in option_infos(options_cls):
        if not info.cli or info.name in skip:
            continue
        text = (help or {}).get(info.name, info.help)
        default = info.default
        if default is not None:
            text += f" (default {default})"
        kwargs: dict[str, Any] = {"dest": info.name, "default": default, "help": text}
        if info.metavar:
            kwargs["metavar"] = info.metavar
        if info.choices:
            kwargs["choices"] = info.choices
        if info.name in ("seed", "channel_axis", "checkpoint_every"):
            kwargs["type"] = int
        if info.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif info.type is not None:
            kwargs["type"] = info.type
        if info.nargs is not None:
            kwargs["nargs"] = "+" if info.nargs < 0 else info.nargs
        group.add_argument(info.flag, **kwargs)


def run_options(args: argparse.Namespace, options_cls: type = RunOptions, **given: Any):
    """Build (and so check) ``options_cls`` from the parsed arguments plus ``given``."""
    names = [i.name for i in option_infos(options_cls)]
    values = {n: getattr(args, n) for n in names if hasattr(args, n)}
    values.update(given)
    return options_cls(**values)
