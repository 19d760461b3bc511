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


def parallelism_splits(splits: Mapping[str, Mapping[str, str]], n_devices: int = 2, ax=None):
    """What each device holds under each parallelism technique (notebook 11).

    One row per technique, one column per part (parameters, gradients, ...); in each cell one box per
    device, filled whole where the device keeps a full copy ("all") and only its own slice otherwise,
    with the way the part is divided written underneath.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    if not splits:
        raise ValueError("splits: expected at least one technique, got none")
    parts = list(next(iter(splits.values())))
    for technique, row in splits.items():
        if list(row) != parts:
            raise ValueError(f"splits: every technique must list the parts {parts}, {technique!r} lists {list(row)}")
    if not isinstance(n_devices, int) or n_devices < 1:
        raise ValueError(f"n_devices: expected a positive int, got {n_devices!r}")
    colors = plt.get_cmap("tab10").colors
    if ax is None:
        _, ax = plt.subplots(figsize=(2.3 * len(parts) + 2.2, 0.95 * len(splits) + 0.9))
    box_w, box_h, gap, cell_w, cell_h = 0.8, 0.45, 0.15, 2.2, 1.0
    for i, (technique, row) in enumerate(splits.items()):
        y = -i * cell_h
        ax.text(-0.2, y + box_h / 2, technique, ha="right", va="center", fontsize=9)
        for j, part in enumerate(parts):
            how = row[part]
            x0 = j * cell_w + (cell_w - n_devices * box_w - (n_devices - 1) * gap) / 2
            for d in range(n_devices):
                x = x0 + d * (box_w + gap)
                if how == "all":
                    ax.add_patch(Rectangle((x, y), box_w, box_h, color=colors[d], alpha=0.8))
                else:
                    share = box_w / n_devices
                    ax.add_patch(Rectangle((x + d * share, y), share, box_h, color=colors[d], alpha=0.8))
                ax.add_patch(Rectangle((x, y), box_w, box_h, fill=False, edgecolor="black", linewidth=0.8))
            ax.text(j * cell_w + cell_w / 2, y - 0.12, "full copy each" if how == "all" else how,
                    ha="center", va="top", fontsize=7.5)
    for j, part in enumerate(parts):
        ax.text(j * cell_w + cell_w / 2, box_h + 0.25, part, ha="center", va="bottom", fontsize=10, weight="bold")
    ax.legend(handles=[Patch(color=colors[d], alpha=0.8, label=f"device {d}") for d in range(n_devices)],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_xlim(-0.2, len(parts) * cell_w)
    ax.set_ylim(-(len(splits) - 1) * cell_h - 0.45, box_h + 0.6)
    ax.set_axis_off()
    return ax


def memory_bars(breakdowns: Mapping[str, Mapping[str, float]], limit: float | None = None,
                limit_label: str = "", unit: float = 1e9, unit_name: str = "GB", ax=None):
    """Stacked horizontal bars, one per setting, of what takes the memory (weights, gradients, ...),
    with an optional vertical line at a device's capacity (notebook 11: what fits a 24 GB GPU)."""
    import matplotlib.pyplot as plt

    if not breakdowns:
        raise ValueError("breakdowns: expected at least one named breakdown, got none")
    parts = list(dict.fromkeys(part for b in breakdowns.values() for part in b))
    colors = dict(zip(parts, plt.get_cmap("tab10").colors))
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.6 * len(breakdowns) + 1.2))
    names, labelled = list(breakdowns), set()
    for row, name in enumerate(names):
        left = 0.0
        for part in parts:
            value = breakdowns[name].get(part, 0.0) / unit
            if value > 0:
                ax.barh(row, value, left=left, color=colors[part], label=None if part in labelled else part)
                labelled.add(part)
                left += value
        ax.text(left, row, f" {left:,.1f} {unit_name}", va="center", fontsize=8)
    if limit is not None:
        ax.axvline(limit / unit, color="black", linestyle="--", linewidth=1)
        ax.text(limit / unit, len(names) - 0.45, f" {limit_label}", fontsize=8, va="bottom")
    ax.set_yticks(range(len(names)), labels=names)
    ax.invert_yaxis()
    ax.set_xlabel(unit_name)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return ax
