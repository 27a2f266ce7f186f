"""The study's figures: one style, one save helper, one function per kind of figure.

What it is: matplotlib figures sized for the AAAI paper (a column is 3.3 in, the full width 7 in) with
7-9 pt serif text, Type-42 fonts in the PDF, and a colour-blind-safe palette; `save` writes each figure
as PDF (for the paper) and PNG (for viewing), stamped "synthetic data" when the data is not CIFAR-100.
What it is not: where numbers are computed — callers pass histories, statistics and images in.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patches, ticker

from ..core import paths
from ..core.checkpoint import atomic_write, remove_stale_temporaries
from ..core.notation import parameter_name

COLUMN_WIDTH = 3.3  # inches, one AAAI column
FULL_WIDTH = 7.0  # inches, both columns
PALETTE = sns.color_palette("colorblind")  # Okabe-Ito-like, distinguishable under common colour blindness
STYLE = {
    "pdf.fonttype": 42,  # TrueType in the PDF; the AAAI kit refuses matplotlib's default Type 3 fonts
    "ps.fonttype": 42,
    "font.family": "serif",
    "font.serif": ["STIX Two Text", "STIXGeneral", "Times New Roman", "DejaVu Serif"],
    "mathtext.fontset": "stix",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


def use_style() -> None:
    """Apply the figure style (after any seaborn theme call: `sns.set_theme` resets font sizes)."""
    plt.rcParams.update(STYLE)


use_style()


def save(fig: plt.Figure, stem: str, data_kind: str, profile: str, folder: Path | None = None) -> None:
    """Write `fig` as `<stem>.pdf` and `<stem>.png` in the profile's figures folder (or `folder`). Returns
    nothing, so that a notebook cell ending with it shows the figure and no list of paths.

    Figures of anything but the official CIFAR-100 carry a visible "synthetic data" mark. Each file is written
    whole or not at all (a temporary file renamed into place, lib.core.checkpoint.atomic_write); a folder that cannot
    be written (read-only, a full disk) raises OSError, one line naming the folder, and leaves its files as they were.
    """
    if data_kind != "cifar100":
        label = "synthetic data" if data_kind == "synthetic" else f"{data_kind} data"
        fig.text(0.5, 0.5, label, transform=fig.transFigure, ha="center", va="center", fontsize=20,
                 color="tab:red", alpha=0.25, rotation=20, zorder=1000)
    folder = Path(folder) if folder is not None else paths.figures_dir(profile)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)  # of saves that were killed; another notebook saving beside us keeps its own
        for suffix in (".pdf", ".png"):  # the format named: a temporary file's name does not end in it
            atomic_write(folder / f"{stem}{suffix}", lambda tmp, kind=suffix[1:]: fig.savefig(tmp, format=kind))
    except OSError as error:
        raise OSError(f"figure {stem} could not be written to the folder {folder} ({error.strerror or error}): free "
                      f"space there or make it writable, then run the notebook again") from None


MARKERS = ("o", "s", "^", "D", "v", "P")  # one per setting, so settings differ in greyscale too
DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 2)))


def save_or_remove(figures: dict, data_kind: str, profile: str) -> list[str]:
    """Save each figure of `figures` (stem -> a function that draws it, or None for one that does not apply to this
    run) with `save`; a stem whose figure does not apply is removed from the profile's figures folder, so that an
    earlier run's never passes for this one's. Returns the stems written (the results file lists them)."""
    written = []
    for stem, draw in figures.items():
        if draw is None:
            for suffix in (".pdf", ".png"):
                (paths.figures_dir(profile) / f"{stem}{suffix}").unlink(missing_ok=True)
        else:
            save(draw(), stem, data_kind, profile)
            written.append(stem)
    return written


def _setting_style(i: int, n_epochs: int) -> dict:
    """Colour, marker and line style of the i-th setting: each differs, so print in greyscale still tells them
    apart. Long runs mark about a dozen points so the markers stay visible on noisy curves."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "ls": DASHES[i % len(DASHES)], "markevery": max(1, n_epochs // 12), "markersize": 3}


