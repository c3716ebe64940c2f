"""napari widgets: the only part of napari-useg importing Qt, ``napari.qt`` or magicgui widgets."""

from ._accuracy import AccuracyWidget
from ._model import ModelWidget
from ._segment import SegmentWidget

__all__ = ["AccuracyWidget", "ModelWidget", "SegmentWidget"]
