"""Parameter sweeps: :func:`sweep` and its :class:`SweepResult`."""

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _smm_core

_Document = Union[str, bytes, Mapping[str, Any]]


class SweepResult(List[Dict[str, Any]]):
    """The rows of a sweep, one dict per point, in sweep order.

    Each row has ``index``, ``inputs`` (the value at each pointer), ``seed``
    (re-run the point alone with it), ``iterations_run``, ``stopped_by`` and
    the summary statistics (``readiness_mean``, ``readiness_std``,
    ``readiness_ci_lower``/``_upper``, ``readiness_p5``/``p50``/``p95``,
    ``policy_pass_mean``, ``citation_coverage_mean``,
    ``duplication_risk_mean``, ``cost_mean``, ``cost_p95``,
    ``technical_readiness_mean``, ``success_rate``).
    """

    def records(self) -> List[Dict[str, Any]]:
        """Flat rows: one column per pointer (named by the pointer), then the statistics."""
        out = []
        for row in self:
            rec: Dict[str, Any] = {"index": row["index"]}
            rec.update(row["inputs"])
            rec.update((k, v) for k, v in row.items() if k not in ("index", "inputs"))
            out.append(rec)
        return out

    def to_pandas(self) -> Any:
        """A pandas DataFrame of :meth:`records` (needs pandas)."""
        try:
            import pandas as pd  # type: ignore[import-untyped,unused-ignore]
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError('to_pandas needs pandas: pip install "smm-core[pandas]"') from e
        return pd.DataFrame.from_records(self.records())


def sweep(
    request: _Document,
    grid: Mapping[str, Sequence[Any]],
    *,
    iterations: int,
    seed: int,
    threads: Optional[int] = None,
    client: Any = None,
    progress: Optional[Callable[[int, int], Optional[bool]]] = None,
) -> SweepResult:
    """Simulate ``request`` at every point of ``grid``'s cartesian product.

    ``grid`` maps JSON pointers into the request (``"/workspaceContext/budget/hardCap"``,
    ``"/workspaceContext/riskProfile"``, ``"/workflowJson/nodes/1/failureRate"``, anything)
    to lists (or numpy arrays) of values. Axes are taken in lexicographic order of their
    pointers, the last varying fastest. Each point runs ``iterations`` iterations with a
    seed derived from ``seed`` and the point's values (SHA-256 of the canonical point), so
    a sweep is reproducible and any point can be re-run alone from its row's ``seed`` (or
    from :func:`sweep_plan`). With a Dask ``client`` the points run as tasks on the
    cluster and the rows are the same. ``progress(points_done, points)`` is called after
    each point (returning False stops the sweep with ``CancelledError``).
    ``threads`` is the thread count of each point's run here (None: every core; with
    a client, each task uses one).
    """
    if client is not None:
        from .distributed import sweep as _distributed_sweep

        return _distributed_sweep(client, request, grid, iterations=iterations, seed=seed)
    rows = _smm_core._sweep(
        request, grid, iterations=iterations, seed=seed, threads=threads, progress=progress
    )
    return SweepResult(rows)
