"""smm_core: deterministic readiness simulation for marketing-automation platforms.

The same inputs and seed give a bit-identical report on any thread count,
machine or shard layout::

    import smm_core
    report = smm_core.simulate(workspace, workflow, iterations=100_000, seed=42)
    report.readiness_score.mean, report.readiness_score.confidence_interval

Workspace contracts: :class:`Contract` (v2 schema, validation at a given
time, terms hash, lifecycle, change checks), :class:`ContractHistory`,
:func:`canonicalize` (RFC 8785), :func:`contract_hash`.

Signed audit bundles: :func:`assemble_bundle`, :func:`sign_bundle` with a
:class:`LocalSigner` or an :class:`ExternalSigner` (a KMS callback),
:func:`verify_bundle` offline, :class:`FileBundleStore`.

Policies in Rego: :class:`PolicyBundle` (the default bundle, or yours from
modules, a directory or an OPA bundle archive), :meth:`PolicyBundle.evaluate`
returning a :class:`Decision`, :func:`decision_card`.

Bad input raises :class:`ValidationError` (a :class:`SmmError` and a
``ValueError``) whose message and ``pointer`` attribute name the field.
Every error carries ``code``, ``name`` and ``category`` from the library's
one error table (the same code is the C status). Refused contract
operations raise the :class:`ContractError` family; a policy bundle that
does not load raises :class:`PolicyError`.
"""

from ._smm_core import (
    BLOCK_SIZE,
    BOUNDED_RELATIVE_ERROR,
    BUNDLE_PAYLOAD_TYPE,
    DECISION_RULE,
    LIMITS,
    MAX_EXACT_ITERATIONS,
    MAX_ITERATIONS,
    MODEL_ID,
    REGORUS_VERSION,
    AuditError,
    BundleConflictError,
    Contract,
    ContractError,
    ContractHistory,
    CorruptBundleError,
    Decision,
    ExternalSigner,
    FileBundleStore,
    ImmutabilityError,
    IntegrityError,
    InternalError,
    LifecycleError,
    LocalSigner,
    MetricSummary,
    PartialResult,
    PolicyBundle,
    PolicyChecksumError,
    PolicyError,
    ShardError,
    SignerError,
    SimulationReport,
    SmmError,
    StorageError,
    TimeoutError,
    UntrustedBundleError,
    ValidationError,
    VerificationResult,
    VersionError,
    Violation,
    __version__,
    assemble_bundle,
    bundle_id,
    canonicalize,
    contract_hash,
    decision_card,
    ecdsa_p256_verify,
    merge_partials,
    migrate_v1,
    sign_bundle,
    simulate,
    simulate_request,
    simulate_shard,
    validate_contract,
    verify_bundle,
    verify_bundle_chain,
    verify_bundles,
)

__all__ = [
    "BLOCK_SIZE",
    "BOUNDED_RELATIVE_ERROR",
    "BUNDLE_PAYLOAD_TYPE",
    "DECISION_RULE",
    "LIMITS",
    "MAX_EXACT_ITERATIONS",
    "MAX_ITERATIONS",
    "MODEL_ID",
    "REGORUS_VERSION",
    "AuditError",
    "BundleConflictError",
    "Contract",
    "ContractError",
    "ContractHistory",
    "CorruptBundleError",
    "Decision",
    "ExternalSigner",
    "FileBundleStore",
    "ImmutabilityError",
    "IntegrityError",
    "InternalError",
    "LifecycleError",
    "LocalSigner",
    "MetricSummary",
    "PartialResult",
    "PolicyBundle",
    "PolicyChecksumError",
    "PolicyError",
    "ShardError",
    "SignerError",
    "SimulationReport",
    "SmmError",
    "StorageError",
    "TimeoutError",
    "UntrustedBundleError",
    "ValidationError",
    "VerificationResult",
    "VersionError",
    "Violation",
    "__version__",
    "assemble_bundle",
    "bundle_id",
    "canonicalize",
    "contract_hash",
    "decision_card",
    "ecdsa_p256_verify",
    "merge_partials",
    "migrate_v1",
    "sign_bundle",
    "simulate",
    "simulate_request",
    "simulate_shard",
    "validate_contract",
    "verify_bundle",
    "verify_bundle_chain",
    "verify_bundles",
]
