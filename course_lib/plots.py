"""Pictures the notebooks draw: heat-maps (one-hot matrices, attention weights), loss curves.

Each function draws on a new figure (or the `ax` given) and returns the Axes, so a notebook cell
can add to it; end the cell with `plt.show()` so the stored output is the picture alone.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from course_lib.validation import check_positive_int


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


def attention_head_diagram(n_queries: int = 6, n_keys: int = 6, d_model: int = 8, d_head: int = 4,
                           query_label: str = "X", context_label: str = "C", ax=None):
    """How one attention head's matrices connect, each box labelled with its shape (notebook 04).

    X (queries' tokens) and C (keys' tokens; C = X for self-attention) are projected by W_q, W_k, W_v;
    Q Kᵀ / √d_head gives the scores, softmax the weights, weights · V the output.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    for name, value in (("n_queries", n_queries), ("n_keys", n_keys), ("d_model", d_model), ("d_head", d_head)):
        check_positive_int(name, value)
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.6))
    colors = {"input": "#dbe9f6", "weight": "#fde0c5", "act": "#e2f0d9", "out": "#f4cccc"}
    boxes = {  # name: (x, y, name shown, how it is computed, shape, kind)
        "X": (0.0, 3.2, query_label, "queries' tokens", (n_queries, d_model), "input"),
        "C": (0.0, 0.7, context_label, "keys' tokens", (n_keys, d_model), "input"),
        "Wq": (2.3, 3.2, "W_q", "learned", (d_model, d_head), "weight"),
        "Wk": (2.3, 1.5, "W_k", "learned", (d_model, d_head), "weight"),
        "Wv": (2.3, -0.2, "W_v", "learned", (d_model, d_head), "weight"),
        "Q": (4.6, 3.2, "Q", f"{query_label.split()[0]} · W_q", (n_queries, d_head), "act"),
        "K": (4.6, 1.5, "K", f"{context_label.split()[0]} · W_k", (n_keys, d_head), "act"),
        "V": (4.6, -0.2, "V", f"{context_label.split()[0]} · W_v", (n_keys, d_head), "act"),
        "S": (6.9, 2.35, "scores", "Q · Kᵀ / √d_head", (n_queries, n_keys), "act"),
        "A": (9.2, 2.35, "weights", "softmax(scores)", (n_queries, n_keys), "act"),
        "O": (9.2, -0.2, "output", "weights · V", (n_queries, d_head), "out"),
    }
    width, height = 2.0, 1.1
    for x, y, label, formula, shape, kind in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.05",
                                    facecolor=colors[kind], edgecolor="#444444"))
        ax.text(x + width / 2, y + height * 0.76, label, ha="center", va="center", fontsize=9, weight="bold")
        ax.text(x + width / 2, y + height * 0.48, formula, ha="center", va="center", fontsize=8, style="italic")
        ax.text(x + width / 2, y + height * 0.2, f"{shape[0]} × {shape[1]}", ha="center", va="center", fontsize=9)

    def arrow(a: str, b: str) -> None:
        xa, ya = boxes[a][0] + width, boxes[a][1] + height / 2
        xb, yb = boxes[b][0], boxes[b][1] + height / 2
        if boxes[b][0] == boxes[a][0]:  # same column: go down
            xa, ya = boxes[a][0] + width / 2, boxes[a][1]
            xb, yb = boxes[b][0] + width / 2, boxes[b][1] + height
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), arrowprops=dict(arrowstyle="->", color="#333333"))

    for src, dst in (("X", "Wq"), ("C", "Wk"), ("C", "Wv"), ("Wq", "Q"), ("Wk", "K"), ("Wv", "V"),
                     ("Q", "S"), ("K", "S"), ("S", "A"), ("A", "O"), ("V", "O")):
        arrow(src, dst)
    ax.set_xlim(-0.2, 11.4)
    ax.set_ylim(-0.45, 4.45)
    ax.axis("off")
    ax.set_title("One attention head: how the matrices connect (boxes show rows × columns)")
    return ax


