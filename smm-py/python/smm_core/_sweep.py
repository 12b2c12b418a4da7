"""Parameter sweeps: :func:`sweep` and its :class:`SweepResult`."""

import json
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _smm_core

_Document = Union[str, bytes, Mapping[str, Any]]


def _with_stopping(
    request: _Document, early_termination: Optional[bool], precision: Optional[float]
) -> _Document:
    """``request`` with the stopping asked for by keyword (as ``simulate`` takes it)."""
    if early_termination is None and precision is None:
        return request
    doc = json.loads(request) if isinstance(request, (str, bytes)) else json.loads(json.dumps(request))
    if not isinstance(doc, dict):
        return request  # the library refuses it, naming what is wrong
    config = dict(doc.get("simulationConfig") or {})
    if precision is not None:
        config["enableEarlyTermination"] = True
        config["stoppingRule"] = "precision"
        config["precision"] = dict(config.get("precision") or {}, halfWidth=precision)
    elif early_termination:
        config["enableEarlyTermination"] = True
    else:
        # Every iteration: no rule and no target left to contradict it.
        config["enableEarlyTermination"] = False
        config.pop("stoppingRule", None)
        config.pop("precision", None)
    doc["simulationConfig"] = config
    return doc


def _warn_if_stopped(rows: List[Dict[str, Any]], iterations: Any, stacklevel: int) -> None:
    """One EarlyTerminationWarning, at the caller's line, when the request's own
    stopping rule ended points short of the iterations asked for."""
    stopped = [r for r in rows if r.get("stopped_by")]
    if stopped:
        warnings.warn(
            f"the request's stopping rule ended {len(stopped)} of {len(rows)} points early "
            f"(fewest iterations: {min(r['iterations_run'] for r in stopped)} of {int(iterations)}; "
            "see each row's stopped_by and iterations_run; pass early_termination=False to run "
            "them all)",
            _smm_core_warning(),
            stacklevel=stacklevel + 1,
        )


def _smm_core_warning() -> Any:
    from . import EarlyTerminationWarning

    return EarlyTerminationWarning


def _column_names(pointers: Sequence[str]) -> Dict[str, str]:
    """Each pointer's column: its last field name, or more of the pointer where
    two would share a name."""
    base = {p: p.rstrip("/").split("/")[-1].replace("~1", "/").replace("~0", "~") for p in pointers}
    taken = list(base.values())
    return {p: (p.lstrip("/") if taken.count(name) > 1 else name) for p, name in base.items()}


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

    def __init__(self, rows: Any = (), grid: Optional[Mapping[str, Sequence[Any]]] = None) -> None:
        super().__init__(rows)
        #: The grid swept (pointer -> values, in the order given), when known.
        self.grid: Dict[str, List[Any]] = {k: list(v) for k, v in (grid or {}).items()}

    def pointers(self) -> List[str]:
        """The swept pointers: the grid's order, else the rows'."""
        if self.grid:
            return list(self.grid)
        return list(self[0]["inputs"]) if self else []

    def columns(self) -> Dict[str, str]:
        """Pointer -> column name of :meth:`records` (the field name, e.g.
        ``hardCap``; more of the pointer when two fields share a name)."""
        return _column_names(self.pointers())

    def records(self) -> List[Dict[str, Any]]:
        """Flat rows: one column per swept field (see :meth:`columns`; the full
        pointers stay in ``inputs`` of each row and in :attr:`grid`), then the
        statistics. Rows keep sweep order; ``index`` is the row's place."""
        names = self.columns()
        out = []
        for row in self:
            inputs = row["inputs"]
            rec: Dict[str, Any] = {names[p]: inputs[p] for p in self.pointers() if p in inputs}
            rec.update((k, v) for k, v in row.items() if k not in ("index", "inputs"))
            out.append(rec)
        return out

    def to_pandas(self) -> Any:
        """A pandas DataFrame of :meth:`records` (needs pandas), indexed by the
        sweep's row order with no extra column. A swept field of strings is an
        ordered categorical whose categories are the grid's values in the
        grid's order, so sorting and plotting keep it."""
        try:
            import pandas as pd  # type: ignore[import-untyped,unused-ignore]
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError('to_pandas needs pandas: pip install "smm-core[pandas]"') from e
        df = pd.DataFrame.from_records(self.records())
        names = self.columns()
        for pointer, values in self.grid.items():
            column = names[pointer]
            if column in df and values and all(isinstance(v, str) for v in values):
                df[column] = pd.Categorical(df[column], categories=values, ordered=True)
        return df


def sweep(
    request: _Document,
    grid: Mapping[str, Sequence[Any]],
    *,
    iterations: int,
    seed: int,
    threads: Optional[int] = None,
    client: Any = None,
    progress: Optional[Callable[[int, int], Optional[bool]]] = None,
    early_termination: Optional[bool] = None,
    precision: Optional[float] = None,
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

    Stopping is the request's (its ``simulationConfig``) unless asked here, as
    :func:`simulate` takes it: ``early_termination=False`` runs every iteration of
    every point, ``True`` turns the model's rule on, ``precision=h`` stops each point
    once the readiness interval's half-width is at most ``h``. A point that stops
    early says so in its row (``stopped_by``, ``iterations_run``); when the request's
    own rule (not a keyword here) stopped any, one ``EarlyTerminationWarning`` names
    the caller's line.
    """
    asked = early_termination is not None or precision is not None
    request = _with_stopping(request, early_termination, precision)
    if client is not None:
        from .distributed import _sweep_rows

        rows = _sweep_rows(client, request, grid, iterations=iterations, seed=seed)
    else:
        rows = _smm_core._sweep(
            request, grid, iterations=iterations, seed=seed, threads=threads, progress=progress
        )
    if not asked:
        _warn_if_stopped(rows, iterations, stacklevel=2)
    return SweepResult(rows, grid)
