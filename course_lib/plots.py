"""Pictures the notebooks draw: heat-maps (one-hot matrices, attention weights), loss curves.

Each function draws on a new figure (or the `ax` given) and returns the Axes, so a notebook cell
can add to it; end the cell with `plt.show()` so the stored output is the picture alone.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def _as_array(matrix) -> np.ndarray:
    if hasattr(matrix, "detach"):
        matrix = matrix.detach().cpu().float().numpy()
    array = np.asarray(matrix, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"matrix: expected 2 dimensions (rows x columns), got shape {array.shape}")
    return array


def heatmap(matrix, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
            title: str = "", ax=None, cmap: str = "viridis", annotate: bool | None = None,
            xlabel: str = "", ylabel: str = "", vmin: float | None = None, vmax: float | None = None):
    """A labelled heat-map of a 2-D matrix; small matrices get their values written in the cells."""
    import matplotlib.pyplot as plt

    array = _as_array(matrix)
    for name, labels, size in (("row_labels", row_labels, array.shape[0]), ("col_labels", col_labels, array.shape[1])):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{name}: expected {size} labels for a matrix of shape {array.shape}, got {len(labels)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(3.0, 0.55 * array.shape[1] + 1.5), max(2.5, 0.45 * array.shape[0] + 1.0)))
    image = ax.imshow(array, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(array.shape[1]), labels=col_labels if col_labels is not None else range(array.shape[1]),
                  rotation=45 if col_labels is not None else 0, ha="right" if col_labels is not None else "center")
    ax.set_yticks(range(array.shape[0]), labels=row_labels if row_labels is not None else range(array.shape[0]))
    if annotate is None:
        annotate = array.size <= 150
    if annotate:
        middle = (np.nanmax(array) + np.nanmin(array)) / 2 if array.size else 0
        for (i, j), value in np.ndenumerate(array):
            ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=8,
                    color="black" if value > middle else "white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def loss_curves(curves: Mapping[str, Sequence[float]], title: str = "Training loss", ax=None,
                xlabel: str = "step", ylabel: str = "loss", logy: bool = False, smooth: int = 1):
    """One line per named curve (e.g. {'with skip connections': [...], 'without': [...]})."""
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("curves: expected at least one named sequence of values, got none")
    if smooth < 1:
        raise ValueError(f"smooth: expected a window of at least 1 step, got {smooth}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        if smooth > 1 and len(values) >= smooth:
            values = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(len(values)), values, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