ZOOM_FROM = 2 / 3  # the curves figure's fifth panel shows validation accuracy from this fraction of training on
EPOCH_STEPS = [1, 2, 5, 10]  # epoch ticks at 1, 2 or 5 times a power of ten, at most 4 intervals: 0-300 every 100


def plot_curves(histories: dict[str, pd.DataFrame], title: str | None = None) -> plt.Figure:
    """Full-width figure of five panels against epoch, one colour, marker and line style per setting: training
    loss (log axis, so losses near 0 stay apart), validation loss, training accuracy, validation accuracy, and
    validation accuracy again over the last third of training (`ZOOM_FROM` on), where settings differ least; a
    box in the fourth panel marks what the fifth enlarges. `histories` maps a setting's name (as the paper writes
    it, e.g. "$\\eta=0.05$") to its per-epoch metrics; means over seeds get a band of +- 1 standard deviation
    (the paper's caption says so: no text about it in the figure)."""
    fig, axes = plt.subplots(1, 5, figsize=(FULL_WIDTH, 2.0), constrained_layout=True)
    panels = [("train_loss", "training loss", 1), ("val_loss", "validation loss", 1),
              ("train_acc", "training accuracy", 100), ("val_acc", "validation accuracy", 100),
              ("val_acc", "validation acc., last third", 100)]
    for ax, (column, name, scale) in zip(axes, panels, strict=True):
        log = ax is axes[0]
        for i, (label, history) in enumerate(histories.items()):
            style = _setting_style(i, len(history))
            values = scale * history[column]
            ax.plot(history["epoch"], _positive(values) if log else values, label=label, **style)
            _band(ax, history, column, scale, style["color"], log=log)
        ax.set(xlabel="epoch", title=name)
        ax.tick_params(labelsize=7.5)  # at least 7 pt printed: the paper sets the figure at \textwidth
        ax.xaxis.get_major_locator().set_params(integer=True, nbins=4, steps=EPOCH_STEPS)
    _log_axis(axes[0], [history["train_loss"] for history in histories.values()])
    _zoom(axes[4], axes[3], histories)
    axes[0].set_ylabel("cross-entropy (nats)")
    axes[2].set_ylabel("accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    if title:
        fig.suptitle(title)
    return fig


def _positive(values: pd.Series) -> pd.Series:
    """`values` with what a log axis cannot show (<= 0, infinite, not a number) as gaps (NaN)."""
    return values.where(np.isfinite(values) & (values > 0))


def zoom_start(epochs: pd.Series) -> float:
    """The first epoch of the last third of training (`ZOOM_FROM`): 11 of 1..15, 201 of 1..300; the last epoch
    when there are fewer than three."""
    first, last = float(epochs.min()), float(epochs.max())
    return float(epochs[epochs >= first + ZOOM_FROM * (last - first)].min())


def _zoom(ax: plt.Axes, source: plt.Axes, histories: dict[str, pd.DataFrame]) -> None:
    """Limit `ax` (a copy of the validation-accuracy panel) to the last third of training and to the range of the
    curves and bands there, and mark that box on `source`, the whole panel."""
    start = min(zoom_start(history["epoch"]) for history in histories.values())
    end = max(float(history["epoch"].max()) for history in histories.values())
    shown = []
    for history in histories.values():
        late = history[history["epoch"] >= start]
        spread = late["val_acc_std"] if "val_acc_std" in late else 0
        shown += [100 * (late["val_acc"] - spread), 100 * (late["val_acc"] + spread)]
    low, high = float(np.nanmin(np.concatenate(shown))), float(np.nanmax(np.concatenate(shown)))
    pad = max(0.05 * (high - low), 0.1)  # a flat curve still gets a visible range (0.1 points either side)
    x_pad = max(0.5, 0.02 * (end - start))  # the first and last markers whole
    box = (start - x_pad, end + x_pad, low - pad, high + pad)
    ax.set(xlim=box[:2], ylim=box[2:])
    source.add_patch(patches.Rectangle((box[0], box[2]), box[1] - box[0], box[3] - box[2], fill=False,
                                                  edgecolor="0.4", lw=0.6, ls=":", zorder=5))


def _log_axis(ax: plt.Axes, series: list[pd.Series]) -> None:
    """A log y axis for `series`: labelled decades (`_log_decades`) when they span a factor of 10 or more, else
    a few ticks inside the one decade, labelled as plain numbers (4.6, not 4.6 x 10^0)."""
    values = np.concatenate([_positive(pd.Series(s, dtype=float)).dropna().to_numpy() for s in series])
    ax.set_yscale("log")
    if len(values) and values.max() >= 10 * values.min():
        _log_decades(ax, values)
    else:
        ax.yaxis.set_major_locator(ticker.MaxNLocator(4))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:.3g}"))
        ax.yaxis.set_minor_locator(ticker.NullLocator())


