"""What a Python data team relies on: smm_core.simulate and its report."""

import json
import multiprocessing
import pathlib
import pickle
import threading

import numpy as np
import pytest

import smm_core

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUEST = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())
WORKSPACE = REQUEST["workspaceContext"]
WORKFLOW = REQUEST["workflowJson"]


def run(**kw):
    kw.setdefault("iterations", 5000)
    return smm_core.simulate(WORKSPACE, WORKFLOW, **kw)


def test_report_exposes_statistics_as_attributes():
    r = run()
    assert r.model_id == "smm-readiness-v2" == smm_core.MODEL_ID
    assert r.workspace_id == "ws-icblabs-0001"
    rs = r.readiness_score
    assert 0.70 < rs.mean < 0.76
    assert rs.p5 <= rs.p25 <= rs.p50 <= rs.p75 <= rs.p95
    lo, hi = rs.confidence_interval
    assert lo < rs.mean < hi
    assert rs.confidence_level == 0.95
    assert rs.percentiles == {"p5": rs.p5, "p25": rs.p25, "p50": rs.p50, "p75": rs.p75, "p95": rs.p95}
    assert r.makespan_ms is not None and r.makespan_ms.mean > 0
    assert 0 < r.success_rate < 1
    assert [n["id"] for n in r.workflow["nodes"]][0] == "research_brand"
    assert r.iterations_run == 5000 and r.seed == 42
    repro = r.reproducibility
    assert repro["randChachaVersion"] and repro["randDistrVersion"] and repro["engineVersion"] == smm_core.__version__
    assert r.to_dict()["readinessScore"]["mean"] == rs.mean
    assert json.loads(r.to_json()) == r.to_dict()


def test_same_bytes_as_the_rust_engine_and_on_any_thread_count():
    # The checked-in baseline was produced by the Rust engine from the same request.
    expected = json.loads((ROOT / "baselines" / "icblabs-seed42-v2.expected.json").read_text())
    from_request = smm_core.simulate_request(REQUEST, threads=2)
    assert from_request.to_dict() == expected
    # Model v1 (the original example's baseline) reproduces its report.
    v1 = json.loads((ROOT / "baselines" / "icblabs-seed42.expected.json").read_text())
    old = json.loads(json.dumps(REQUEST))
    old["simulationConfig"]["model"] = "smm-readiness-v1"
    assert smm_core.simulate_request(old).to_dict() == v1
    assert smm_core.simulate_request(json.dumps(REQUEST), threads=1).to_json() == from_request.to_json()
    one = run(threads=1).to_json()
    assert run(threads=2).to_json() == one
    assert run(threads=16).to_json() == one
    assert run(seed=43).to_json() != one


def test_a_budget_of_minus_zero_reports_as_zero():
    def with_spend(zero):
        ws = json.loads(json.dumps(WORKSPACE))
        ws["budget"]["breakdown"] = {k: zero for k in ws["budget"]["breakdown"]}
        return smm_core.simulate(ws, WORKFLOW, iterations=1000)

    negative, positive = with_spend(-0.0), with_spend(0.0)
    assert "-0.0" not in negative.to_json()
    assert negative.to_json() == positive.to_json()
    assert str(negative.cost_estimate_usd.p50) == "0.0"


def test_workspace_as_json_text_or_bytes():
    a = run(iterations=300)
    b = smm_core.simulate(json.dumps(WORKSPACE), json.dumps(WORKFLOW).encode(), iterations=300)
    assert a == b


def test_validation_error_names_the_field():
    bad = dict(WORKSPACE, riskProfile="moderate")
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.simulate(bad)
    assert isinstance(e.value, smm_core.SmmError) and isinstance(e.value, ValueError)
    assert e.value.pointer == "/workspaceContext/riskProfile"
    assert "moderate" in str(e.value)

    budget = dict(WORKSPACE["budget"], hardCap=float("nan"))
    with pytest.raises(smm_core.ValidationError, match="/workspaceContext/budget/hardCap"):
        smm_core.simulate(dict(WORKSPACE, budget=budget))
    with pytest.raises(smm_core.ValidationError, match="greater than 0"):
        smm_core.simulate(dict(WORKSPACE, budget=dict(WORKSPACE["budget"], hardCap=0)))
    with pytest.raises(ValueError, match="/simulationConfig/iterations"):
        run(iterations=0)
    with pytest.raises(ValueError, match="iterations"):
        run(iterations=-5)
    with pytest.raises(ValueError, match="greater than 0 and at most 0.999999999"):
        run(confidence_level=1.5)
    # threads=0 is every core, as in C and the CLI; a negative count is refused.
    assert run(threads=0).to_json() == run(threads=1).to_json()
    with pytest.raises(smm_core.ValidationError, match="threads"):
        run(threads=-1)
    with pytest.raises(smm_core.ValidationError, match="percentile_mode"):
        run(percentile_mode="approximately")
    nodes = [dict(n) for n in WORKFLOW["nodes"]]
    nodes[0]["dependencies"] = ["schedule_posts"]
    with pytest.raises(smm_core.ValidationError, match="cycle") as e:
        smm_core.simulate(WORKSPACE, {"nodes": nodes})
    assert e.value.pointer == "/workflowJson/nodes"
    with pytest.raises(smm_core.ValidationError, match="/workspaceContext/primaryChannels"):
        smm_core.simulate(dict(WORKSPACE, primaryChannels=[]))
    with pytest.raises(smm_core.ValidationError, match="unsupported value of type object"):
        smm_core.simulate(dict(WORKSPACE, riskProfile=object()))
    with pytest.raises(smm_core.ValidationError, match="invalid JSON"):
        smm_core.simulate("{not json")


