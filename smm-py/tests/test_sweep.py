"""Parameter sweeps: rows, reproducibility, tables, numpy values."""

import json
import pathlib

import numpy as np
import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUEST = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())
GRID = {
    "/workspaceContext/budget/hardCap": [2000, 5000, 20000],
    "/workspaceContext/riskProfile": ["low", "high"],
}


def test_a_sweep_is_one_row_per_point_and_reproducible():
    rows = smm_core.sweep(REQUEST, GRID, iterations=2000, seed=7)
    assert isinstance(rows, smm_core.SweepResult) and len(rows) == 6
    assert [r["index"] for r in rows] == list(range(6))
    assert rows[0]["inputs"] == {"/workspaceContext/budget/hardCap": 2000, "/workspaceContext/riskProfile": "low"}
    assert rows[5]["inputs"] == {"/workspaceContext/budget/hardCap": 20000, "/workspaceContext/riskProfile": "high"}
    for r in rows:
        assert r["readiness_ci_lower"] <= r["readiness_mean"] <= r["readiness_ci_upper"]
        assert r["iterations_run"] == 2000
    # The same sweep again, on another thread count: the same rows.
    assert smm_core.sweep(REQUEST, GRID, iterations=2000, seed=7, threads=1) == rows
    # Any point alone, from the plan: its row.
    plan = smm_core.sweep_plan(REQUEST, GRID, iterations=2000, seed=7)
    point = plan[4]
    assert point["seed"] == rows[4]["seed"]
    report = smm_core.simulate_request(point["request"])
    assert smm_core.sweep_row(point, report) == rows[4]


def test_rows_as_a_table():
    pd = pytest.importorskip("pandas")
    rows = smm_core.sweep(REQUEST, GRID, iterations=1000, seed=1)
    df = rows.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 6
    # Columns are the field names, in the grid's order; no stray index column.
    assert list(df.columns[:2]) == ["hardCap", "riskProfile"] and "index" not in df.columns
    assert rows.columns() == {"/workspaceContext/budget/hardCap": "hardCap", "/workspaceContext/riskProfile": "riskProfile"}
    assert rows.grid == GRID  # the full pointers stay available
    assert df["readiness_mean"].tolist() == [r["readiness_mean"] for r in rows]
    # Strings keep the grid's order: "low" before "high", not sorted as text.
    assert list(df["riskProfile"].cat.categories) == ["low", "high"] and df["riskProfile"].cat.ordered
    assert df.sort_values("riskProfile", kind="stable")["riskProfile"].tolist()[:3] == ["low"] * 3
    # The higher cap never lowers readiness by more than noise at equal risk.
    low = df[df["riskProfile"] == "low"].sort_values("hardCap")
    assert low["readiness_mean"].iloc[-1] > low["readiness_mean"].iloc[0]
    # Two fields of one name are told apart by more of their pointers.
    twin = smm_core.SweepResult([], {"/a/cap": [1], "/b/cap": [2], "/c/x": [3]})
    assert twin.columns() == {"/a/cap": "a/cap", "/b/cap": "b/cap", "/c/x": "x"}


def test_a_sweep_stops_only_as_asked_and_says_so_once():
    import warnings

    req = json.loads(json.dumps(REQUEST))
    req["simulationConfig"].update(enableEarlyTermination=True, stoppingRule="precision", precision={"halfWidth": 0.003})
    grid = {"/workspaceContext/riskProfile": ["low", "high"]}
    # The request's own rule stopped the points: one warning, at this line.
    with pytest.warns(smm_core.EarlyTerminationWarning, match="2 of 2 points") as w:
        rows = smm_core.sweep(req, grid, iterations=100_000, seed=3)
    assert len(w) == 1 and w[0].filename == __file__
    assert all(r["stopped_by"] == "precision" and r["iterations_run"] < 100_000 for r in rows)
    # Asked here: every iteration, or the precision given, and no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = smm_core.sweep(req, grid, iterations=3000, seed=3, early_termination=False)
        assert all(r["iterations_run"] == 3000 and r["stopped_by"] is None for r in full)
        loose = smm_core.sweep(REQUEST, grid, iterations=100_000, seed=3, precision=0.02)
        assert all(r["stopped_by"] == "precision" for r in loose)
        assert max(r["iterations_run"] for r in loose) < min(r["iterations_run"] for r in rows)
        smm_core.simulate(REQUEST["workspaceContext"], iterations=100_000, precision=0.02)


def test_numpy_values_are_accepted_anywhere_a_json_value_is():
    grid = {"/workspaceContext/budget/hardCap": np.arange(3000, 6000, 1000)}
    rows = smm_core.sweep(REQUEST, grid, iterations=np.int64(500), seed=np.uint64(3))
    assert [r["inputs"]["/workspaceContext/budget/hardCap"] for r in rows] == [3000, 4000, 5000]
    ws = dict(REQUEST["workspaceContext"])
    ws["budget"] = dict(ws["budget"], hardCap=np.float64(4000.0))
    assert smm_core.simulate(ws, iterations=300).iterations_run == 300
    with pytest.raises(smm_core.ValidationError):
        smm_core.simulate(dict(ws, primaryChannels=np.array([1.5, np.nan])), iterations=300)


def test_bad_grids_name_the_pointer():
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.sweep(REQUEST, {"/workspaceContext/nope/x": [1]}, iterations=100, seed=1)
    assert e.value.pointer == "/workspaceContext/nope/x"
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.sweep(REQUEST, {"/workspaceContext/riskProfile": ["low", "reckless"]}, iterations=100, seed=1)
    assert "sweep point 1" in str(e.value) and e.value.pointer == "/workspaceContext/riskProfile"
    with pytest.raises(smm_core.ValidationError):
        smm_core.sweep(REQUEST, {"/workspaceContext/riskProfile": "low"}, iterations=100, seed=1)
    with pytest.raises(smm_core.ValidationError):
        smm_core.sweep(REQUEST, {"/simulationConfig/randomSeed": [1, 2]}, iterations=100, seed=1)


def test_a_sweep_reports_progress_and_can_be_stopped():
    seen = []
    smm_core.sweep(REQUEST, GRID, iterations=300, seed=1, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 6) for i in range(1, 7)]
    with pytest.raises(smm_core.CancelledError):
        smm_core.sweep(REQUEST, GRID, iterations=300, seed=1, progress=lambda d, t: False)
