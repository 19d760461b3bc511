"""ipywidgets explorers, each with a static fallback so the stored notebook reads well on GitHub.

`explore(fn, static=..., **controls)` shows a live widget in JupyterLab and, for readers of the
stored notebook (and for nbval), first prints `fn` evaluated at the `static` settings.
"""

from __future__ import annotations

from typing import Any, Callable


def explore(fn: Callable[..., Any], static: dict[str, Any], **controls):
    """Print `fn(**static)` (the static fallback), then return an `interactive` widget over `controls`.

    `controls` are ipywidgets (or the abbreviations `interact` accepts: tuples for sliders, lists for
    drop-downs). The cell that calls this should carry `# NBVAL_IGNORE_OUTPUT` only if `fn` prints
    something that changes between runs; the widget view itself is not compared by nbval.
    """
    import ipywidgets
    from IPython.display import display

    unknown = set(static) - set(controls)
    if unknown:
        raise ValueError(f"static: settings {sorted(unknown)} have no control; controls are {sorted(controls)}")
    print("Static view (" + ", ".join(f"{k}={v!r}" for k, v in static.items()) + "):")
    result = fn(**static)
    if result is not None:
        display(result)
    widget = ipywidgets.interactive(fn, **controls)
    for child in widget.children:
        name = getattr(child, "description", None)
        if name in static and hasattr(child, "value"):
            child.value = static[name]
    return widget