def test_samples_as_numpy_arrays():
    r = run(iterations=2000, keep_samples=True)
    s = r.samples()
    assert set(s) == {
        "readiness_score", "policy_pass_pct", "citation_coverage", "duplication_risk",
        "cost_estimate_usd", "technical_readiness", "makespan_ms",
    }
    arr = s["readiness_score"]
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (2000,)
    assert abs(arr.mean() - r.readiness_score.mean) < 1e-12
    assert np.percentile(arr, 95) == pytest.approx(r.readiness_score.p95, abs=1e-12)
    assert arr.std(ddof=1) == pytest.approx(r.readiness_score.std, rel=1e-10)
    without = run(iterations=2000)
    assert not without.has_samples
    with pytest.raises(smm_core.SmmError, match="keep_samples=True"):
        without.samples()
    with pytest.raises(smm_core.ValidationError, match="exact percentile mode"):
        run(iterations=2000, keep_samples=True, percentile_mode="bounded")


def test_a_run_without_samples_reports_what_one_with_samples_reports():
    # Without samples an exact run keeps 32-bit keys and recomputes the few
    # values its percentiles need; the report must not change by a bit,
    # also where clamps pile values up (a tiny hard cap pins cost risk).
    piled = dict(WORKSPACE, budget=dict(WORKSPACE["budget"], hardCap=1e-300))
    for ws in (WORKSPACE, piled):
        for threads in (1, 2):
            kw = dict(iterations=20_000, threads=threads, percentile_mode="exact")
            keyed = smm_core.simulate(ws, WORKFLOW, **kw)
            valued = smm_core.simulate(ws, WORKFLOW, keep_samples=True, **kw)
            assert not keyed.has_samples and valued.has_samples
            assert keyed.to_json() == valued.to_json()
            s = valued.samples()
            for name in ("readiness_score", "cost_estimate_usd", "duplication_risk"):
                stats = getattr(keyed, name)
                assert np.percentile(s[name], 50) == pytest.approx(stats.p50, abs=1e-12)
                assert s[name].min() == stats.min and s[name].max() == stats.max


def test_reports_pickle_with_their_samples():
    r = run(iterations=1000, keep_samples=True)
    back = pickle.loads(pickle.dumps(r))
    assert back == r
    assert np.array_equal(back.samples()["makespan_ms"], r.samples()["makespan_ms"])
    plain = run(iterations=1000)
    assert pickle.loads(pickle.dumps(plain)).to_json() == plain.to_json()


def test_shards_merge_to_the_single_run_through_pickle():
    req = dict(REQUEST, simulationConfig=dict(REQUEST["simulationConfig"], iterations=3000, enableEarlyTermination=False))
    single = smm_core.simulate_request(req)
    b = smm_core.BLOCK_SIZE
    parts = [smm_core.simulate_shard(req, s, min(s + 4 * b, 3000)) for s in range(0, 3000, 4 * b)]
    parts = [pickle.loads(pickle.dumps(p)) for p in reversed(parts)]
    assert parts[-1].start == 0 and parts[0].end == 3000
    assert smm_core.merge_partials(parts).to_json() == single.to_json()
    with pytest.raises(smm_core.ShardError, match="missing"):
        smm_core.merge_partials(parts[1:])
    with pytest.raises(smm_core.ShardError, match="multiples of the block size"):
        smm_core.simulate_shard(req, 1, 100)


