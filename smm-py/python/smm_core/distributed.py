"""Simulations and sweeps on a Dask cluster (``pip install "smm-core[dask]"``).

:func:`simulate` runs one simulation as shards, one task per shard, and
merges the partial results once, here: the report is the one a single
process gives, bit for bit, whatever the shard layout, worker count or
scheduling, and a shard recomputed after a lost worker gives the same
partial. :func:`sweep` runs a sweep's points as tasks: the rows are those of
:func:`smm_core.sweep` run here.

What a shard ships back (pickled as its binary form, ``PartialResult.to_bytes``):
in bounded percentile mode (the default above 10 million iterations) a few
small histograms (a few hundred kilobytes); in exact mode every sample, as raw
little-endian doubles (7 columns of 8 bytes an iteration: 56 MB per million
iterations), up to the exact-mode limit of 100 million iterations. Choose
bounded for large distributed runs
(``simulationConfig.percentileMode = "bounded"``; percentiles within a
relative error of 3.05e-5) and exact when you need exact order statistics of
a run that fits in one machine's memory anyway. Under the precision rule,
later shards also ship their per-block sums of the targeted metrics (32
bytes a block of 256 iterations) and run to their end; the merge finds the
stopping point.
"""

import json
import warnings
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from . import _smm_core
from ._sweep import SweepResult

_Document = Union[str, bytes, Mapping[str, Any]]


def _request_dict(request: _Document) -> dict:
    if isinstance(request, (str, bytes)):
        return json.loads(request)
    return json.loads(json.dumps(dict(request)))


def workers(client: Any) -> int:
    """The number of workers of the cluster of ``client`` (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def worker_threads(client: Any) -> int:
    """The fewest threads of any worker of ``client``'s cluster (at least 1): each
    shard uses that many."""
    info = client.scheduler_info().get("workers", {})
    return max(1, min((w.get("nthreads", 1) for w in info.values()), default=1))


def shard_bounds(iterations: int, shards: int) -> List[Tuple[int, int]]:
    """``shards`` contiguous ranges covering ``[0, iterations)``, cut at multiples
    of ``BLOCK_SIZE`` and as equal as the blocks allow (fewer when there are fewer
    blocks)."""
    block = _smm_core.BLOCK_SIZE
    blocks = -(-iterations // block)
    shards = max(1, min(shards, blocks))
    cuts = [min(iterations, (blocks * k // shards) * block) for k in range(shards + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _run_shard(request: dict, start: int, end: int, threads: Optional[int]) -> Any:
    return _smm_core.simulate_shard(request, start, end, threads=threads)


def _whole(name: str, value: Any) -> int:
    """A count given as an int or an integral float (``1e6``), as ``simulate`` takes it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise TypeError(f"argument '{name}': must be a whole number (got {value!r})")
    return int(value)


def _check_shippable(req: dict, bounds: List[Tuple[int, int]]) -> None:
    """Refuse, before any shard runs, an exact-mode run past the exact-mode limit
    (``LIMITS["MAX_EXACT_ITERATIONS"]``): its shards would keep more samples than
    a partial may carry back. (Partials travel in their binary form, the samples
    as raw doubles, so any exact run within the limit ships, in any number of
    shards.)"""
    config = req.get("simulationConfig") or {}
    iterations = int(config.get("iterations", 1000))
    mode = config.get("percentileMode", "auto")
    exact = mode == "exact" or (mode == "auto" and iterations <= _smm_core.AUTO_EXACT_LIMIT)
    if not exact or not bounds:
        return
    limit = _smm_core.LIMITS["MAX_EXACT_ITERATIONS"]
    if iterations > limit:
        raise _smm_core.ShardError(
            f"exact percentiles keep every sample: {iterations:,} iterations are more than the "
            f"exact-mode limit of {limit:,}: set percentileMode to \"bounded\" "
            f"(percentile_mode=\"bounded\"; percentiles within a relative error of 3.05e-5)"
        )


