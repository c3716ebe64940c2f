"""Layout pieces shared by the widgets: fit a laptop screen (1366x768) with napari's layout.

* :class:`Collapsible`: a header button that shows or hides a group of controls (the
  "advanced" sections start collapsed);
* :class:`ParamPanel`: a method's parameter controls split into the few users change first
  (:data:`KEY_PARAMS`, on top) and the paper's other parameters (in a collapsed section),
  iterated and indexed by name in declaration order like a magicgui container;
* :func:`compact`: combo boxes that do not widen the dock to their longest item, labels
  that wrap.

The widgets themselves are scrollable containers, so a section opened on a small screen
scrolls instead of pushing the dock below the screen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from magicgui.widgets import Container, Label, PushButton, Widget
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QComboBox, QFrame, QScrollArea, QSizePolicy

from napari_useg.core.params import ParamInfo
from napari_useg.viewer._qt.param_controls import control_for

__all__ = ["KEY_PARAMS", "Collapsible", "ParamPanel", "ScrollingDock", "compact", "heading",
           "wrapping"]

#: Parameters shown above the "advanced" section, when a method declares them: the number
#: of clusters or segments, the iteration budget and the granularity knob (in this order);
#: for a threshold, which objects and the background subtraction.
KEY_PARAMS: tuple[str, ...] = (
    "n_clusters", "n_segments", "scale", "max_iter", "epochs", "steps", "min_labels", "mu",
    "alpha", "n_superpixels", "window", "polarity", "background",
)
#: At most this many key parameters on top (the rest go to the advanced section).
MAX_KEY = 4
#: A method with this many parameters or fewer shows them all on top.
SHOW_ALL = 4
#: Fewest characters a combo box keeps visible (longer items are elided, not widening).
COMBO_CHARS = 12


class ScrollingDock(Container):
    """A dock widget whose controls (in :attr:`body`) scroll vertically when the dock is short.

    napari docks a magicgui widget's ``native`` widget, so the scroll area lives inside
    it: the dock never asks for more height than the screen has. Subclasses add their
    controls to :attr:`body` (unlabelled: put labelled controls in a labelled container
    of their own) and call :meth:`fit_width` once they are placed.
    """

    def __init__(self) -> None:
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.body = Container(labels=False)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.body.native)
        self.native.layout().addWidget(self.scroll)

    def end_body(self) -> None:
        """Keep the controls at the top of the dock (space left over goes below them)."""
        self.body.native.layout().addStretch(1)

    def fit_width(self) -> None:
        """Make the dock as wide as the controls need (no horizontal scrolling).

        Measured now and once more when Qt is back in its event loop (the controls are
        then laid out: sizes measured before are too small).
        """
        self._fit_width()
        QTimer.singleShot(0, self._fit_width)

    def _fit_width(self) -> None:
        try:
            bar = self.scroll.verticalScrollBar().sizeHint().width()
            self.scroll.setMinimumWidth(self.body.native.minimumSizeHint().width() + bar)
        except RuntimeError:  # pragma: no cover - the dock was closed meanwhile
            pass

    def reset_choices(self, *_: Any) -> None:
        """Refresh the choices of every control (they live in :attr:`body`)."""
        self.body.reset_choices()


def heading(text: str) -> Label:
    """A bold section title."""
    return Label(value=f"<b>{text}</b>", label="")


class Collapsible(Container):
    """A titled group of controls behind a header button (collapsed by default).

    Parameters
    ----------
    title : str
        Shown on the header button (``"▸ title"`` collapsed, ``"▾ title"`` open).
    widgets : sequence of magicgui widgets
        The section's content.
    expanded : bool
        Start open.
    """

    def __init__(self, title: str, widgets: Sequence[Widget] = (), *,
                 expanded: bool = False, name: str = "") -> None:
        self.title = title
        self.header = PushButton(text=title)
        self.header.native.setFlat(True)
        self.header.native.setStyleSheet("text-align: left;")
        self.body = Container(labels=True, widgets=list(widgets))
        self.body.margins = (0, 0, 0, 0)
        super().__init__(labels=False, widgets=[self.header, self.body], name=name)
        self.margins = (0, 0, 0, 0)
        self.header.changed.connect(self.toggle)
        self.expanded = expanded

    @property
    def expanded(self) -> bool:
        """Whether the section is open."""
        return self._expanded

    @expanded.setter
    def expanded(self, value: bool) -> None:
        self._expanded = bool(value)
        self.body.visible = self._expanded
        self.header.text = f"{'▾' if self._expanded else '▸'} {self.title}"

    def toggle(self, *_: Any) -> None:
        """Open a closed section, close an open one (the header button)."""
        self.expanded = not self.expanded


class ParamPanel:
    """A method's parameter controls: key ones in ``top``, the others in ``advanced``.

    The key controls are inserted into ``top`` right after ``after`` (so they line up
    with the widget's other labelled controls); the others at the start of ``advanced``.
    This object reads them back as one collection in declaration order (``for w in
    panel``, ``panel[name]``), as the widgets and their callers did with one container.

    Parameters
    ----------
    top : magicgui.widgets.Container
        The labelled container of the controls users set first.
    after : magicgui widget
        The control of ``top`` the key parameters follow (the preset).
    advanced : magicgui.widgets.Container
        Where the other parameters go (inside a collapsed section), before what it holds.
    """

    def __init__(self, top: Container, after: Widget, advanced: Container) -> None:
        self.top = top
        self.after = after
        self.advanced = advanced
        self._controls: dict[str, Widget] = {}
        self._key: list[str] = []

    def set(self, infos: Iterable[ParamInfo], values: Mapping[str, Any]) -> None:
        """Replace the controls with one per declared parameter, set to ``values``."""
        infos = list(infos)
        names = [i.name for i in infos]
        for name, w in self._controls.items():
            (self.top if name in self._key else self.advanced).remove(w)
        if len(names) <= SHOW_ALL:
            key = list(names)
        else:
            key = sorted((n for n in KEY_PARAMS if n in names), key=KEY_PARAMS.index)[:MAX_KEY]
            key = sorted(key, key=names.index)
        self._controls = {i.name: compact(control_for(i, values[i.name])) for i in infos}
        self._key = key
        at = self.top.index(self.after) + 1
        for k, name in enumerate(key):
            self.top.insert(at + k, self._controls[name])
        for k, name in enumerate(n for n in names if n not in key):
            self.advanced.insert(k, self._controls[name])

    @property
    def key_names(self) -> list[str]:
        """Names of the parameters shown on top."""
        return list(self._key)

    @property
    def advanced_names(self) -> list[str]:
        """Names of the parameters in the advanced section."""
        return [n for n in self._controls if n not in self._key]

    def __getitem__(self, name: str) -> Widget:
        return self._controls[name]

    def __iter__(self) -> Iterator[Widget]:
        return iter(list(self._controls.values()))

    def __len__(self) -> int:
        return len(self._controls)

    def values(self) -> dict[str, Any]:
        """The controls' values by parameter name."""
        return {name: w.value for name, w in self._controls.items()}


def compact(widget: Any) -> Any:
    """Let ``widget`` (and the widgets inside a container) shrink to a narrow dock.

    Combo boxes keep :data:`COMBO_CHARS` characters visible instead of their longest
    item. Returns ``widget``.
    """
    natives = [widget.native] if hasattr(widget, "native") else [widget]
    for native in natives:
        for combo in [native, *native.findChildren(QComboBox)]:
            if isinstance(combo, QComboBox):
                combo.setSizeAdjustPolicy(
                    QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(COMBO_CHARS)
                combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return widget


def wrapping(label: Label) -> Label:
    """A text line that wraps to the dock's width (and never widens the dock)."""
    native = label.native
    native.setWordWrap(True)
    native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    native.setMinimumWidth(60)
    return label
