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


# --- Notebook 05: the tokens of a text, coloured ----------------------------------------------
TOKEN_COLOURS = ("#fde2e4", "#cde7f0", "#d8f3dc", "#fff1c1", "#e4d9f5", "#ffd8be")


def colored_tokens(pieces: list[str], title: str = ""):
    """An HTML view of a text cut into tokens, one background colour per token (spaces shown as ·, newlines as ↵).

    Below the colours the same pieces are written as plain text separated by |, for readers whose
    viewer strips styles. Returns an `IPython.display.HTML`; notebook 05 shows it for typed text.
    """
    import html

    from IPython.display import HTML

    if isinstance(pieces, str) or not all(isinstance(p, str) for p in pieces):
        raise TypeError("pieces: expected a list of str (the text of each token)")
    spans = []
    for k, piece in enumerate(pieces):
        shown = html.escape(piece.replace(" ", "·").replace("\n", "↵\n"))
        spans.append(f'<span style="background:{TOKEN_COLOURS[k % len(TOKEN_COLOURS)]};padding:1px 0;'
                     f'border-right:1px solid #999">{shown}</span>')
    plain = html.escape("|".join(p.replace("\n", "↵") for p in pieces))
    head = f"<b>{html.escape(title)}</b> " if title else ""
    return HTML(f'<div style="font-family:monospace;white-space:pre-wrap;line-height:1.8">{head}'
                f'{len(pieces)} tokens, {sum(len(p) for p in pieces)} characters<br>{"".join(spans)}'
                f'<br><span style="color:#666">{plain}</span></div>')
