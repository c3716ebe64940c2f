"""Make the user guide's screenshots: the docked widgets on real images with the result visible.

The window is 1366x768, a common laptop screen, with napari's default layout: what fits
there fits every screen. Run headless with a virtual X server (the ``offscreen`` Qt
platform renders a black canvas)::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1366x768x24" \\
        python docs/make_screenshots.py [--out docs/images]

Debian packages needed: ``xvfb libxcb-icccm4 libxcb-keysyms1`` (plus the usual
``libxkbcommon-x11-0 libxcb-cursor0 libgl1 libegl1``).

It writes

* ``segment_chelsea.png``: the segmentation widget with its defaults (Kanezaki 2018, preset
  ``fast``, seed 0, as in the README) on scikit-image's ``chelsea``;
* ``segment_nuclei.png``: k-means (2 clusters) on the bundled fluorescence crop;
* ``accuracy_nuclei.png``: the accuracy widget scoring that result against the bundled
  ground truth, with the "matched" layer shown;
* ``model_widget.png``: the model widget after training IIC (preset ``fast``, shortened to
  ``STEPS`` steps so the picture is quick to make) on the nuclei and applying it.

Images are saved as palette PNGs (256 colours) to stay small.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WINDOW = (1366, 768)
STEPS = 150  # IIC training steps of the model-widget picture


def wait_for(widget, app, timeout: float = 600.0) -> None:
    """Process Qt events until the widget's run has finished."""
    t0 = time.perf_counter()
    while widget.worker is not None:
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("segmentation did not finish")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)


def save(viewer, app, path: Path) -> None:
    """Screenshot the whole window (canvas and docked widgets) as a palette PNG."""
    from PIL import Image

    for _ in range(30):  # let the docked widgets settle the canvas size first
        app.processEvents()
        time.sleep(0.02)
    viewer.reset_view()
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    img = Image.fromarray(np.asarray(shot)[..., :3])
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def new_viewer(napari):
    viewer = napari.Viewer(show=True, title="napari-useg")
    viewer.window._qt_window.resize(*WINDOW)
    return viewer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import napari
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or napari.qt.get_qapp()

    # 1. Kanezaki on a natural image
    viewer = new_viewer(napari)
    viewer.open_sample("napari-useg", "chelsea")
    _, seg = viewer.window.add_plugin_dock_widget("napari-useg", "Unsupervised segmentation")
    assert seg.method.value == "kanezaki" and seg.preset.value == "fast"  # the defaults
    seg.run()
    wait_for(seg, app)
    viewer.layers["chelsea kanezaki"].opacity = 0.6
    save(viewer, app, args.out / "segment_chelsea.png")
    viewer.close()

    # 2. k-means on the microscopy sample, then 3. the accuracy widget
    viewer = new_viewer(napari)
    viewer.open_sample("napari-useg", "nuclei")
    _, seg = viewer.window.add_plugin_dock_widget("napari-useg", "Unsupervised segmentation")
    seg.image.value = viewer.layers["nuclei"]
    seg.method.value = "kmeans"
    seg.params["n_clusters"].value = 2
    seg.run()
    wait_for(seg, app)
    viewer.layers["nuclei kmeans"].opacity = 0.5
    save(viewer, app, args.out / "segment_nuclei.png")

    viewer.window.remove_dock_widget("all")
    _, acc = viewer.window.add_plugin_dock_widget("napari-useg", "Segmentation accuracy")
    acc.prediction.value = viewer.layers["nuclei kmeans"]
    acc.ground_truth.value = viewer.layers["nuclei ground truth"]
    acc.add_matched.value = True
    acc.compute()
    for lay in viewer.layers:
        lay.visible = lay.name in ("nuclei", "nuclei kmeans matched")
    viewer.layers["nuclei kmeans matched"].opacity = 0.5
    save(viewer, app, args.out / "accuracy_nuclei.png")
    viewer.close()

    # 4. the model widget: train IIC on the nuclei, apply it
    viewer = new_viewer(napari)
    viewer.open_sample("napari-useg", "nuclei")
    viewer.layers["nuclei ground truth"].visible = False
    _, mod = viewer.window.add_plugin_dock_widget(
        "napari-useg", "Train and apply a model (IIC, InMARS, DFC reference)")
    mod.method.value = "iic"
    mod.preset.value = "fast"
    mod.params["steps"].value = STEPS
    mod.train_layers.value = [viewer.layers["nuclei"]]
    mod.train()
    wait_for(mod, app)
    mod.apply_image.value = viewer.layers["nuclei"]
    mod.apply()
    wait_for(mod, app)
    viewer.layers["nuclei iic labels"].opacity = 0.5
    save(viewer, app, args.out / "model_widget.png")
    viewer.close()


if __name__ == "__main__":
    main()
