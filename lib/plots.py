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

from . import paths

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


def save(fig: plt.Figure, stem: str, data_kind: str, folder: Path | None = None) -> list[Path]:
    """Write `fig` as `<stem>.pdf` and `<stem>.png` in the figures folder; returns both paths.

    Figures of anything but the official CIFAR-100 carry a visible "synthetic data" mark.
    """
    if data_kind != "cifar100":
        label = "synthetic data" if data_kind == "synthetic" else f"{data_kind} data"
        fig.text(0.5, 0.5, label, transform=fig.transFigure, ha="center", va="center", fontsize=20,
                 color="tab:red", alpha=0.25, rotation=20, zorder=1000)
    folder = Path(folder) if folder is not None else paths.figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".pdf", ".png"):
        path = folder / f"{stem}{suffix}"
        fig.savefig(path)
        written.append(path)
    return written


def _markers(n_epochs: int) -> dict:
    return {"marker": "o"} if n_epochs <= 20 else {}  # short runs: show the points, not only the lines


def plot_curves(histories: dict[str, pd.DataFrame], title: str | None = None) -> plt.Figure:
    """Full-width figure: loss (left) and accuracy (right) against epoch, one colour per setting,
    training solid and validation dashed. `histories` maps a setting's label to its per-epoch metrics."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.3), constrained_layout=True)
    for colour, history in zip(PALETTE, histories.values(), strict=False):
        style = _markers(len(history))
        for split, dash in (("train", "-"), ("val", "--")):
            ax_loss.plot(history["epoch"], history[f"{split}_loss"], dash, color=colour, **style)
            ax_acc.plot(history["epoch"], 100 * history[f"{split}_acc"], dash, color=colour, **style)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss (nats)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)
    settings = [plt.Line2D([], [], color=c, label=label) for c, label in zip(PALETTE, histories, strict=False)]
    splits = [plt.Line2D([], [], color="0.3", ls="-", label="training"),
              plt.Line2D([], [], color="0.3", ls="--", label="validation")]
    ax_acc.legend(handles=settings + splits, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        fig.suptitle(title)
    return fig


def plot_class_proportions(proportions: np.ndarray, n_images: int) -> plt.Figure:
    """Column-width bar chart of each class's share of the training split, with the uniform share marked."""
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 1.7), constrained_layout=True)
    classes = np.arange(len(proportions))
    ax.bar(classes, 100 * proportions, width=0.8, color=PALETTE[0], linewidth=0)
    ax.axhline(100 / len(proportions), color=PALETTE[3], lw=0.8, ls="--", label="uniform")
    ax.set(xlabel="class index", ylabel="share of images (%)", xlim=(-1, len(proportions)))
    ax.set_title(f"{n_images:,} training images", fontsize=7)
    ax.legend(loc="lower right")
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


def plot_lr_schedules(curves: dict[str, tuple[list[float], list[float]]]) -> plt.Figure:
    """Column-width plot of the learning rate at every optimiser step; `curves` maps a label to (epoch, lr)."""
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 1.9), constrained_layout=True)
    for label, (epoch, lr) in curves.items():
        ax.plot(epoch, lr, label=label)
    ax.set(xlabel="epoch", ylabel="learning rate", ylim=(0, None))
    ax.legend()
    return fig


def plot_beta_pdf(alpha: float, lambdas: np.ndarray) -> plt.Figure:
    """Column-width plot of the Beta(alpha, alpha) density with a histogram of the drawn lambdas over it."""
    from scipy import stats

    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.0), constrained_layout=True)
    ax.hist(lambdas, bins=40, range=(0, 1), density=True, color=PALETTE[0], alpha=0.45,
            label=f"{len(lambdas):,} $\\lambda$ drawn by training")
    x = np.linspace(0.002, 0.998, 500)  # the density is infinite at 0 and 1 for alpha < 1
    ax.plot(x, stats.beta.pdf(x, alpha, alpha), color=PALETTE[3], label=f"Beta({alpha:g}, {alpha:g}) density")
    ax.set(xlabel="mixing weight $\\lambda$", ylabel="probability density", xlim=(0, 1), ylim=(0, 6))
    ax.legend(loc="upper center")
    return fig


def plot_grad_norms(grad_norms: dict[str, list[float]], parameter: str) -> plt.Figure:
    """Column-width plot of the per-epoch mean gradient 2-norm of one parameter, one line per setting."""
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.0), constrained_layout=True)
    for label, values in grad_norms.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=label, **_markers(len(values)))
    ax.set(xlabel="epoch", ylabel=f"$\\|\\nabla\\|_2$ of {parameter}\n(mean over the epoch's steps)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return fig
