"""Dask against one process, on this machine (BENCHMARKS.md, issue 11).

    .venv/bin/python benches/python/dask_vs_local.py [--big] [--exact]

Times the example request in bounded mode, early termination off: one
process with 2 threads (`simulate_request(threads=2)`) against a
`LocalCluster` of 2 worker processes with 1 thread each
(`smm_core.distributed.simulate`, one shard per worker), alternating, the
median of 3 runs each; checks that both reports are the same bytes; and the
cost of a task (100 shards of 256 iterations through the cluster, minus
the same shards run here). `--big` adds 1e9 iterations both ways (once).
`--exact` times instead 1e7 iterations with exact percentiles (every
sample shipped back, in the partials' binary form), the median of 3.
"""

import json
import pathlib
import statistics
import sys
import time

import distributed

import smm_core
from smm_core import distributed as smm_dask

ROOT = pathlib.Path(__file__).resolve().parents[2]


def request(iterations, mode="bounded"):
    r = json.loads((ROOT / "examples" / "icblabs-seed42.request.json").read_text())
    r["simulationConfig"].update(iterations=iterations, percentileMode=mode, enableEarlyTermination=False)
    r["simulationConfig"].pop("timeoutSeconds", None)
    return r


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def exact(client):
    """1e7 exact: one process against two workers, each shard shipping 5e6
    iterations of samples (280 MB) back in its binary form."""
    req = request(10_000_000, "exact")
    smm_dask.simulate(client, request(1_000_000, "exact"))
    smm_core.simulate_request(request(1_000_000, "exact"), threads=2)
    local, dask = [], []
    for _ in range(3):
        t, a = timed(lambda: smm_core.simulate_request(req, threads=2))
        local.append(t)
        t, b = timed(lambda: smm_dask.simulate(client, req))
        dask.append(t)
        assert a.to_json() == b.to_json(), "the reports differ"
        del a, b
    ml, md = statistics.median(local), statistics.median(dask)
    print(f"1e7 exact: one process 2 threads {ml:.2f} s, dask 2 workers {md:.2f} s, ratio {md / ml:.3f} "
          f"(runs: {[round(x, 2) for x in local]} / {[round(x, 2) for x in dask]})")
    part = smm_core.simulate_shard(request(1_000_000, "exact"), 0, 1_000_000)
    print(f"a 1e6-iteration exact partial: {len(part.to_bytes()) / 1e6:.1f} MB binary, "
          f"{len(part.to_json()) / 1e6:.1f} MB as JSON")


def main():
    big = "--big" in sys.argv
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    try:
        if "--exact" in sys.argv:
            exact(client)
            return
        req = request(100_000_000)
        # Warm up both (imports in the workers, thread pools).
        smm_dask.simulate(client, request(1_000_000))
        smm_core.simulate_request(request(1_000_000), threads=2)
        local, dask = [], []
        for _ in range(3):
            t, a = timed(lambda: smm_core.simulate_request(req, threads=2))
            local.append(t)
            t, b = timed(lambda: smm_dask.simulate(client, req))
            dask.append(t)
            assert a.to_json() == b.to_json(), "the reports differ"
        ml, md = statistics.median(local), statistics.median(dask)
        print(f"1e8 bounded: one process 2 threads {ml:.2f} s, dask 2 workers {md:.2f} s, ratio {md / ml:.3f}")

        tiny = request(256 * 100)
        bounds = [(k * 256, (k + 1) * 256) for k in range(100)]
        t_here, _ = timed(lambda: [smm_core.simulate_shard(tiny, a, b, threads=1) for a, b in bounds])
        t_there, _ = timed(
            lambda: client.gather(
                client.map(smm_dask._run_shard, [tiny] * 100, [a for a, _ in bounds], [b for _, b in bounds], [1] * 100, pure=False)
            )
        )
        print(f"cost per task: {(t_there - t_here) / 100 * 1000:.2f} ms (100 tasks {t_there:.3f} s, same shards here {t_here:.3f} s)")

        if big:
            req = request(1_000_000_000)
            tl, a = timed(lambda: smm_core.simulate_request(req, threads=2))
            td, b = timed(lambda: smm_dask.simulate(client, req))
            assert a.to_json() == b.to_json(), "the reports differ"
            print(f"1e9 bounded: one process 2 threads {tl:.1f} s, dask 2 workers {td:.1f} s, ratio {td / tl:.3f}")
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
