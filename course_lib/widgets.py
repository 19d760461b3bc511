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


_LOOKUP_COLOURS = {"found": "#d8f3dc", "normalized": "#fff3bf", "nearest": "#ffd8a8", "unknown": "#ffc9c9"}


class RichText:
    """Shown as HTML in Jupyter and as plain text anywhere else (GitHub's text view, nbval, a terminal)."""

    def __init__(self, html: str, text: str):
        self.html, self.text = html, text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def highlighted_translation(lookups) -> RichText:
    """A word-for-word translation as HTML, each word coloured by how it was found (notebook 01).

    `lookups` are `translation.Lookup`s: green found, yellow found without accents, orange nearest
    spelling, red unknown. The plain-text view lists the same words, so the static output reads anywhere.
    """
    from html import escape

    cells, plain = [], []
    for item in lookups:
        colour = _LOOKUP_COLOURS.get(item.how)
        if colour is None:
            raise ValueError(f"lookups: expected `how` in {sorted(_LOOKUP_COLOURS)}, got {item.how!r}")
        target = "&lt;unk&gt;" if item.target is None else escape(item.target)
        shown = "<unk>" if item.target is None else item.target
        plain.append(shown if item.how == "found" else f"[{shown}: {item.source}, {item.how}]")
        cells.append(f'<span style="background:{colour};color:#000;padding:2px 5px;margin:2px;border-radius:4px;'
                     f'display:inline-block;text-align:center" title="{item.how}">'
                     f'<small>{escape(item.source)}</small><br><b>{target}</b></span>')
    legend = " ".join(f'<span style="background:{c};color:#000;padding:0 4px">{how}</span>'
                      for how, c in _LOOKUP_COLOURS.items())
    html = f'<div>{"".join(cells) or "<i>(no words)</i>"}</div><div style="font-size:80%">{legend}</div>'
    return RichText(html, " ".join(plain) or "(no words)")
