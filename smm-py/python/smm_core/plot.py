"""Pictures of reports and sweeps (``pip install "smm-core[plot]"``).

Each function returns a :class:`matplotlib.figure.Figure` (made without
pyplot, so it works headless and touches no global state): save it with
``fig.savefig("readiness.png")`` or ``.svg``, or show it in a notebook. For
any other plotting library, ``report.histogram(bins)`` gives numpy counts and
edges, and ``report.to_records()`` / ``SweepResult.records()`` flat rows.
"""

from typing import Any, Optional, Sequence

_RATES = [
    ("readiness_score", "readiness"),
    ("policy_pass_pct", "policy pass"),
    ("citation_coverage", "citation coverage"),
    ("duplication_risk", "duplication risk"),
    ("technical_readiness", "technical readiness"),
]


def _figure(width: float = 7.0, height: float = 4.0) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('smm_core.plot needs matplotlib: pip install "smm-core[plot]"') from e
    return Figure(figsize=(width, height), layout="constrained")


def readiness(report: Any, bins: int = 50) -> Any:
    """The readiness distribution of ``report``: a histogram of the samples in
    ``bins`` bins (when the report kept them), its p5/p50/p95, and the confidence
    interval of the mean."""
    fig = _figure()
    ax = fig.add_subplot()
    r = report.readiness_score
    if report.has_samples:
        counts, edges = report.histogram(bins)
        widths = edges[1:] - edges[:-1]
        ax.bar(edges[:-1], counts / counts.sum(), width=widths, align="edge", color="#8fb3d9", edgecolor="white",
               label="share of iterations")
    else:
        # No samples: the percentile box (p5–p95 whiskers, p25–p75 box).
        ax.broken_barh([(r.p25, r.p75 - r.p25)], (0.35, 0.3), color="#8fb3d9", label="p25–p75")
        ax.hlines(0.5, r.p5, r.p95, color="#4a6d94", label="p5–p95")
        ax.set_yticks([])
    for value, style, label in [(r.p5, ":", "p5"), (r.p50, "--", "median"), (r.p95, ":", "p95")]:
        ax.axvline(value, linestyle=style, color="#4a6d94", linewidth=1)
        ax.annotate(label, (value, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
    lo, hi = r.confidence_interval
    ax.axvspan(lo, hi, color="#d9822b", alpha=0.35, label=f"{r.confidence_level:.0%} CI of the mean")
    ax.axvline(r.mean, color="#d9822b", linewidth=1.5, label=f"mean {r.mean:.4f}")
    ax.set_xlabel("readiness score")
    ax.set_title(f"Readiness ({report.model_id}, {report.iterations_run:,} iterations, seed {report.seed})",
                 fontsize=10, pad=14)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def metrics(report: Any) -> Any:
    """The breakdown of ``report``: each rate's mean with its confidence interval
    and its p5–p95 range, and the weekly cost's distribution summary."""
    fig = _figure(8.0, 4.0)
    ax, cost_ax = fig.subplots(1, 2, width_ratios=[3, 1])
    names = [label for _, label in _RATES]
    summaries = [getattr(report, attr) for attr, _ in _RATES]
    ys = list(range(len(names)))[::-1]
    for y, m in zip(ys, summaries):
        ax.hlines(y, m.p5, m.p95, color="#8fb3d9", linewidth=6, label="p5–p95" if y == ys[0] else None)
        lo, hi = m.confidence_interval
        ax.errorbar(m.mean, y, xerr=[[m.mean - lo], [hi - m.mean]], fmt="o", color="#d9822b", capsize=4,
                    label="mean and CI" if y == ys[0] else None)
        ax.annotate(f"{m.mean:.3f}", (m.mean, y), textcoords="offset points", xytext=(0, 7), ha="center",
                    fontsize=8)
    ax.set_yticks(ys, names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share")
    ax.legend(fontsize=8, loc="lower left")
    c = report.cost_estimate_usd
    cost_ax.vlines(0, c.p5, c.p95, color="#8fb3d9", linewidth=10)
    cost_ax.plot([0], [c.mean], "o", color="#d9822b")
    cost_ax.set_xticks([0], ["weekly cost"])
    cost_ax.set_ylabel("USD")
    cost_ax.annotate(f"${c.mean:,.0f}", (0, c.mean), textcoords="offset points", xytext=(10, 0), fontsize=8)
    fig.suptitle(f"Breakdown ({report.model_id}, {report.iterations_run:,} iterations)", fontsize=10)
    return fig


def sweep(result: Sequence[dict], x: str, y: str = "readiness_mean", by: Optional[str] = None) -> Any:
    """A response curve of a sweep's ``result``: ``y`` (a row statistic) against the values
    of the pointer ``x``, one line per value of the pointer ``by`` (if given),
    with the confidence band when ``y`` is ``readiness_mean``."""
    fig = _figure()
    ax = fig.add_subplot()
    groups: dict = {}
    for row in result:
        key = row["inputs"].get(by) if by else None
        groups.setdefault(key if not isinstance(key, list) else tuple(key), []).append(row)
    for key, rows in groups.items():
        rows = sorted(rows, key=lambda r: r["inputs"][x])
        xs = [r["inputs"][x] for r in rows]
        ys = [r[y] for r in rows]
        (line,) = ax.plot(xs, ys, marker="o", label=f"{by} = {key}" if by else y)
        if y == "readiness_mean":
            ax.fill_between(xs, [r["readiness_ci_lower"] for r in rows], [r["readiness_ci_upper"] for r in rows],
                            color=line.get_color(), alpha=0.2)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"Sweep: {y} by {x}", fontsize=10)
    ax.legend(fontsize=8)
    return fig
