"""Progress bars that a stored notebook shows in their final state.

In a notebook, `tqdm.auto` draws an ipywidgets bar. A reader of the stored notebook (on GitHub, or
in nbconvert's HTML without JavaScript) sees the bar's plain-text form instead, and tqdm writes that
text once, when the bar first appears: "0/600", a bar that never moved. `bar` shows the widget under
a display id and, when the bar closes, shows it again under the same id, so the notebook keeps the
last state: "600/600" with the time it took. Outside a notebook it is tqdm's text bar on stderr.

Values that change with the CPU (a loss) go in the bar's postfix after "≈", like every trained value
the notebooks print (notebooks/sanitize.cfg).
"""

from __future__ import annotations

from typing import Iterable

from tqdm import notebook as _notebook
from tqdm.auto import tqdm as _auto_tqdm

__all__ = ["bar", "in_notebook"]


def in_notebook() -> bool:
    """True where tqdm.auto draws widgets: code running in a Jupyter kernel."""
    return issubclass(_auto_tqdm, _notebook.tqdm)


class _FinalStateBar(_notebook.tqdm):
    """tqdm's notebook bar, displayed under a display id that `close` updates with the final state."""

    def __init__(self, *args, **kwargs):
        kwargs["display"] = False
        super().__init__(*args, **kwargs)
        self._handle = None
        if not self.disable:
            from IPython.display import display

            self._handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self):
        super().close()
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            handle.update(self.container)


def bar(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None, disable: bool = False,
        leave: bool = True):
    """A tqdm progress bar over `iterable` (or `total` steps updated by hand); see the module docstring."""
    cls = _FinalStateBar if in_notebook() else _auto_tqdm
    return cls(iterable, desc=desc, total=total, disable=disable, leave=leave)
