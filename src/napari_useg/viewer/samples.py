"""napari sample-data contributions: the bundled samples as layers (File > Open Sample)."""

from __future__ import annotations

from napari_useg.io.samples import sample_ground_truth, sample_image

__all__ = ["napari_chelsea", "napari_nuclei"]


def napari_chelsea() -> list[tuple]:
    """napari sample-data contribution: the default sample image as an RGB Image layer."""
    return [(sample_image("chelsea"), {"name": "chelsea", "rgb": True}, "image")]


def napari_nuclei() -> list[tuple]:
    """napari sample-data contribution: fluorescent nuclei and their ground-truth Labels layer."""
    return [
        (sample_image("nuclei"), {"name": "nuclei", "rgb": False, "colormap": "gray"}, "image"),
        (sample_ground_truth("nuclei"), {"name": "nuclei ground truth", "opacity": 0.5,
                                         "visible": False}, "labels"),
    ]
