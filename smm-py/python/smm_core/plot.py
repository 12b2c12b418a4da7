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


# Row statistics of a sweep, in words with their units.
_STATISTICS = {
    "readiness_mean": "readiness (mean, 0–1)",
    "readiness_std": "readiness (std)",
    "readiness_p5": "readiness (p5, 0–1)",
    "readiness_p50": "readiness (median, 0–1)",
    "readiness_p95": "readiness (p95, 0–1)",
    "policy_pass_mean": "policy pass rate (mean, 0–1)",
    "citation_coverage_mean": "citation coverage (mean, 0–1)",
    "duplication_risk_mean": "duplication risk (mean, 0–1)",
    "technical_readiness_mean": "technical readiness (mean, 0–1)",
    "cost_mean": "weekly cost ($, mean)",
    "cost_p95": "weekly cost ($, p95)",
    "success_rate": "workflow success rate (0–1)",
    "iterations_run": "iterations run",
}

# Fields of a request that sweeps vary, in words with their units.
_FIELDS = {
    "hardCap": "budget hard cap ($)",
    "weeklyCap": "weekly cap ($)",
    "paidAds": "paid ads budget ($/week)",
    "llmModelSpend": "model spend ($/week)",
    "rendering": "rendering budget ($/week)",
    "thirdPartyServices": "third-party services ($/week)",
    "riskProfile": "risk profile",
    "failureRate": "step failure rate (0–1)",
    "durationMs": "step duration (ms)",
    "confidenceLevel": "confidence level",
}


def field_label(pointer: str) -> str:
    """A JSON pointer of a request in words: ``/workspaceContext/budget/hardCap``
    -> ``"budget hard cap ($)"``; an unknown field's name split into words."""
    name = pointer.rstrip("/").split("/")[-1].replace("~1", "/").replace("~0", "~")
    if name in _FIELDS:
        return _FIELDS[name]
    words = "".join(" " + c.lower() if c.isupper() else c for c in name).strip()
    return words or pointer


def statistic_label(name: str) -> str:
    """The sweep row statistic ``name`` in words: ``readiness_mean`` -> ``"readiness (mean, 0–1)"``."""
    return _STATISTICS.get(name, name.replace("_", " "))


def _figure(width: float = 7.0, height: float = 4.0) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('smm_core.plot needs matplotlib: pip install "smm-core[plot]"') from e
    return Figure(figsize=(width, height), layout="constrained")


def _axes(ax: Any, width: float = 7.0, height: float = 4.0) -> Any:
    """The axes to draw on: the caller's ``ax`` (as pandas and seaborn take it), or a new figure's."""
    return ax if ax is not None else _figure(width, height).add_subplot()


def readiness(
    report: Any,
    bins: int = 50,
    *,
    ax: Any = None,
    title: Optional[str] = None,
    xlabel: Optional[str] = None,
) -> Any:
    """The readiness distribution of ``report``, with its p5/p50/p95 and the mean
    with its confidence interval. When the report kept its samples
    (``keep_samples=True``): a histogram in ``bins`` bins, the y axis the share of
    iterations in each bin. When not: a percentile summary (p5–p95 line, p25–p75
    box), and the title says so. Draws on ``ax`` when given; ``title`` and
    ``xlabel`` replace the defaults. Returns the figure."""
    ax = _axes(ax)
    r = report.readiness_score
    if report.has_samples:
        counts, edges = report.histogram(bins)
        widths = edges[1:] - edges[:-1]
        ax.bar(edges[:-1], counts / counts.sum(), width=widths, align="edge", color="#8fb3d9", edgecolor="white",
               label="share of iterations")
        ax.set_ylabel("share of iterations")
        kind = "histogram"
        y_mean = float((counts / counts.sum()).max()) / 2
    else:
        # No samples: the percentile summary, on an axis with nothing to read.
        ax.broken_barh([(r.p25, r.p75 - r.p25)], (0.35, 0.3), color="#8fb3d9", label="p25–p75")
        ax.hlines(0.5, r.p5, r.p95, color="#4a6d94", label="p5–p95")
        ax.set_ylim(0, 1)
        ax.yaxis.set_visible(False)
        kind = "percentiles (no samples kept: keep_samples=True for a histogram)"
        y_mean = 0.5
    for value, style, label in [(r.p5, ":", "p5"), (r.p50, "--", "median"), (r.p95, ":", "p95")]:
        ax.axvline(value, linestyle=style, color="#4a6d94", linewidth=1)
        ax.annotate(label, (value, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
    lo, hi = r.confidence_interval
    # The interval as an error bar with caps: visible even when it is narrow.
    ax.errorbar([r.mean], [y_mean], xerr=[[r.mean - lo], [hi - r.mean]], fmt="o", color="#d9822b", capsize=5,
                label=f"mean {r.mean:.4f}, {r.confidence_level:.0%} CI ±{(hi - lo) / 2:.4f}")
    ax.set_xlabel(xlabel if xlabel is not None else "readiness score (0–1)")
    ax.set_title(
        title if title is not None
        else f"Readiness {kind}\n{report.model_id}, {report.iterations_run:,} iterations, seed {report.seed}",
        fontsize=10, pad=14,
    )
    ax.legend(fontsize=8, loc="upper left")
    return ax.figure


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


def sweep(
    result: Sequence[dict],
    x: str,
    y: str = "readiness_mean",
    by: Optional[str] = None,
    *,
    ax: Any = None,
    title: Optional[str] = None,
    xlabel: Optional[str] = None,
    ylabel: Optional[str] = None,
) -> Any:
    """A response curve of a sweep's ``result``: ``y`` (a row statistic) against the
    values of the pointer ``x``, one line per value of the pointer ``by`` (if given).
    For ``readiness_mean`` the confidence interval of each point is drawn as a band
    and as error bars (visible when narrow). Axes and legend are labelled in words
    with units (:func:`field_label`, :func:`statistic_label`) unless ``xlabel``,
    ``ylabel`` or ``title`` say otherwise. Draws on ``ax`` when given; returns the figure."""
    ax = _axes(ax)
    groups: dict = {}
    for row in result:
        key = row["inputs"].get(by) if by else None
        groups.setdefault(key if not isinstance(key, list) else tuple(key), []).append(row)
    for key, rows in groups.items():
        rows = sorted(rows, key=lambda r: r["inputs"][x])
        xs = [r["inputs"][x] for r in rows]
        ys = [r[y] for r in rows]
        label = str(key) if by else statistic_label(y)  # the legend's title names `by`
        (line,) = ax.plot(xs, ys, marker="o", label=label)
        if y == "readiness_mean":
            lo = [r["readiness_ci_lower"] for r in rows]
            hi = [r["readiness_ci_upper"] for r in rows]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
            ax.errorbar(xs, ys, yerr=[[m - a for m, a in zip(ys, lo)], [b - m for m, b in zip(ys, hi)]],
                        fmt="none", ecolor=line.get_color(), capsize=4)
    ax.set_xlabel(xlabel if xlabel is not None else field_label(x))
    ax.set_ylabel(ylabel if ylabel is not None else statistic_label(y))
    ax.set_title(
        title if title is not None
        else f"{statistic_label(y).split(' (')[0].capitalize()} by {field_label(x).split(' (')[0]}"
        + (" (bars: confidence interval)" if y == "readiness_mean" else ""),
        fontsize=10,
    )
    ax.legend(fontsize=8, title=field_label(by) if by else None)
    return ax.figure