def test_the_gil_is_released_during_a_run():
    done = threading.Event()
    result = {}

    def work():
        result["r"] = smm_core.simulate(WORKSPACE, WORKFLOW, iterations=2_000_000, threads=1)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    # Holding the GIL would leave this loop a handful of turns (one per switch interval
    # at best); released, it spins freely for the whole run.
    assert spins > 10_000
    assert result["r"].iterations_run == 2_000_000


def _child(q):
    q.put(smm_core.simulate(WORKSPACE, WORKFLOW, iterations=4000, threads=2).to_json())


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_works_in_child_processes(method):
    parent = run(iterations=4000, threads=2).to_json()  # the parent's pool exists before the fork
    ctx = multiprocessing.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    out = q.get(timeout=120)
    p.join(timeout=120)
    assert p.exitcode == 0
    assert out == parent


def test_precision_stops_the_run_when_the_interval_is_narrow_enough():
    r = run(iterations=1_000_000, precision=0.002, threads=2)
    assert r.stopping_rule == "precision" and r.stopped_by == "precision"
    assert r.terminated_early and r.iterations_requested == 1_000_000
    assert 1000 <= r.iterations_run < 10_000
    assert r.achieved_half_width <= r.target_half_width == 0.002
    lo, hi = r.readiness_score.confidence_interval
    assert hi - lo == pytest.approx(2 * r.achieved_half_width)
    # The same stop on any thread count, and from the request document.
    assert run(iterations=1_000_000, precision=0.002, threads=1).to_json() == r.to_json()
    doc = json.loads(json.dumps(REQUEST))
    doc["simulationConfig"].update(iterations=1_000_000, precision={"halfWidth": 0.002})
    assert smm_core.simulate_request(doc).to_json() == r.to_json()
    # Relative, with a further metric.
    rel = run(iterations=1_000_000, relative_precision=0.003, precision_metrics={"citationCoverage": 0.004})
    targets = rel.convergence["precisionTargets"]
    assert [t["metric"] for t in targets] == ["readinessScore", "citationCoverage"]
    assert all(t["met"] for t in targets)
    assert targets[0]["targetHalfWidth"] == pytest.approx(0.003 * rel.readiness_score.mean)
    # Not reached: all iterations run, and the report says so.
    short = run(iterations=2000, precision=0.0001)
    assert short.stopped_by is None and not short.converged and short.iterations_run == 2000


def test_precision_settings_are_checked():
    with pytest.raises(smm_core.ValidationError) as e:
        run(precision=0.01, relative_precision=0.01)
    with pytest.raises(smm_core.ValidationError) as e:
        run(precision=-1.0)
    assert e.value.pointer == "/simulationConfig/precision/halfWidth"
    with pytest.raises(smm_core.ValidationError) as e:
        run(precision=0.01, min_iterations=10)
    assert e.value.pointer == "/simulationConfig/precision/minIterations"
    with pytest.raises(smm_core.ValidationError) as e:
        run(precision=0.01, precision_metrics={"readiness": 0.1})
    assert e.value.pointer == "/simulationConfig/precision/metrics/readiness"
    with pytest.raises(smm_core.ValidationError) as e:
        run(model="smm-readiness-v3")
    assert e.value.pointer == "/simulationConfig/model"


def test_model_v1_stays_selectable():
    v1 = run(model="smm-readiness-v1", early_termination=True)
    assert v1.model_id == "smm-readiness-v1" and v1.stopping_rule == "window"
    v2 = run(early_termination=True)
    assert v2.model_id == "smm-readiness-v2" and v2.stopping_rule == "precision"
    assert v1.readiness_score.mean != v2.readiness_score.mean


LONG = dict(iterations=200_000_000, percentile_mode="bounded")


