"""Plots of evaluation results (matplotlib, from the `train` or `dev` extra)."""

from __future__ import annotations

from kws.errors import KwsError
from kws.fileio import atomic_path


def effective_ops(arch, op) -> float:
    """Operations per inference as the BiFSMN paper counts them: float MACs + binary MACs / 64."""
    c = arch.costs(op)
    return c["float_macs"] + c["binary_macs"] / 64


def series_name(result: dict) -> str:
    p = result.get("perturbation") or {}
    parts = []
    if p.get("snr_db") is not None:
        parts.append(f"noise {p['snr_db']:g} dB SNR")
    if p.get("resample_hz") is not None:
        parts.append(f"{p['resample_hz'] / 1000:g} kHz band")
    if p.get("gain_db") is not None:
        parts.append(f"level {p['gain_db']:+g} dB")
    return ", ".join(parts) or "clean"


def accuracy_vs_cost(results: list[dict], path, model=None) -> None:
    """PNG: accuracy of every operating point against its cost, one line per width, one colour
    per evaluation condition (`kws eval --json` results of the same model); the float teacher
    (when evaluated) as a dashed line."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise KwsError("plots need matplotlib: pip install matplotlib") from None
    from kws.detector import resolve_model
    model = resolve_model(model if model is not None else results[0]["model"])
    arch = model.arch
    fig, ax = plt.subplots(figsize=(9.5, 4.5), dpi=110)
    markers = {w: m for w, m in zip(sorted(arch.widths, reverse=True), "osD^v")}
    for k, r in enumerate(results):
        colour = f"C{k}"
        for w in sorted(arch.widths, reverse=True):
            ops = [op for op in arch.operating_points if op.width == w]
            xs = [effective_ops(arch, op) / 1e3 for op in ops]
            ys = [100 * r["accuracy"][op.name] for op in ops]
            # the first condition names each width's marker; the others name their colour once
            label = f"{series_name(r)}, width {w:g}" if k == 0 else \
                (f"{series_name(r)}, all widths" if w == max(arch.widths) else None)
            ax.plot(xs, ys, marker=markers[w], color=colour, linewidth=1, label=label)
            if k == 0:
                for x, y, op in zip(xs, ys, ops):
                    ax.annotate(op.name, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
        if r.get("teacher_accuracy") is not None:
            ax.axhline(100 * r["teacher_accuracy"], color=colour, linestyle="--", linewidth=0.8,
                       label=f"float teacher ({series_name(r)})")
    ax.set_xscale("log")
    ax.set_xlabel("operations per inference, thousands (float MACs + binary MACs / 64)")
    ax.set_ylabel("accuracy, % (12 classes)")
    split = results[0].get("split", "")
    ax.set_title(f"kws operating points: accuracy vs cost ({split} split)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # outside: covers no point
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