def decade_limits(values: np.ndarray) -> tuple[float, float]:
    """The powers of ten just below and above the positive finite `values` (one decade at least); (1, 10) when
    there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return 1.0, 10.0
    low, high = int(np.floor(np.log10(values.min()))), int(np.ceil(np.log10(values.max())))
    return 10.0 ** low, 10.0 ** max(high, low + 1)


def _log_decades(ax: plt.Axes, values: np.ndarray) -> None:
    """A log y axis from the decade below `values` to the decade above: a labelled major tick at every power of
    ten in between, unlabelled minor ticks at 2-9 times each."""
    low, high = decade_limits(values)
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    decades = 10.0 ** np.arange(round(np.log10(low)), round(np.log10(high)) + 1)
    ax.yaxis.set_major_locator(ticker.FixedLocator(decades))
    ax.yaxis.set_major_formatter(ticker.LogFormatterSciNotation())
    ax.yaxis.set_minor_locator(ticker.LogLocator(base=10, subs=np.arange(2, 10), numticks=100))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _band(ax: plt.Axes, history: pd.DataFrame, column: str, scale: float, color, log: bool = False) -> None:
    """Shade mean +- 1 standard deviation over seeds where the history has it (lib.studies.seeds.Setting.history)."""
    if f"{column}_std" not in history:
        return
    mean, spread = scale * history[column].to_numpy(), scale * history[f"{column}_std"].to_numpy()
    low = np.maximum(mean - spread, mean / 10) if log else mean - spread  # a log axis cannot show <= 0
    ax.fill_between(history["epoch"], low, mean + spread, color=color, alpha=0.2, linewidth=0)


def plot_class_proportions(proportions: np.ndarray, n_images: int) -> plt.Figure:
    """Column-width bar chart of each class's share of the training split, with the uniform share marked."""
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 1.7), constrained_layout=True)
    classes = np.arange(len(proportions))
    ax.bar(classes, 100 * proportions, width=0.8, color=PALETTE[0], linewidth=0)
    ax.axhline(100 / len(proportions), color=PALETTE[3], lw=0.8, ls="--", label="uniform")
    ax.set(xlabel="class index", ylabel="share of images (%)", xlim=(-1, len(proportions)))
    ax.set_title(f"{n_images:,} training images", fontsize=7, loc="left")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.1)  # above the bars, beside the title
    return fig


def plot_image_grid(images: np.ndarray, titles: list[str] | None = None, columns: int = 8,
                    width: float = COLUMN_WIDTH) -> plt.Figure:
    """A grid of images (uint8 N x H x W x 3, or float in [0, 1]) with optional small titles."""
    rows = int(np.ceil(len(images) / columns))
    cell = width / columns
    fig, axes = plt.subplots(rows, columns, figsize=(width, rows * cell * (1.25 if titles else 1.0)),
                             squeeze=False, constrained_layout=True)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], interpolation="nearest")
            if titles and titles[i]:
                ax.set_title(titles[i], fontsize=6, pad=1)
    return fig


