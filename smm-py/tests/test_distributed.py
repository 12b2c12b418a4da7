"""Runs and sweeps on a real Dask cluster (worker processes): the same
bytes as one process, even when a worker dies mid-run."""

import json
import os
import pathlib
import pickle
import signal
import time

import pytest

import smm_core

distributed = pytest.importorskip("distributed")
from smm_core import distributed as smm_dask  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUEST = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())


def request(iterations, mode="auto", early=False, **config):
    r = json.loads(json.dumps(REQUEST))
    r["simulationConfig"].update(
        iterations=iterations, percentileMode=mode, enableEarlyTermination=early, **config
    )
    r["simulationConfig"].pop("timeoutSeconds", None)
    return r


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def test_shard_bounds_cover_the_run_at_block_boundaries():
    b = smm_dask.shard_bounds(1_000_003, 7)
    assert b[0][0] == 0 and b[-1][1] == 1_000_003
    assert all(x[1] == y[0] for x, y in zip(b, b[1:]))
    assert all(a % smm_core.BLOCK_SIZE == 0 for a, _ in b)
    assert smm_dask.shard_bounds(100, 8) == [(0, 100)]


@pytest.mark.parametrize(
    "req",
    [
        request(300_000),
        request(300_000, "bounded"),
        request(2_000_000, "bounded", early=True, precision={"halfWidth": 0.0004}),
        request(100_000, early=True, model="smm-readiness-v1", convergenceThreshold=0.01),
    ],
    ids=["exact", "bounded", "precision", "v1-window"],
)
def test_a_sharded_run_equals_the_single_process_run(client, req):
    single = smm_core.simulate_request(req, threads=2)
    assert smm_dask.simulate(client, req).to_json() == single.to_json()
    assert smm_dask.simulate(client, req, shards=7).to_json() == single.to_json()


def test_a_sweep_on_the_cluster_equals_the_sequential_sweep(client):
    grid = {"/workspaceContext/budget/hardCap": [2000, 8000], "/workspaceContext/riskProfile": ["low", "medium", "high"]}
    here = smm_core.sweep(REQUEST, grid, iterations=5000, seed=11)
    there = smm_core.sweep(REQUEST, grid, iterations=5000, seed=11, client=client)
    assert there == here


def test_a_lost_worker_changes_nothing(client):
    req = request(12_000_000, "bounded")
    single = smm_core.simulate_request(req, threads=2)
    pids = client.run(os.getpid)
    bounds = smm_dask.shard_bounds(12_000_000, 4)
    futures = client.map(
        smm_dask._run_shard,
        [req] * 4,
        [a for a, _ in bounds],
        [b for _, b in bounds],
        [1] * 4,
        pure=False,
    )
    # Kill a worker while it computes a shard; its nanny restarts it and
    # the scheduler recomputes what was lost.
    deadline = time.time() + 30
    while time.time() < deadline and not any(client.processing().values()):
        time.sleep(0.05)
    busy = [w for w, tasks in client.processing().items() if tasks]
    assert busy, "no worker started a shard"
    os.kill(pids[busy[0]], signal.SIGKILL)
    parts = client.gather(futures)
    assert smm_core.merge_partials(parts).to_json() == single.to_json()


def test_everything_a_task_carries_pickles():
    contract = smm_core.Contract.from_json((ROOT / "examples" / "workspace.icblabs.v2.json").read_text())
    report = smm_core.simulate_request(request(2000))
    part = smm_core.simulate_shard(request(2000), 0, 1024)
    bundle = smm_core.PolicyBundle.default()
    for obj in (request(2000), contract, report, part, bundle):
        back = pickle.loads(pickle.dumps(obj))
        assert type(back) is type(obj)
    assert pickle.loads(pickle.dumps(report)).to_json() == report.to_json()
    assert pickle.loads(pickle.dumps(contract)).terms_hash == contract.terms_hash
    assert pickle.loads(pickle.dumps(part)).iterations_run == 1024


def test_overrides_and_a_run_too_large_to_ship_is_refused_first(client):
    # iterations=, seed= and the stopping keywords, as simulate takes them.
    got = smm_dask.simulate(client, REQUEST, iterations=5e3, seed=9, early_termination=False)
    config = dict(REQUEST["simulationConfig"], iterations=5000, randomSeed=9, enableEarlyTermination=False)
    config.pop("stoppingRule", None)
    config.pop("precision", None)
    want = smm_core.simulate_request(dict(REQUEST, simulationConfig=config))
    assert got.to_json() == want.to_json() and got.iterations_run == 5000
    with pytest.raises(TypeError, match="iterations"):
        smm_dask.simulate(client, REQUEST, iterations=1.5)

    # The case: 2,000,000 iterations, exact, in two shards, travels (the
    # partials ship as raw doubles, not JSON) and equals the single-process run.
    big = request(2_000_000, mode="exact")
    got = smm_dask.simulate(client, big)
    assert got.to_json() == smm_core.simulate_request(big, threads=2).to_json()

    # Past the exact-mode limit: refused on the client, before any shard is
    # submitted, with the fix named.
    class NoShards:
        def __getattr__(self, name):
            return getattr(client, name)

        def map(self, *args, **kwargs):
            raise AssertionError("a shard was submitted")

    limit = smm_core.LIMITS["MAX_EXACT_ITERATIONS"]
    with pytest.raises(smm_core.ShardError, match="exact-mode limit.*bounded"):
        smm_dask.simulate(NoShards(), REQUEST, iterations=limit + 1, percentile_mode="exact",
                          early_termination=False)
    # Bounded mode travels at any size: the check lets it through.
    smm_dask._check_shippable(
        dict(REQUEST, simulationConfig={"iterations": 50_000_000, "percentileMode": "bounded"}),
        smm_dask.shard_bounds(50_000_000, 2),
    )


def test_a_partial_travels_as_checked_bytes():
    part = smm_core.simulate_shard(request(3000, mode="exact"), 0, 2048)
    data = part.to_bytes()
    assert isinstance(data, bytes) and len(data) < 2048 * 7 * 8 + 8000
    assert len(data) * 2 < len(part.to_json())
    back = smm_core.PartialResult.from_bytes(data)
    assert back.to_json() == part.to_json()
    # pickle ships the binary form
    assert len(pickle.dumps(part)) < len(data) + 500
    for bad in (data[:-1], data + b"\0", data[:20], b"SMMPART\x02" + data[8:]):
        with pytest.raises(smm_core.ShardError):
            smm_core.PartialResult.from_bytes(bad)
