"""The npe2 manifest is installed with the package and its commands import."""

from __future__ import annotations

import npe2
from npe2.manifest.utils import import_python_name


def test_manifest_resolves_and_commands_import():
    pm = npe2.PluginManifest.from_distribution("napari-useg")
    assert pm.name == "napari-useg"
    commands = pm.contributions.commands or []
    assert commands, "the manifest declares no commands"
    for cmd in commands:
        assert callable(import_python_name(cmd.python_name)), cmd.python_name


def test_core_import_does_not_pull_qt():
    import subprocess
    import sys

    code = ("import sys, napari_useg; napari_useg.segment; "
            "bad = [m for m in ('PyQt6', 'PyQt5', 'PySide6', 'qtpy', 'napari') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_menus_say_napari_useg_as_the_readme_does():
    from pathlib import Path

    import napari_useg.viewer

    path = Path(napari_useg.viewer.__file__).with_name("napari.yaml")
    pm = npe2.PluginManifest.from_file(path)
    assert pm.display_name == "napari-useg"
    readme = Path(__file__).resolve().parents[1] / "README.md"
    if readme.is_file():
        assert "napari-useg" in readme.read_text(encoding="utf-8")