def plot_mixup_examples(first: np.ndarray, second: np.ndarray, mixed: np.ndarray, weights: np.ndarray
                        ) -> plt.Figure:
    """Column-width grid of mixup examples, one pair per column: the image x_i (top row), its partner x_j (middle)
    and the mixed image m x_i + (1 - m) x_j (bottom, titled with its weight m, set by the caller rather than
    drawn); each row says what it is at the left. Images are N x H x W x 3 floats in [0, 1] (or uint8);
    `weights` holds the N weights m."""
    columns = len(weights)
    cell = (COLUMN_WIDTH - 0.7) / columns  # inches per image; 0.7 in for the row labels
    fig, axes = plt.subplots(3, columns, figsize=(COLUMN_WIDTH, 3 * cell + 0.2), squeeze=False, layout="constrained")
    fig.get_layout_engine().set(wspace=0.02, hspace=0.02)  # images close together, as one grid
    rows = [(first, "image $x_i$"), (second, "partner $x_j$"), (mixed, "mixed with\nset weight $m$")]
    for row, (images, name) in zip(axes, rows, strict=True):
        for column, ax in enumerate(row):
            ax.imshow(images[column], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            ax.grid(False)
        row[0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center", labelpad=2)
    for ax, weight in zip(axes[2], weights, strict=True):
        ax.set_title(f"$m$={weight:.2f}", fontsize=6, pad=1)
    return fig


def plot_lr_schedules(curves: dict[str, tuple[list[float], list[float]]]) -> plt.Figure:
    """Column-width plot of the learning rate at every optimiser step; `curves` maps a label to (epoch, lr)."""
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 1.9), constrained_layout=True)
    for i, (label, (epoch, lr)) in enumerate(curves.items()):
        ax.plot(epoch, lr, label=label, **{**_setting_style(i, len(epoch)), "markevery": max(1, len(epoch) // 8)})
    ax.set(xlabel="epoch", ylabel="learning rate", ylim=(0, None))
    ax.legend()
    return fig


def plot_beta_pdf(alpha: float, weights: np.ndarray) -> plt.Figure:
    """Column-width plot of the Beta(alpha, alpha) density with a histogram of the drawn mixing weights (m, the
    paper's symbol; lambda is weight decay there) over it."""
    from scipy import stats

    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.0), constrained_layout=True)
    heights, _, _ = ax.hist(weights, bins=40, range=(0, 1), density=True, color=PALETTE[0], alpha=0.45,
                            label=f"{len(weights):,} draws of $m$")
    x = np.linspace(0.002, 0.998, 500)  # the density is infinite at 0 and 1 for alpha < 1
    ax.plot(x, stats.beta.pdf(x, alpha, alpha), color=PALETTE[3], label=f"Beta({alpha:g}, {alpha:g}) density")
    top = max(6.0, 1.1 * float(np.max(heights)))  # every bar whole; the density itself leaves at 0 and 1
    ax.set(xlabel="mixing weight $m$", ylabel="probability density", xlim=(0, 1), ylim=(0, top))
    ax.legend(loc="upper center")
    return fig


def plot_grad_norms(histories: dict[str, pd.DataFrame], parameter: str) -> plt.Figure:
    """Column-width plot of the per-epoch mean gradient 2-norm of one parameter w (column `grad_norm_mean`), one
    line per setting, on a log axis whose labelled decades cover every value; where the histories hold the
    parameter's own norm (`weight_norm`), a second panel beside it shows the relative gradient
    ||grad w|| / ||w|| (a weight's scale, under BatchNorm, sets how much a gradient of a given size moves it).
    Means over seeds get a band of +- 1 standard deviation on the gradient norm (the caption says so)."""
    relative = all("weight_norm" in history for history in histories.values())
    fig, axes = plt.subplots(1, 2 if relative else 1, figsize=(COLUMN_WIDTH, 2.0), constrained_layout=True,
                             squeeze=False)
    grad_ax = axes[0][0]
    for i, (label, history) in enumerate(histories.items()):
        style = _setting_style(i, len(history))
        grad_ax.plot(history["epoch"], _positive(history["grad_norm_mean"]), label=label, **style)
        _band(grad_ax, history, "grad_norm_mean", 1, style["color"], log=True)
    _log_decades(grad_ax, np.concatenate([history["grad_norm_mean"].to_numpy() for history in histories.values()]))
    grad_ax.set(ylabel=f"2-norm; $w$ = {parameter_name(parameter)}", title="$\\|\\nabla w\\|$ (mean over steps)")
    if relative:
        ratios = {label: _positive(history["grad_norm_mean"] / history["weight_norm"])
                  for label, history in histories.items()}
        for i, (label, ratio) in enumerate(ratios.items()):
            axes[0][1].plot(histories[label]["epoch"], ratio, label=label, **_setting_style(i, len(ratio)))
        _log_decades(axes[0][1], np.concatenate([ratio.to_numpy() for ratio in ratios.values()]))
        axes[0][1].set(title="$\\|\\nabla w\\| / \\|w\\|$")
    for ax in axes[0]:
        ax.set(xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True, nbins=4, steps=EPOCH_STEPS)
    handles, labels = grad_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    return fig


def plot_sweep(table: pd.DataFrame, fields: list[str], metric: str = "val acc (%)") -> plt.Figure:
    """One panel per varied field (lib.studies.sweep.sweep_table rows): the metric of every setting against that field's
    value, each setting a point (with +- 1 standard deviation over seeds where the table has it), and the mean
    over the other fields' values as a line. Numeric fields spanning a factor of 10 or more get a log axis."""
    fig, axes = plt.subplots(1, len(fields), figsize=(min(FULL_WIDTH, 2.4 * len(fields) + 0.6), 2.2),
                             constrained_layout=True, squeeze=False)
    spread = f"{metric.split(' (')[0]} sd"
    for ax, field in zip(axes[0], fields, strict=True):
        values = table[field]
        numeric = pd.api.types.is_numeric_dtype(values)
        order = sorted(values.unique()) if numeric else list(dict.fromkeys(values))
        x = values if numeric else values.map({v: i for i, v in enumerate(order)})
        seeds = f" (mean ± 1 sd over {table['seeds'].max()} seeds)" if spread in table else ""
        ax.errorbar(x, table[metric], yerr=table[spread] if spread in table else None, fmt="o", ms=3,
                    color=PALETTE[0], capsize=2, lw=0.8, label=f"a setting{seeds}")
        means = table.groupby(x)[metric].mean().sort_index()
        ax.plot(means.index, means.to_numpy(), color=PALETTE[1], ls="--", lw=1, label="mean over the other fields")
        if numeric and min(order) > 0 and max(order) / min(order) >= 10:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(order)), [str(v) for v in order])
        ax.set(xlabel=field, title=f"{metric} vs {field}")
    axes[0][0].set_ylabel(metric)
    axes[0][0].legend(fontsize="x-small")
    return fig