# --- The transformer figure (notebooks 06-07): encoder left, decoder right, one part highlighted ---

DIAGRAM_PARTS = ("embeddings", "positional encoding", "attention", "masked attention", "cross attention",
                 "feed forward", "add & norm", "skip connections", "encoder", "decoder", "block",
                 "linear", "softmax", "contextual embeddings")


def transformer_diagram(highlight: str | Sequence[str] | None = None, decoder_only: bool = False,
                        ax=None, title: str | None = None):
    """The transformer of "Attention Is All You Need" drawn in code: encoder on the left, decoder on
    the right (or the decoder alone, GPT-style, with `decoder_only=True`), with the parts named in
    `highlight` (see DIAGRAM_PARTS) drawn strong and the rest faded. Notebooks 06 and 07 redraw it
    for each section."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyBboxPatch, Rectangle

    wanted = [highlight] if isinstance(highlight, str) else list(highlight or [])
    unknown = [h for h in wanted if h not in DIAGRAM_PARTS]
    if unknown:
        raise ValueError(f"highlight: unknown part(s) {unknown}; expected some of {list(DIAGRAM_PARTS)}")
    tags_on = set(wanted)
    for h in wanted:  # names that stand for several boxes
        if h == "attention":
            tags_on |= {"self attention", "masked attention", "cross attention"}
        if h == "block":
            tags_on |= {"encoder", "decoder"}

    def on(*tags: str) -> bool:
        return not wanted or bool(tags_on & set(tags))

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2 if decoder_only else 8.5, 7.2))
    colors = {"attention": "#f9c98b", "feed forward": "#a9d6f5", "add & norm": "#f6f0a6",
              "embeddings": "#f4b6c2", "linear": "#c9c3f0", "softmax": "#b9e4b9"}
    strong, faded = 1.0, 0.28
    width, height = 2.8, 0.5

    def box(x, y, text, kind, tag, *columns):
        named = on(tag)
        lit = named or on(*columns)
        edge = "#c0392b" if (wanted and named) else "black"
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02,rounding_size=0.08", facecolor=colors[kind],
                                    edgecolor=edge, linewidth=2.6 if (wanted and named) else 1.0,
                                    alpha=strong if lit else faded, zorder=3))
        ax.text(x, y, text, ha="center", va="center", fontsize=8, zorder=4, alpha=strong if lit else 0.45)

    def arrow(x0, y0, x1, y1, *tags, color="black"):
        lit = on(*tags) if tags else not wanted
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2,
                    arrowprops=dict(arrowstyle="->", lw=2.4 if (wanted and lit) else 1.0,
                                    color="#c0392b" if (wanted and lit) else color, alpha=1.0 if lit else 0.4))

    def line(xs, ys, *tags):
        lit = on(*tags)
        ax.plot(xs, ys, color="#c0392b" if (wanted and lit) else "black", lw=2.4 if (wanted and lit) else 1.0,
                alpha=1.0 if lit else 0.4, zorder=2)

    def frame(x, y0, y1, tag, label, right=False):
        lit = on(tag)
        ax.add_patch(Rectangle((x - width / 2 - 0.35, y0), width + 0.7, y1 - y0, facecolor="#eeeeee",
                               edgecolor="#c0392b" if (wanted and lit) else "gray",
                               linewidth=2.6 if (wanted and lit) else 1.0, alpha=0.9 if lit else 0.35, zorder=1))
        if right:
            ax.text(x + width / 2 + 0.5, (y0 + y1) / 2, "×N", ha="left", va="center", fontsize=11)
        else:
            ax.text(x - width / 2 - 0.5, (y0 + y1) / 2, "N×", ha="right", va="center", fontsize=11)
        ax.text(x + width / 2 + 0.3, y1 - 0.06, label, ha="right", va="top", fontsize=8, style="italic",
                alpha=1.0 if lit else 0.5, zorder=4)

    def stack(x, sublayers, y0, column):
        """Sub-layers bottom to top, each followed by Add & Norm with its skip connection."""
        y = y0
        for text, kind, tag in sublayers:
            line([x, x + width / 2 + 0.2, x + width / 2 + 0.2], [y - 0.45, y - 0.45, y + 0.8],
                 "skip connections", column)
            arrow(x + width / 2 + 0.2, y + 0.8, x + width / 2, y + 0.8, "skip connections", column)
            box(x, y, text, kind, tag, column)
            arrow(x, y + height / 2, x, y + 0.8 - height / 2, column)
            box(x, y + 0.8, "Add & Norm", "add & norm", "add & norm", column)
            arrow(x, y + 0.8 + height / 2, x, y + 1.6 - height / 2, column)
            y += 1.6
        return y - 1.6 + 0.8  # the top Add & Norm

    def embed(x, label, text):
        ax.text(x, 0.15, label, ha="center", va="center", fontsize=9)
        arrow(x, 0.3, x, 0.9 - height / 2)
        box(x, 0.9, text, "embeddings", "embeddings")
        arrow(x, 0.9 + height / 2, x, 1.55)
        lit = on("positional encoding")
        ax.add_patch(Circle((x, 1.7), 0.15, facecolor="white", edgecolor="#c0392b" if (wanted and lit) else "black",
                            linewidth=2.4 if (wanted and lit) else 1.0, alpha=1.0 if lit else 0.4, zorder=3))
        ax.text(x, 1.7, "+", ha="center", va="center", fontsize=11, zorder=4)
        ax.text(x - 0.25, 1.7, "positional\nencoding", ha="right", va="center", fontsize=7.5,
                alpha=1.0 if lit else 0.45)
        arrow(x, 1.85, x, 2.8 - height / 2)

    xd = 2.2 if decoder_only else 6.9
    if not decoder_only:
        xe = 2.4
        frame(xe, 2.35, 5.65, "encoder", "encoder")
        embed(xe, "inputs: le chat est sous la table", "Input embedding")
        top = stack(xe, [("Multi-head attention", "attention", "self attention")], 2.8, "encoder")
        stack(xe, [("Feed forward", "feed forward", "feed forward")], 4.4, "encoder")
        line([xe, xe, 4.65, 4.65], [top + 1.6 + height / 2, 6.0, 6.0, 4.4], "contextual embeddings")
        arrow(4.65, 4.4, xd - width / 2, 4.4, "contextual embeddings")
        ax.text(3.55, 6.05, "contextual embeddings", ha="center", va="bottom", fontsize=7.5,
                alpha=1.0 if on("contextual embeddings") else 0.45)
        decoder_layers = [("Masked multi-head attention", "attention", "masked attention"),
                          ("Multi-head cross-attention", "attention", "cross attention"),
                          ("Feed forward", "feed forward", "feed forward")]
        inputs = "outputs so far: the cat is …"
    else:
        decoder_layers = [("Masked multi-head attention", "attention", "masked attention"),
                          ("Feed forward", "feed forward", "feed forward")]
        inputs = "tokens so far"
    top_y = 2.8 + 1.6 * len(decoder_layers) - 0.8
    frame(xd, 2.35, top_y + 0.45, "decoder", "decoder" if not decoder_only else "GPT block", right=True)
    embed(xd, inputs, "Output embedding" if not decoder_only else "Token embedding")
    stack(xd, decoder_layers, 2.8, "decoder")
    arrow(xd, top_y + height / 2, xd, top_y + 1.0 - height / 2)
    box(xd, top_y + 1.0, "Linear", "linear", "linear")
    arrow(xd, top_y + 1.0 + height / 2, xd, top_y + 1.7 - height / 2)
    box(xd, top_y + 1.7, "Softmax", "softmax", "softmax")
    arrow(xd, top_y + 1.7 + height / 2, xd, top_y + 2.2)
    ax.text(xd, top_y + 2.35, "next-token probabilities", ha="center", va="center", fontsize=9)

    ax.set_xlim(-0.6 if decoder_only else 0.0, 5.0 if decoder_only else 9.4)
    ax.set_ylim(-0.1, top_y + 2.7)
    ax.set_aspect("equal")
    ax.axis("off")
    if title is None:
        title = ("The transformer" if not decoder_only else "A GPT (decoder only)") + (
            f" — {', '.join(wanted)}" if wanted else "")
    ax.set_title(title, fontsize=11)
    return ax


# --- Notebook 08: the three steps of RLHF ---------------------------------------------------------

RLHF_STEPS = (
    ("1. Collect human comparisons",
     "a prompt, two answers;\na person picks the better one\n(data/preferences.jsonl)"),
    ("2. Train a reward model",
     "SFT model + a scalar head;\nloss −log σ(r_chosen − r_rejected)\n(rlhf.pairwise_loss)"),
    ("3. Optimise the policy with PPO",
     "sample answers, score them,\nclipped updates, KL penalty\nto the SFT model (rlhf.ppo_step)"),
)


def rlhf_diagram(highlight: int | None = None, ax=None):
    """The InstructGPT recipe as three boxes and arrows (notebook 08); `highlight` (1-3) colours one step."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    if highlight is not None and highlight not in (1, 2, 3):
        raise ValueError(f"highlight: expected 1, 2, 3 or None, got {highlight!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3))
    width, gap = 3.4, 0.55
    titles = [title for title, _ in RLHF_STEPS]
    _flow_row(ax, RLHF_STEPS, 0, width, gap, highlight=None if highlight is None else titles[highlight - 1],
              height=2.0, fontsize=(9.5, 8.5))
    right = len(RLHF_STEPS) * (width + gap) - gap
    ax.add_patch(FancyArrowPatch((right - width / 2, -0.1), (width / 2, -0.1), connectionstyle="arc3,rad=-0.18",
                                 arrowstyle="-|>", mutation_scale=14, color="#8899aa", linestyle="--"))
    ax.text(right / 2, -1.0, "repeat: new answers from the improved policy, new comparisons", ha="center",
            fontsize=8, color="#556677")
    ax.set_xlim(-0.2, right + 0.2)
    ax.set_ylim(-1.2, 2.2)
    ax.axis("off")
    ax.set_title("RLHF as in InstructGPT (Ouyang et al., 2022) and Stiennon et al. (2020)")
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
    check_positive_int("n_devices", n_devices)
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


PART_COLOURS = ("#e7f0fa", "#dff3e4", "#fff1c1", "#fde2e4")


def course_map(ax=None):
    """The eleven notebooks as a path of boxes, coloured by part, each with its topics (the README's map).

    Drawn from `outline.NOTEBOOKS` and `outline.PARTS`, so the map and the notebook table agree.
    `python -m course_lib.plots docs/course_map.png` stores it.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    from course_lib.outline import NOTEBOOKS, PARTS

    part_of = {n: k for k, (_, numbers) in enumerate(PARTS) for n in numbers}
    if ax is None:
        _, ax = plt.subplots(figsize=(14, 6.2))
    per_row, width, height, gap = 6, 2.1, 1.75, 0.45
    centres = {}
    for i, notebook in enumerate(NOTEBOOKS):
        row, col = divmod(i, per_row)
        if row % 2:  # a snake: the second row runs right to left
            col = per_row - 1 - col
        x, y = col * (width + gap), -row * (height + 0.9)
        centres[notebook.number] = (x + width / 2, y + height / 2)
        ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.04,rounding_size=0.12",
                                    facecolor=PART_COLOURS[part_of[notebook.number]], edgecolor="#33506b", lw=1.3))
        ax.text(x + width / 2, y + height - 0.22, f"{notebook.number:02d}", ha="center", va="center",
                fontsize=13, fontweight="bold", color="#33506b")
        ax.text(x + width / 2, y + height - 0.42, _wrap(notebook.title, 22), ha="center", va="top", fontsize=8.4,
                fontweight="bold")
        topics = ", ".join(notebook.topics[:4]) + (", ..." if len(notebook.topics) > 4 else "")
        ax.text(x + width / 2, y + 0.12, _wrap(topics, 26), ha="center", va="bottom", fontsize=7.2, color="#333333")
    for a, b in zip(NOTEBOOKS, NOTEBOOKS[1:]):
        (xa, ya), (xb, yb) = centres[a.number], centres[b.number]
        if ya == yb:  # along a row: edge to edge
            step = (width / 2 + 0.02) * (1 if xb > xa else -1)
            start, end = (xa + step, ya), (xb - step, yb)
        else:  # down to the next row
            start, end = (xa, ya - height / 2 - 0.02), (xb, yb + height / 2 + 0.02)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=15, color="#33506b"))
    ax.legend(handles=[Patch(facecolor=c, edgecolor="#33506b", label=f"{numbers[0]:02d}–{numbers[-1]:02d} {name}"
                             if len(numbers) > 1 else f"{numbers[0]:02d} {name}")
                       for c, (name, numbers) in zip(PART_COLOURS, PARTS)],
              loc="lower left", bbox_to_anchor=(0.0, -0.02), fontsize=8.5, frameon=False, ncol=2)
    ax.set_xlim(-0.2, per_row * (width + gap) - gap + 0.2)
    ax.set_ylim(-(height + 0.9) - 1.25, height + 0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("LLMs from Dummies: the course map", fontsize=13)
    return ax



def lora_diagram(d: int = 128, k: int = 128, rank: int = 8, ax=None):
    """LoRA's forward pass drawn to scale (notebook 08): h = W₀x + (α/r)·B·A·x beside the frozen W₀ (d×k)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    for name, value in (("d", d), ("k", k), ("rank", rank)):
        check_positive_int(name, value)
    if rank > min(d, k):
        raise ValueError(f"rank: expected at most min(d, k) = {min(d, k)}, got {rank}")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.6))
    unit = 3.0 / max(d, k)  # one matrix entry, in drawing units: W₀ is at most 3 x 3
    w0_w, w0_h, thin = k * unit, d * unit, max(rank * unit, 0.04)

    def box(x, y, w, h, colour, label, text_y=None):
        ax.add_patch(Rectangle((x, y), w, h, facecolor=colour, edgecolor="#33506b", linewidth=1.2))
        ax.text(x + w / 2, y + h / 2 if text_y is None else text_y, label, ha="center", va="center", fontsize=9)

    def arrow(start, end, colour="#33506b"):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=colour))

    top, low = 1.2, -0.6  # the frozen path's bottom edge and the adapter path's centre line
    b_x, b_h = 1.0 + w0_w + 0.8, d * unit
    plus_x, plus_y = b_x + 2.2, top + w0_h / 2
    box(0, low - 0.1, 0.25, 0.2 + top + w0_h / 2 - low, "#f1f3f5", "")
    ax.text(-0.1, (low + plus_y) / 2, f"x\n({k})", ha="right", va="center", fontsize=9)
    box(1.0, top, w0_w, w0_h, "#dee2e6", f"W₀  ({d} × {k})\nfrozen\n{d * k:,} numbers")
    box(1.0, low - thin / 2, w0_w, thin, "#ffd8a8", "")
    ax.text(1.0 + w0_w / 2, low - thin / 2 - 0.12, f"A  ({rank} × {k})\ntrainable, random at the start",
            ha="center", va="top", fontsize=9)
    box(b_x, low - b_h / 2, thin, b_h, "#ffc9c9", "")
    ax.text(b_x + thin + 0.12, low - b_h / 4, f"B  ({d} × {rank})\ntrainable,\nzero at the start", ha="left",
            va="center", fontsize=9)
    ax.text(plus_x, plus_y, "+", ha="center", va="center", fontsize=22, fontweight="bold", color="#33506b")
    arrow((0.3, plus_y), (0.95, plus_y))
    arrow((0.3, low), (0.95, low))
    arrow((1.05 + w0_w, plus_y), (plus_x - 0.25, plus_y))
    arrow((1.05 + w0_w, low), (b_x - 0.05, low))
    arrow((b_x + thin + 0.05, low + b_h / 4), (plus_x - 0.1, plus_y - 0.3), colour="#c92a2a")
    ax.text((b_x + plus_x) / 2 + 0.5, (low + plus_y) / 2 - 0.1, "× α/r", fontsize=9, color="#c92a2a")
    arrow((plus_x + 0.25, plus_y), (plus_x + 0.9, plus_y))
    ax.text(plus_x + 1.0, plus_y, f"h\n({d})", ha="left", va="center", fontsize=9)
    trainable = rank * (d + k)
    ax.set_title(f"LoRA, r = {rank}: h = W₀x + (α/r)·B·A·x; trains r·(d + k) = {trainable:,} numbers "
                 f"instead of d·k = {d * k:,} ({trainable / (d * k):.1%})", fontsize=10)
    ax.set_xlim(-0.8, plus_x + 1.6)
    ax.set_ylim(min(low - b_h / 2, low - 0.9) - 0.2, top + w0_h + 0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


# --- Notebook 08: one PPO iteration as a loop ------------------------------------------------------

PPO_LOOP = (
    ("policy π", "the language model\nbeing tuned (a copy\nof the SFT model)"),
    ("samples", "rollout: a few answers\nper prompt, sampled\nfrom π"),
    ("reward", "a score per answer\n(checker or reward model)\n− β·KL to the SFT model"),
    ("advantage", "value head + GAE:\nhow much better each\ntoken did than expected"),
    ("clipped update", "raise π(token) where A > 0,\nlower it where A < 0,\nratio kept in 1 ± ε"),
)


def ppo_loop(highlight: str | None = None, ax=None):
    """One PPO iteration (notebook 08): policy → samples → reward → advantage → clipped update, and
    back to the policy. `highlight` (a box title, e.g. "advantage") colours one box."""
    import matplotlib.pyplot as plt

    titles = [title for title, _ in PPO_LOOP]
    if highlight is not None and highlight not in titles:
        raise ValueError(f"highlight: expected one of {titles} or None, got {highlight!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 3.2))
    width, gap = 2.5, 0.5
    _flow_row(ax, PPO_LOOP, 0, width, gap, highlight=highlight, height=2.0, fontsize=(10, 8.5))
    right = len(PPO_LOOP) * (width + gap) - gap
    _flow_arrow(ax, (right - width / 2, -0.1), (width / 2, -0.1), rad=-0.15)
    ax.text(right / 2, -1.3, "the updated policy samples the next batch (rlhf.ppo_step is one turn of this loop)",
            ha="center", fontsize=8.5, color="#33506b")
    ax.set_xlim(-0.2, right + 0.2)
    ax.set_ylim(-1.5, 2.2)
    ax.axis("off")
    ax.set_title("One PPO iteration (Schulman et al., 2017), as notebook 08 runs it")
    return ax


AGENT_LOOP = (
    ("question", "the user's\nrequest"),
    ("model", "reads the conversation\nand the tools' schemas"),
    ("tool call", '{"name": "calculator",\n"arguments": {...}}'),
    ("tool", "runs the function\n(errors become messages)"),
    ("tool result", "a ToolMessage:\n'391'"),
)

RAG_INDEX = (("documents", "course_notes.md"), ("chunks", "split at headings,\n≤ 300 characters"),
             ("embeddings", "MiniLM: 384\nnumbers each"), ("vector DB", "Qdrant: vectors\n+ payloads"))
RAG_QUERY = (("question", "a user's\nquestion"), ("embedding", "the same\nMiniLM"),
             ("nearest chunks", "top k by\ncosine similarity"), ("prompt", "chunks pasted in\nas context"),
             ("model", "SmolLM2 reads\nthe prompt"), ("answer", "scored against\nthe reference"))


def _flow_box(ax, x: float, y: float, title: str, body: str, width: float, colour: str = "#e7f0fa",
              height: float = 1.6, fontsize: tuple[float, float] = (10, 8)) -> None:
    """A rounded box with a bold title near its top and a body below it; fontsize is (title, body)."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.05,rounding_size=0.15",
                                facecolor=colour, edgecolor="#33506b", linewidth=1.5))
    ax.text(x + width / 2, y + height - 0.3, title, ha="center", va="center", fontsize=fontsize[0],
            fontweight="bold")
    ax.text(x + width / 2, y + 0.375 * height, body, ha="center", va="center", fontsize=fontsize[1])


def _flow_arrow(ax, start, end, rad: float = 0.0, colour: str = "#33506b") -> None:
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                 mutation_scale=16, color=colour))


def _flow_row(ax, steps, y: float, width: float, gap: float, highlight: str | None = None,
              height: float = 1.6, fontsize: tuple[float, float] = (10, 8)) -> None:
    """(title, body) boxes left to right at height y, each joined to the next by an arrow; `highlight` colours one."""
    for i, (title, body) in enumerate(steps):
        x = i * (width + gap)
        _flow_box(ax, x, y, title, body, width, "#ffd8a8" if title == highlight else "#e7f0fa", height, fontsize)
        if i < len(steps) - 1:
            _flow_arrow(ax, (x + width + 0.05, y + height / 2), (x + width + gap - 0.05, y + height / 2))


def agent_loop_diagram(ax=None):
    """The agent loop (notebook 10): question → model → tool call → tool → result → model again, until the
    model answers in plain text."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(13, 4.2))
    width, gap = 2.3, 0.6
    _flow_row(ax, AGENT_LOOP, 0, width, gap, highlight="model")
    model_x, last_x = width + gap, (len(AGENT_LOOP) - 1) * (width + gap)
    _flow_arrow(ax, (last_x + width / 2, -0.1), (model_x + width / 2, -0.1), rad=-0.2)
    ax.text((model_x + last_x + width) / 2, -1.45, "appended to the conversation; the model is called again",
            ha="center", fontsize=8.5, color="#33506b")
    _flow_box(ax, model_x, 2.6, "answer", "plain text: no tool call,\nthe loop stops", width, "#d3f0d3")
    _flow_arrow(ax, (model_x + width / 2, 1.7), (model_x + width / 2, 2.55))
    ax.set_xlim(-0.2, last_x + width + 0.2)
    ax.set_ylim(-1.7, 4.4)
    ax.axis("off")
    ax.set_title("An agent is a loop: the model asks, the program runs the tool, the result goes back")
    return ax


def rag_pipeline_diagram(ax=None):
    """Retrieval-augmented generation (notebook 10): documents → chunks → embeddings → vector DB, once;
    then per question: embedding → nearest chunks → prompt → model → answer."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(14, 4.6))
    width, gap = 2.0, 0.45
    for row, (steps, y, label) in enumerate(((RAG_INDEX, 2.6, "once, ahead of time: indexing"),
                                             (RAG_QUERY, 0.0, "for each question: retrieval and generation"))):
        _flow_row(ax, steps, y, width, gap, highlight="vector DB")
        ax.text(-0.2, y + 1.85, label, fontsize=9, color="#556677", style="italic")
    db_x, nearest_x = 3 * (width + gap), 2 * (width + gap)
    _flow_arrow(ax, (db_x + width / 2, 2.55), (nearest_x + width / 2 + 0.3, 1.7))
    ax.text(db_x + width / 2 + 0.15, 2.05, "search", fontsize=8.5, color="#33506b")
    ax.set_xlim(-0.3, len(RAG_QUERY) * (width + gap))
    ax.set_ylim(-0.3, 4.7)
    ax.axis("off")
    ax.set_title("Retrieval-augmented generation: the nearest chunks become the prompt's context")
    return ax


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


if __name__ == "__main__":  # python -m course_lib.plots docs/course_map.png
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(sys.argv) != 2 or not sys.argv[1].endswith(".png"):
        raise SystemExit("usage: python -m course_lib.plots PATH.png  (draws the course map there)")
    figure = course_map().figure
    figure.savefig(sys.argv[1], dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
