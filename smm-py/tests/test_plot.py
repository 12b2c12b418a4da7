"""Pictures, histograms and tables: real images, numpy's own counts."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUEST = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())


def report(**kw):
    return smm_core.simulate(REQUEST["workspaceContext"], REQUEST["workflowJson"], iterations=20_000, **kw)


def test_histogram_is_numpys():
    r = report(keep_samples=True)
    counts, edges = r.histogram(30)
    want_counts, want_edges = np.histogram(r.samples()["readiness_score"], bins=30)
    assert counts.tolist() == want_counts.tolist()
    assert np.allclose(edges, want_edges, rtol=0, atol=1e-12)
    c, e = r.histogram(10, metric="cost_estimate_usd", range=(0.0, 5000.0))
    assert e[0] == 0.0 and e[-1] == 5000.0 and c.sum() <= 20_000
    with pytest.raises(smm_core.SmmError):
        report().histogram()
    with pytest.raises(smm_core.ValidationError):
        r.histogram(0)
    with pytest.raises(smm_core.ValidationError):
        r.histogram(10, metric="nope")


def test_records_and_frames():
    r = report()
    recs = r.to_records()
    assert [x["metric"] for x in recs][:2] == ["readiness_score", "policy_pass_pct"]
    assert recs[-1]["metric"] == "makespan_ms"
    first = recs[0]
    assert list(first)[:10] == ["metric", "mean", "std", "min", "max", "p5", "p25", "p50", "p75", "p95"]
    assert first["mean"] == r.readiness_score.mean
    pd = pytest.importorskip("pandas")
    df = r.to_frame()
    assert isinstance(df, pd.DataFrame) and df.loc["readiness_score", "p95"] == r.readiness_score.p95
    # A report from its JSON, as another process wrote it.
    back = smm_core.SimulationReport.from_json(r.to_json())
    assert back.to_json() == r.to_json() and not back.has_samples
    with pytest.raises(smm_core.ValidationError):
        smm_core.SimulationReport.from_json('{"modelId": 1}')


def _is_png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_each_picture_is_a_real_image(tmp_path):
    pytest.importorskip("matplotlib")
    from smm_core import plot

    r = report(keep_samples=True)
    plot.readiness(r).savefig(tmp_path / "r.png")
    plot.readiness(report()).savefig(tmp_path / "r-nosamples.png")
    plot.metrics(r).savefig(tmp_path / "m.svg")
    rows = smm_core.sweep(REQUEST, {"/workspaceContext/budget/hardCap": [2000, 4000, 8000]}, iterations=2000, seed=1)
    plot.sweep(rows, x="/workspaceContext/budget/hardCap").savefig(tmp_path / "s.png")
    assert _is_png(tmp_path / "r.png") and _is_png(tmp_path / "r-nosamples.png") and _is_png(tmp_path / "s.png")
    svg = (tmp_path / "m.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and len(svg) > 5_000


def test_the_example_script_renders_headless(tmp_path):
    pytest.importorskip("matplotlib")
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "plots.py"), str(tmp_path)],
        capture_output=True, text=True, env=dict(os.environ, MPLBACKEND="Agg"), timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for name in ("readiness.png", "metrics.png", "sweep.png"):
        assert _is_png(tmp_path / name), name
    assert (tmp_path / "readiness.svg").read_text().lstrip().startswith("<?xml")


def test_pictures_say_in_words_what_they_draw():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from smm_core import plot

    with_samples = plot.readiness(report(keep_samples=True)).axes[0]
    assert with_samples.get_xlabel() == "readiness score (0–1)"
    assert with_samples.get_ylabel() == "share of iterations"
    assert with_samples.get_title().startswith("Readiness histogram")
    legend = [t.get_text() for t in with_samples.get_legend().get_texts()]
    assert any("95% CI ±" in t for t in legend), legend
    # Without samples: not called a histogram, no empty y axis, and it says why.
    summary = plot.readiness(report()).axes[0]
    assert "no samples kept" in summary.get_title() and "histogram" not in summary.get_title().split("(")[0]
    assert not summary.yaxis.get_visible()
    # Sweeps: axes and legend in words with units, never a raw pointer.
    grid = {"/workspaceContext/budget/hardCap": [2000, 4000, 8000], "/workspaceContext/riskProfile": ["low", "high"]}
    rows = smm_core.sweep(REQUEST, grid, iterations=2000, seed=1, early_termination=False)
    ax = plot.sweep(rows, x="/workspaceContext/budget/hardCap", by="/workspaceContext/riskProfile").axes[0]
    assert ax.get_xlabel() == "budget hard cap ($)" and ax.get_ylabel() == "readiness (mean, 0–1)"
    texts = [t.get_text() for t in ax.get_legend().get_texts()] + [ax.get_title(), ax.get_legend().get_title().get_text()]
    assert ax.get_legend().get_title().get_text() == "risk profile" and "low" in texts and not any("/" in t and "workspaceContext" in t for t in texts), texts
    cost = plot.sweep(rows, x="/workspaceContext/budget/hardCap", y="cost_mean").axes[0]
    assert cost.get_ylabel() == "weekly cost ($, mean)"
    # ax=, title=, xlabel= as pandas and seaborn take them.
    fig = Figure()
    mine = fig.add_subplot()
    assert plot.sweep(rows, x="/workspaceContext/budget/hardCap", ax=mine, title="T", xlabel="cap") is fig
    assert mine.get_title() == "T" and mine.get_xlabel() == "cap"
    assert plot.readiness(report(), ax=mine, title="R").axes[0] is mine
    assert plot.field_label("/workflowJson/nodes/1/retryBackoffMs") == "retry backoff ms"
