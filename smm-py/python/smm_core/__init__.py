"""smm_core: deterministic readiness simulation for marketing-automation platforms.

The same inputs and seed give a bit-identical report on any thread count,
machine or shard layout::

    import smm_core
    report = smm_core.simulate(workspace, workflow, iterations=100_000, seed=42)
    report.readiness_score.mean, report.readiness_score.confidence_interval

Bad input raises :class:`ValidationError` (a :class:`SmmError` and a
``ValueError``) whose message and ``pointer`` attribute name the field.
"""

from ._smm_core import (
    BLOCK_SIZE,
    BOUNDED_RELATIVE_ERROR,
    MAX_EXACT_ITERATIONS,
    MAX_ITERATIONS,
    MODEL_ID,
    MetricSummary,
    PartialResult,
    ShardError,
    SimulationReport,
    SmmError,
    ValidationError,
    __version__,
    merge_partials,
    simulate,
    simulate_request,
    simulate_shard,
)

__all__ = [
    "BLOCK_SIZE",
    "BOUNDED_RELATIVE_ERROR",
    "MAX_EXACT_ITERATIONS",
    "MAX_ITERATIONS",
    "MODEL_ID",
    "MetricSummary",
    "PartialResult",
    "ShardError",
    "SimulationReport",
    "SmmError",
    "ValidationError",
    "__version__",
    "merge_partials",
    "simulate",
    "simulate_request",
    "simulate_shard",
]
