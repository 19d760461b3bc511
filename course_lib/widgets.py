"""ipywidgets explorers, each with a static fallback so the stored notebook reads well on GitHub.

`explore(fn, static=..., **controls)` shows a live widget in JupyterLab and, for readers of the
stored notebook (and for nbval), first prints `fn` evaluated at the `static` settings.
"""

from __future__ import annotations

from typing import Any, Callable


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


def explore(fn: Callable[..., Any], static: dict[str, Any], **controls):
    """Print `fn(**static)` (the static view readers of the stored notebook see), then return a widget
    over `controls` that calls `fn` again only when a control changes, showing what it draws,
    prints or returns. `controls` are ipywidgets or the abbreviations `interact` accepts.

    `ipywidgets.interactive` calls `fn` as soon as it is built; a headless run (nbval) sees what that
    call draws as extra cell outputs and fails the comparison. Here the controls start at `static`,
    the widget stays empty until a control moves, and the stored output is the static view alone.
    """
    import inspect

    import ipywidgets
    from IPython.display import display

    unknown = set(static) - set(controls)
    if unknown:
        raise ValueError(f"static: settings {sorted(unknown)} have no control; controls are {sorted(controls)}")
    print("Static view (" + ", ".join(f"{k}={v!r}" for k, v in static.items()) + "):")
    result = fn(**static)
    if result is not None:
        display(result)

    def live(**settings):  # what fn returns is shown too (interactive alone would drop it)
        shown = fn(**settings)
        if shown is not None:
            display(shown)

    live.__signature__ = inspect.signature(fn)
    widget = ipywidgets.interactive(live, {"manual": True}, **controls)  # manual: no call while building
    for control in widget.kwargs_widgets:
        if control._kwarg in static:
            control.value = static[control._kwarg]
        control.observe(widget.update, names="value")  # then live: redraw on every change
    widget.manual_button.layout.display = "none"
    return widget


# --- Notebook 05: the tokens of a text, coloured ----------------------------------------------
TOKEN_COLOURS = ("#fde2e4", "#cde7f0", "#d8f3dc", "#fff1c1", "#e4d9f5", "#ffd8be")


def colored_tokens(pieces: list[str], title: str = "") -> RichText:
    """A text cut into tokens as HTML, one background colour per token (spaces shown as ·, newlines as ↵).

    Below the colours, and as the plain-text view, the same pieces are separated by |, for readers
    whose viewer strips styles. Notebook 05 shows it for typed text.
    """
    import html

    if isinstance(pieces, str) or not all(isinstance(p, str) for p in pieces):
        raise TypeError("pieces: expected a list of str (the text of each token)")
    spans = []
    for k, piece in enumerate(pieces):
        shown = html.escape(piece.replace(" ", "·").replace("\n", "↵\n"))
        spans.append(f'<span style="background:{TOKEN_COLOURS[k % len(TOKEN_COLOURS)]};padding:1px 0;'
                     f'border-right:1px solid #999">{shown}</span>')
    plain = "|".join(p.replace("\n", "↵") for p in pieces)
    summary = f"{len(pieces)} tokens"
    head = f"<b>{html.escape(title)}</b> " if title else ""
    return RichText(f'<div style="font-family:monospace;white-space:pre-wrap;line-height:1.8">{head}'
                    f'{summary}<br>{"".join(spans)}<br><span style="color:#666">{html.escape(plain)}</span></div>',
                    (f"{title}: " if title else "") + f"{summary}\n{plain}")
