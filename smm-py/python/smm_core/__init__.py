"""smm_core: deterministic readiness simulation for marketing-automation platforms.

The same inputs and seed give a bit-identical report on any thread count,
machine or shard layout::

    import smm_core
    report = smm_core.simulate(workspace, workflow, iterations=100_000, seed=42)
    report.readiness_score.mean, report.readiness_score.confidence_interval

Workspace contracts: :class:`Contract` (v2 schema, validation at a given
time, terms hash, lifecycle, change checks), :class:`ContractHistory`,
:func:`canonicalize` (RFC 8785), :func:`contract_hash`.

Bad input raises :class:`ValidationError` (a :class:`SmmError` and a
``ValueError``) whose message and ``pointer`` attribute name the field.
Refused contract operations raise the :class:`ContractError` family.
"""

from ._smm_core import (
    BLOCK_SIZE,
    BOUNDED_RELATIVE_ERROR,
    MAX_EXACT_ITERATIONS,
    MAX_ITERATIONS,
    MODEL_ID,
    Contract,
    ContractError,
    ContractHistory,
    ImmutabilityError,
    IntegrityError,
    LifecycleError,
    MetricSummary,
    PartialResult,
    ShardError,
    SimulationReport,
    SmmError,
    ValidationError,
    VersionError,
    Violation,
    __version__,
    canonicalize,
    contract_hash,
    merge_partials,
    migrate_v1,
    simulate,
    simulate_request,
    simulate_shard,
    validate_contract,
)

__all__ = [
    "BLOCK_SIZE",
    "BOUNDED_RELATIVE_ERROR",
    "MAX_EXACT_ITERATIONS",
    "MAX_ITERATIONS",
    "MODEL_ID",
    "Contract",
    "ContractError",
    "ContractHistory",
    "ImmutabilityError",
    "IntegrityError",
    "LifecycleError",
    "MetricSummary",
    "PartialResult",
    "ShardError",
    "SimulationReport",
    "SmmError",
    "ValidationError",
    "VersionError",
    "Violation",
    "__version__",
    "canonicalize",
    "contract_hash",
    "merge_partials",
    "migrate_v1",
    "simulate",
    "simulate_request",
    "simulate_shard",
    "validate_contract",
]