def plot_parallel_coordinates(table: pd.DataFrame, fields: list[str], metric: str = "val acc (%)",
                              what: str = "sweep: each line a setting") -> plt.Figure:
    """Full-width parallel coordinates of a sweep (three or more varied fields): one vertical axis per field and
    one for the metric, each scaled to its range (log for numeric fields spanning a factor of 10 or more; the
    ticks show the values), one line per setting coloured by the metric."""
    fig, ax = plt.subplots(figsize=(FULL_WIDTH, 2.6), constrained_layout=True)
    columns = [*fields, metric]
    scaled, ticks = {}, {}
    for column in columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values):
            numbers = values.astype(float)
            log = numbers.min() > 0 and numbers.max() / numbers.min() >= 10 and column != metric
            shown = np.log10(numbers) if log else numbers
            low, high = shown.min(), shown.max()
            scaled[column] = (shown - low) / (high - low) if high > low else shown * 0 + 0.5
            ticks[column] = [(float(s), f"{v:.3g}") for s, v in zip(scaled[column], numbers, strict=True)]
        else:
            order = list(dict.fromkeys(values))
            position = {v: i / max(1, len(order) - 1) for i, v in enumerate(order)}
            scaled[column] = values.map(position)
            ticks[column] = [(position[v], str(v)) for v in order]
    colours = plt.get_cmap("viridis")
    metric_scaled = scaled[metric]
    for row in range(len(table)):
        ax.plot(range(len(columns)), [scaled[c].iloc[row] for c in columns], color=colours(metric_scaled.iloc[row]),
                lw=1.2, alpha=0.8)
    for i, column in enumerate(columns):
        ax.axvline(i, color="0.6", lw=0.6)
        for y, text in dict(ticks[column]).items():  # one label per distinct position
            ax.text(i + 0.03, y, text, fontsize="xx-small", va="center")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks([])
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.set_xlim(-0.1, len(columns) - 0.6)
    ax.set_title(f"{what}, coloured by {metric} (yellow = highest)")
    return fig


