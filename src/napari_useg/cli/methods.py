"""``napari-useg methods``: list methods, their parameters, defaults and presets."""

from __future__ import annotations

import argparse
import json

from napari_useg.core.params import params_to_dict
from napari_useg.core.registry import all_methods

NAME = "methods"
HELP = "list the segmentation methods with their parameters and presets"


def add_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    parser.add_argument("name", nargs="?", help="show only this method")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    methods = all_methods()
    if args.name:
        if args.name not in methods:
            raise ValueError(f"unknown method {args.name!r}; available: {sorted(methods)}")
        methods = {args.name: methods[args.name]}
    if args.json:
        out = {
            name: {
                "title": m.title, "kind": m.kind, "reference": m.reference,
                "default_preset": m.default_preset,
                "presets": {pr: params_to_dict(m.build(pr)) for pr in m.presets},
                "params": [
                    {"name": i.name, "type": i.type.__name__, "default": i.default,
                     "help": i.help, "low": i.low, "high": i.high,
                     "choices": list(i.choices) if i.choices else None}
                    for i in m.param_infos
                ],
                "inputs": [i.name for i in m.inputs],
            }
            for name, m in sorted(methods.items())
        }
        print(json.dumps(out, indent=2))
        return 0
    for name, m in sorted(methods.items()):
        kind = "per-image" if m.kind == "image" else "dataset-level"
        print(f"{name}: {m.title} [{kind}]")
        print(f"    {m.reference}")
        if m.presets:
            presets = ", ".join(
                pr + (" (default)" if pr == m.default_preset else "") for pr in sorted(m.presets)
            )
            print(f"    presets: {presets}")
        for i in m.param_infos:
            by_preset = "".join(
                f", {pr}={m.presets[pr][i.name]}" for pr in sorted(m.presets)
                if i.name in m.presets[pr]
            )
            print(f"    --{i.name.replace('_', '-'):<16} {i.type.__name__:<5} "
                  f"default={i.default}{by_preset}  {i.help}")
        for i in m.inputs:
            print(f"    input {i.name}: {i.help}")
        print()
    return 0
