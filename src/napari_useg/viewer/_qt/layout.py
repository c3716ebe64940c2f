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
from qtpy.QtWidgets import QComboBox, QLabel, QSizePolicy

from napari_useg.core.params import ParamInfo
from napari_useg.viewer._qt.param_controls import control_for

__all__ = ["KEY_PARAMS", "Collapsible", "ParamPanel", "compact", "heading"]

#: Parameters shown above the "advanced" section, when a method declares them: the number
#: of clusters or segments, the iteration budget and the granularity knob (in this order).
KEY_PARAMS: tuple[str, ...] = (
    "n_clusters", "n_segments", "scale", "max_iter", "steps", "min_labels", "mu", "alpha",
    "n_superpixels", "window",
)
#: At most this many key parameters on top (the rest go to the advanced section).
MAX_KEY = 4
#: A method with this many parameters or fewer shows them all on top.
SHOW_ALL = 4
#: Fewest characters a combo box keeps visible (longer items are elided, not widening).
COMBO_CHARS = 12


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
        self.header = PushButton(text=title, name=f"{name or title}_header")
        self.header.native.setFlat(True)
        self.header.native.setStyleSheet("text-align: left;")
        self.body = Container(labels=True, widgets=list(widgets), name=f"{name or title}_body")
        self.body.margins = (0, 0, 0, 0)
        super().__init__(labels=False, widgets=[self.header, self.body], label="",
                         name=name or title)
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

    Both containers are placed by the widget; this object reads them back as one
    collection in declaration order (``for w in panel``, ``panel[name]``), as the
    widgets and their callers did with a single container.

    Parameters
    ----------
    top : magicgui.widgets.Container
        Where the key parameters go.
    advanced : magicgui.widgets.Container
        Where the other parameters go (inside a collapsed section).
    """

    def __init__(self, top: Container, advanced: Container) -> None:
        self.top = top
        self.advanced = advanced
        self._order: list[str] = []

    def set(self, infos: Iterable[ParamInfo], values: Mapping[str, Any]) -> None:
        """Replace the controls with one per declared parameter, set to ``values``."""
        infos = list(infos)
        names = [i.name for i in infos]
        if len(names) <= SHOW_ALL:
            key = set(names)
        else:
            key = {n for n in KEY_PARAMS if n in names}
            key = set(sorted(key, key=KEY_PARAMS.index)[:MAX_KEY])
        self.top.clear()
        self.advanced.clear()
        controls = {i.name: compact(control_for(i, values[i.name])) for i in infos}
        self.top.extend([controls[n] for n in sorted(key, key=names.index)])
        self.advanced.extend([controls[n] for n in names if n not in key])
        self._order = names

    @property
    def key_names(self) -> list[str]:
        """Names of the parameters shown on top."""
        return [w.name for w in self.top]

    def __getitem__(self, name: str) -> Widget:
        for box in (self.top, self.advanced):
            for w in box:
                if w.name == name:
                    return w
        raise KeyError(name)

    def __iter__(self) -> Iterator[Widget]:
        return iter([self[n] for n in self._order])

    def __len__(self) -> int:
        return len(self._order)

    def values(self) -> dict[str, Any]:
        """The controls' values by parameter name."""
        return {w.name: w.value for w in self}


def compact(widget: Any) -> Any:
    """Let ``widget`` (and the widgets inside a container) shrink to a narrow dock.

    Combo boxes keep :data:`COMBO_CHARS` characters visible instead of their longest
    item; labels wrap. Returns ``widget``.
    """
    natives = [widget.native] if hasattr(widget, "native") else [widget]
    for native in natives:
        for combo in [native, *native.findChildren(QComboBox)]:
            if isinstance(combo, QComboBox):
                combo.setSizeAdjustPolicy(
                    QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(COMBO_CHARS)
                combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        for label in [native, *native.findChildren(QLabel)]:
            if isinstance(label, QLabel) and label.text() and not label.buddy():
                label.setWordWrap(label.wordWrap() or len(label.text()) > 30)
    return widget