def plot_search_history(table: pd.DataFrame, objective: str, maximize: bool) -> plt.Figure:
    """A search's optimisation history (lib.studies.search.trials_table rows): each finished trial's objective against
    its number, pruned trials (for the accuracy objective) as open markers at the accuracy they were stopped with, and
    the best so far as a step line."""
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.2), constrained_layout=True)
    done = table[table["state"] == "complete"].sort_values("trial")
    ax.plot(done["trial"], done[objective], "o", color=PALETTE[0], label="finished trial")
    pruned = table[table["state"] == "pruned"]
    if len(pruned):
        metric = "final val acc (%)" if objective == "val_acc" else None
        if metric is not None:
            ax.plot(pruned["trial"], pruned[metric] / 100, "o", mfc="none", color=PALETTE[1],
                    label="pruned (at its last epoch)")
    best = done[objective].cummax() if maximize else done[objective].cummin()
    ax.step(done["trial"], best, where="post", color=PALETTE[2], label="best so far")
    ax.set(xlabel="trial", ylabel=f"final {objective}", title=f"search: final {objective} per trial")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="x-small")
    return fig


def plot_importances(importances: dict[str, float]) -> plt.Figure:
    """Horizontal bars of each searched setting's importance (Optuna's, summing to 1), most important on top."""
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 0.4 + 0.3 * len(importances)), constrained_layout=True)
    names = list(importances)[::-1]
    ax.barh(names, [importances[name] for name in names], color=PALETTE[0])
    ax.set(xlabel="importance (share of the objective's variation)", title="search: what the objective depends on")
    return fig


def plot_train_val_curves(histories: dict[str, pd.DataFrame]) -> plt.Figure:
    """Full-width figure of two panels, loss and accuracy against epoch: each setting (e.g. an architecture) in its
    own colour and marker, its training curve dashed and its validation curve solid on the same axes, so that
    settings and their gaps between training and validation compare at a glance. `histories` maps a setting's name
    to its per-epoch metrics; means over seeds get a band of +- 1 standard deviation (the caption says so)."""
    fig, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.3), constrained_layout=True)
    for ax, (metric, name, scale) in zip(axes, [("loss", "cross-entropy (nats)", 1), ("acc", "accuracy (%)", 100)],
                                         strict=True):
        for i, (label, history) in enumerate(histories.items()):
            style = _setting_style(i, len(history))
            for split, ls in (("train", "--"), ("val", "-")):
                column = f"{split}_{metric}"
                ax.plot(history["epoch"], scale * history[column], **{**style, "ls": ls},
                        label=label if split == "val" else None)
                _band(ax, history, column, scale, style["color"])
        ax.set(xlabel="epoch", ylabel=name, title=f"{name.split(' (')[0]}: training dashed, validation solid")
        ax.xaxis.get_major_locator().set_params(integer=True, nbins=4, steps=EPOCH_STEPS)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    return fig