def test_progress_is_reported_and_reaches_the_end():
    calls = []
    r = run(iterations=3_000_000, threads=2, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (3_000_000, 3_000_000)
    assert all(0 < d <= t == 3_000_000 for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # Never per iteration: at most one call per wave of 32,768 iterations.
    assert len(calls) <= 3_000_000 // 32_768 + 1
    # Watching changes nothing.
    assert r.to_json() == run(iterations=3_000_000, threads=1).to_json()


def test_a_callback_returning_false_cancels_the_run():
    seen = []

    def stop(done, total):
        seen.append(done)
        return False

    with pytest.raises(smm_core.CancelledError) as e:
        run(threads=2, progress=stop, **LONG)
    assert e.value.category == "interrupted"
    assert len(seen) == 1 and seen[0] < LONG["iterations"]
    # Returning None or True goes on; the library is usable right after.
    assert run(iterations=300_000, progress=lambda d, t: None).iterations_run == 300_000


def test_a_callback_that_raises_cancels_with_the_cause():
    class Stop(Exception):
        pass

    def boom(done, total):
        raise Stop("enough")

    with pytest.raises(smm_core.CancelledError) as e:
        run(threads=1, progress=boom, **LONG)
    assert isinstance(e.value.__cause__, Stop)


def test_progress_must_be_callable_or_tqdm():
    with pytest.raises(smm_core.ValidationError):
        run(progress="bar")
    with pytest.raises(smm_core.ValidationError):
        run(progress=42)


def test_tqdm_adapter(capsys):
    pytest.importorskip("tqdm")
    r = run(iterations=2_000_000, progress="tqdm")
    assert r.iterations_run == 2_000_000
    assert "simulate" in capsys.readouterr().err


def test_shards_report_progress_too():
    req = json.loads(json.dumps(REQUEST))
    req["simulationConfig"].update(iterations=1_000_000, enableEarlyTermination=False)
    calls = []
    p = smm_core.simulate_shard(req, 0, 500_224, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (500_224, 500_224) and p.iterations_run == 500_224


SIGINT_CHILD = r"""
import json, sys, smm_core
req = json.loads(open(sys.argv[1]).read())
req["simulationConfig"].update(iterations=5_000_000_000, percentileMode="bounded", enableEarlyTermination=False)
print("started", flush=True)
try:
    smm_core.simulate_request(req, threads=1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
print("finished", flush=True)
"""


def test_ctrl_c_stops_a_long_run_with_keyboard_interrupt(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "child.py"
    script.write_text(SIGINT_CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(ROOT / "examples" / "icblabs-seed42.request.json")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "started"
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 3, out
    assert "interrupted" in out


def test_a_first_afternoon_with_the_library():
    import datetime
    import warnings

    # A typo in the context is refused with the name it meant.
    ws = dict(WORKSPACE)
    ws["riskprofile"] = ws.pop("riskProfile")
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.simulate(ws, iterations=100)
    assert e.value.pointer == "/workspaceContext/riskprofile"
    assert 'did you mean "riskProfile"' in str(e.value)
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.simulate(dict(WORKSPACE, riskProfile=None), iterations=100)
    assert e.value.pointer == "/workspaceContext/riskProfile"
    # Errors in JSON's words.
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.simulate(dict(WORKSPACE, primaryChannels="linkedin"), iterations=100)
    assert "f64" not in str(e.value) and "sequence" not in str(e.value) and "array" in str(e.value)
    # A whole request passed to simulate says where it belongs.
    with pytest.raises(smm_core.ValidationError) as e:
        smm_core.simulate(REQUEST)
    assert "simulate_request" in str(e.value)
    # A Contract is a workspace.
    contract = smm_core.Contract.from_json((ROOT / "examples" / "workspace.icblabs.v2.json").read_text())
    assert smm_core.simulate(contract, iterations=300).workspace_id == "ws-icblabs-0001"
    # A run that stops early says so in its attributes; asked by keyword, no
    # warning. A document's own rule warns, at the caller's line.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = run(iterations=1_000_000, precision=0.002)
    assert r.terminated_early and r.iterations_requested == 1_000_000 and r.iterations_run == 3328
    doc = {"workspaceContext": WORKSPACE, "simulationConfig": {
        "iterations": 1_000_000, "enableEarlyTermination": True, "precision": {"halfWidth": 0.002}}}
    with pytest.warns(smm_core.EarlyTerminationWarning, match="of 1000000") as w:
        smm_core.simulate_request(doc)
    assert w[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(iterations=1000)  # ran every iteration: no warning
    # Dates are midnight UTC.
    assert contract.validate(datetime.date(2025, 9, 1)) == contract.validate("2025-09-01T00:00:00Z")
    assert contract.validate("2025-09-01") == contract.validate("2025-09-01T00:00:00Z")


def test_counts_may_be_integral_floats_and_bad_ones_name_the_argument():
    # 1e5 is how data people write a count: the same run as 100_000.
    assert run(iterations=2e3, seed=7.0).to_json() == run(iterations=2000, seed=7).to_json()
    for bad in (1.5, float("nan"), float("inf"), True, "2000"):
        with pytest.raises(TypeError, match="iterations"):
            run(iterations=bad)
    with pytest.raises(smm_core.ValidationError, match="iterations") as e:
        run(iterations=-1e3)
    assert e.value.pointer == "/simulationConfig/iterations"
    plan = smm_core.sweep_plan(REQUEST, {"/workspaceContext/riskProfile": ["low"]}, iterations=1e3, seed=1.0)
    assert plan[0]["request"]["simulationConfig"]["iterations"] == 1000
