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
    assert r.model_id == "smm-readiness-v1" == smm_core.MODEL_ID
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
    expected = json.loads((ROOT / "baselines" / "icblabs-seed42.expected.json").read_text())
    from_request = smm_core.simulate_request(REQUEST, threads=2)
    assert from_request.to_dict() == expected
    assert smm_core.simulate_request(json.dumps(REQUEST), threads=1).to_json() == from_request.to_json()
    one = run(threads=1).to_json()
    assert run(threads=2).to_json() == one
    assert run(threads=16).to_json() == one
    assert run(seed=43).to_json() != one


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
    with pytest.raises(smm_core.ValidationError, match="threads"):
        run(threads=0)
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
