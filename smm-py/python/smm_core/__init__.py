"""smm_core: deterministic readiness simulation for marketing-automation platforms.

The same inputs and seed give a bit-identical report on any thread count,
machine or shard layout::

    import smm_core
    report = smm_core.simulate(workspace, workflow, iterations=100_000, seed=42)
    report.readiness_score.mean, report.readiness_score.confidence_interval

Workspace contracts: :class:`Contract` (v2 schema, validation at a given
time, terms hash, lifecycle, change checks), :class:`ContractHistory`,
:func:`canonicalize` (RFC 8785), :func:`is_canonical`, :func:`contract_hash`.

Signed audit bundles: :func:`assemble_bundle`, :func:`sign_bundle` with a
:class:`LocalSigner` or an :class:`ExternalSigner` (a KMS callback),
:func:`verify_bundle` offline, :class:`FileBundleStore`.

Policies in Rego: :class:`PolicyBundle` (the default bundle, or yours from
modules, a directory or an OPA bundle archive), :meth:`PolicyBundle.evaluate`
returning a :class:`Decision`, :func:`decision_card`.

Cost controls: :class:`UsageLedger` (SQLite or in memory) with quotas
that block hard, :meth:`UsageLedger.reserve` before a model call and
:meth:`UsageLedger.commit` after it, :class:`PriceTable` and
:func:`price_usage`, :class:`AgentRun`, :func:`breach_plan` (the
budget-breach playbook), :func:`check_agent_token`, :func:`retention_plan`.

The main job end to end: :func:`run` (contract, simulation, policies,
decision card, usage, a signed bundle stored and verified) returning a
:class:`RunResult`; a failing step raises its typed error with ``.step``.

Bad input raises :class:`ValidationError` (a :class:`SmmError` and a
``ValueError``) whose message and ``pointer`` attribute name the field.
Every error carries ``code``, ``name`` and ``category`` from the library's
one error table (the same code is the C status). Refused contract
operations raise the :class:`ContractError` family; a policy bundle that
does not load raises :class:`PolicyError`; the usage ledger raises the
:class:`QuotaError` family.
"""

from ._smm_core import (
    BLOCK_SIZE,
    BOUNDED_RELATIVE_ERROR,
    BUNDLE_PAYLOAD_TYPE,
    COST_UNITS_PER_USD,
    DECISION_RULE,
    DEFAULT_RESERVATION_TTL_SECONDS,
    LIMITS,
    MAX_AGENT_TOKEN_SECONDS,
    MAX_EXACT_ITERATIONS,
    AUTO_EXACT_LIMIT,
    MAX_ITERATIONS,
    MODEL_ID,
    REGORUS_VERSION,
    WARN_PERCENT,
    AgentRun,
    AgentTokenError,
    AuditError,
    BundleConflictError,
    CancelledError,
    Contract,
    ContractError,
    ContractHistory,
    CorruptBundleError,
    Decision,
    ExternalSigner,
    FileBundleStore,
    PostgresBundleStore,
    ImmutabilityError,
    IntegrityError,
    InternalError,
    IntrospectionError,
    MissingFileError,
    ContractViolationError,
    LedgerConflictError,
    LedgerCorruptError,
    LedgerError,
    LedgerLockedError,
    LedgerStorageError,
    LedgerVersionError,
    LifecycleError,
    LocalSigner,
    MetricSummary,
    PartialResult,
    PolicyBundle,
    PolicyChecksumError,
    PolicyDeniedError,
    PolicyError,
    PolicyInput,
    PriceTable,
    QuotaError,
    QuotaExceededError,
    Reservation,
    RunResult,
    ShardError,
    SignerError,
    SimulationReport,
    SmmError,
    StorageError,
    TimeoutError,
    UnknownReservationError,
    UntrustedBundleError,
    UsageLedger,
    ValidationError,
    VerificationResult,
    VersionError,
    Violation,
    assemble_bundle,
    authorize_agent,
    breach_plan,
    bundle_id,
    canonicalize,
    is_canonical,
    check_agent_token,
    contract_hash,
    contract_quotas,
    decision_card,
    ecdsa_p256_verify,
    merge_partials,
    migrate_v1,
    price_usage,
    prompt_hash,
    retention_plan,
    run,
    sign_bundle,
    sweep_plan,
    sweep_row,
    simulate,
    simulate_request,
    simulate_shard,
    validate_contract,
    verify_bundle,
    verify_bundle_chain,
    verify_bundles,
    __version__,
)



class EarlyTerminationWarning(UserWarning):
    """A run stopped before the iterations asked for (by its stopping rule):
    ``report.terminated_early``, ``report.stopped_by``, ``report.iterations_run``
    and ``report.iterations_requested`` say how far it went. Silence with
    ``warnings.simplefilter("ignore", smm_core.EarlyTerminationWarning)``."""


from ._sweep import SweepResult, sweep

__all__ = [
    "BLOCK_SIZE",
    "BOUNDED_RELATIVE_ERROR",
    "BUNDLE_PAYLOAD_TYPE",
    "COST_UNITS_PER_USD",
    "DECISION_RULE",
    "DEFAULT_RESERVATION_TTL_SECONDS",
    "LIMITS",
    "MAX_AGENT_TOKEN_SECONDS",
    "MAX_EXACT_ITERATIONS",
    "AUTO_EXACT_LIMIT",
    "MAX_ITERATIONS",
    "MODEL_ID",
    "REGORUS_VERSION",
    "WARN_PERCENT",
    "AgentRun",
    "AgentTokenError",
    "AuditError",
    "BundleConflictError",
    "CancelledError",
    "Contract",
    "ContractError",
    "ContractHistory",
    "CorruptBundleError",
    "Decision",
    "ExternalSigner",
    "FileBundleStore",
    "PostgresBundleStore",
    "ImmutabilityError",
    "IntegrityError",
    "InternalError",
    "IntrospectionError",
    "MissingFileError",
    "ContractViolationError",
    "LedgerConflictError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerStorageError",
    "LedgerVersionError",
    "LifecycleError",
    "LocalSigner",
    "MetricSummary",
    "PartialResult",
    "PolicyBundle",
    "PolicyChecksumError",
    "PolicyDeniedError",
    "PolicyError",
    "PolicyInput",
    "PriceTable",
    "QuotaError",
    "QuotaExceededError",
    "Reservation",
    "RunResult",
    "ShardError",
    "SignerError",
    "SimulationReport",
    "SmmError",
    "StorageError",
    "TimeoutError",
    "UnknownReservationError",
    "UntrustedBundleError",
    "UsageLedger",
    "ValidationError",
    "VerificationResult",
    "VersionError",
    "Violation",
    "assemble_bundle",
    "authorize_agent",
    "breach_plan",
    "bundle_id",
    "canonicalize",
    "is_canonical",
    "check_agent_token",
    "contract_hash",
    "contract_quotas",
    "decision_card",
    "ecdsa_p256_verify",
    "merge_partials",
    "migrate_v1",
    "price_usage",
    "prompt_hash",
    "retention_plan",
    "run",
    "EarlyTerminationWarning",
    "sweep",
    "sweep_plan",
    "sweep_row",
    "SweepResult",
    "sign_bundle",
    "simulate",
    "simulate_request",
    "simulate_shard",
    "validate_contract",
    "verify_bundle",
    "verify_bundle_chain",
    "verify_bundles",
    "__version__",
]
