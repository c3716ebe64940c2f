"""napari widgets: the only part of napari-useg importing Qt, ``napari.qt`` or magicgui widgets."""

from napari_useg.viewer._qt.accuracy_widget import AccuracyWidget
from napari_useg.viewer._qt.model_widget import ModelWidget
from napari_useg.viewer._qt.segment_widget import SegmentWidget

__all__ = ["AccuracyWidget", "ModelWidget", "SegmentWidget"]