def simulate(
    client: Any,
    request: _Document,
    shards: Optional[int] = None,
    *,
    threads_per_shard: Optional[int] = None,
    keep_samples: bool = False,
    iterations: Optional[int] = None,
    seed: Optional[int] = None,
    percentile_mode: Optional[str] = None,
    early_termination: Optional[bool] = None,
    precision: Optional[float] = None,
) -> Any:
    """Run ``request`` on the cluster of ``client`` as ``shards`` tasks (default:
    one per worker) and merge them once: the :class:`SimulationReport` of a single
    process, bit for bit. ``threads_per_shard`` (default: the workers' thread
    count, so that a worker's threads are not oversubscribed) is the thread count
    inside each task; ``keep_samples`` keeps the samples in the merged report (exact
    mode). ``iterations``, ``seed``, ``percentile_mode`` ("auto", "exact",
    "bounded"), ``early_termination`` and ``precision`` override the request's
    ``simulationConfig`` as :func:`smm_core.simulate` takes them. An exact-mode
    run past the exact-mode limit is refused with a ``ShardError`` before any
    shard runs, naming the fix."""
    from ._sweep import _with_stopping

    req = _request_dict(_with_stopping(request, early_termination, precision))
    config = req.setdefault("simulationConfig", {})
    for key, name, value in (("iterations", "iterations", iterations), ("randomSeed", "seed", seed)):
        if value is not None:
            config[key] = _whole(name, value)
    if percentile_mode is not None:
        config["percentileMode"] = percentile_mode
    total = int(config.get("iterations", 1000))
    count = shards if shards is not None else workers(client)
    if count < 1:
        raise ValueError("shards must be at least 1")
    bounds = shard_bounds(total, count)
    _check_shippable(req, bounds)
    if threads_per_shard is None:
        threads_per_shard = worker_threads(client)
    futures = client.map(
        _run_shard,
        [req] * len(bounds),
        [a for a, _ in bounds],
        [b for _, b in bounds],
        [threads_per_shard] * len(bounds),
        pure=True,
    )
    parts = client.gather(futures)
    return _smm_core.merge_partials(parts, keep_samples=keep_samples)


def _run_point(point: dict, threads: Optional[int]) -> dict:
    # The client warns once for the whole sweep; a worker's warning would
    # land in its log, far from the caller.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = _smm_core.simulate_request(point["request"], threads=threads)
    return _smm_core.sweep_row(point, report)


def _sweep_rows(
    client: Any,
    request: _Document,
    grid: Mapping[str, Sequence[Any]],
    *,
    iterations: Any,
    seed: Any,
    threads_per_point: Optional[int] = 1,
) -> list:
    points = _smm_core.sweep_plan(request, grid, iterations=iterations, seed=seed)
    futures = client.map(_run_point, points, [threads_per_point] * len(points), pure=True)
    return list(client.gather(futures))


def sweep(
    client: Any,
    request: _Document,
    grid: Mapping[str, Sequence[Any]],
    *,
    iterations: int,
    seed: int,
    threads_per_point: Optional[int] = 1,
    early_termination: Optional[bool] = None,
    precision: Optional[float] = None,
) -> SweepResult:
    """Run the sweep of ``request`` over ``grid`` (``iterations`` per point, seeded
    from ``seed``) as tasks on the cluster of ``client``, one task per point with
    ``threads_per_point`` threads (default 1): the rows of :func:`smm_core.sweep`,
    with its ``early_termination=`` and ``precision=`` and its one warning."""
    from ._sweep import _warn_if_stopped, _with_stopping

    asked = early_termination is not None or precision is not None
    request = _with_stopping(request, early_termination, precision)
    rows = _sweep_rows(
        client, request, grid, iterations=iterations, seed=seed, threads_per_point=threads_per_point
    )
    if not asked:
        _warn_if_stopped(rows, iterations, stacklevel=2)
    return SweepResult(rows, grid)
