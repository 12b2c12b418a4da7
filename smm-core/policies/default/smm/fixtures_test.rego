# Inputs shared by the tests: a complete input the default bundle allows,
# and helpers that change one part of it.
package smm.fixtures

import rego.v1

workspace := {
	"workspaceId": "ws-test-0001",
	"tenantId": "tenant-test",
	"createdBy": "user-123",
	"createdAt": "2025-08-24T10:00:00Z",
	"lifecycle": "signed",
	"contractVersion": "v1.0.0",
	"effectiveFrom": "2025-08-24T11:00:00Z",
	"effectiveTo": "2026-02-24T11:00:00Z",
	"goals": [{"key": "lead_gen", "target": 200, "unit": "leads_per_month"}],
	"primaryChannels": ["linkedin", "x"],
	"connectors": [
		{"platform": "linkedin", "connectorId": "c-li", "accountId": "a", "displayName": "LI", "status": "connected", "lastConnectedAt": "2025-08-31T09:00:00Z"},
		{"platform": "x", "connectorId": "c-x", "accountId": "b", "displayName": "X", "status": "connected", "lastConnectedAt": "2025-08-31T09:00:00Z"},
	],
	"consentRecords": [{
		"consentId": "consent-voice", "type": "voice_likeness", "grantedBy": "user-123",
		"grantedAt": "2025-08-24T10:15:00Z", "expiresAt": "2026-08-24T10:15:00Z",
	}],
	"budget": {
		"currency": "USD", "weeklyCap": 1000, "hardCap": 5000,
		"breakdown": {"paidAds": 500, "llmModelSpend": 200, "rendering": 100, "thirdPartyServices": 50},
	},
	"approvalPolicy": {
		"autoApproveReadinessThreshold": 0.7, "canaryInitialPct": 0.05, "canaryWatchWindowHours": 48,
		"manualApprovalForPaid": false, "legalManualApproval": false,
	},
	"ttlHours": 720,
	"policyBundleRef": "smm/default-policies/v1",
	"policyBundleChecksum": "0000000000000000000000000000000000000000000000000000000000000000",
	"emergencyFlags": {"halted": false, "budgetOverride": false, "humanApprovalRequired": false},
	"kmsKeyRef": "local-test",
}

base := {
	"workspace": workspace,
	"workflow": [
		{"type": "research", "estimatedCost": 50, "currency": "USD"},
		{"type": "publish", "estimatedCost": 100, "currency": "USD", "flags": {"channels": ["linkedin"], "postsPerHour": 2}},
	],
	"currentSpend": {"thisWeek": 200, "total": 1000, "currency": "USD"},
	"simulation": {"policyPassPct": 0.71, "citationCoverage": 0.76, "duplicationRisk": 0.19, "costEstimateUSD": 900, "technicalReadiness": 0.69},
	"timestamp": "2025-09-01T12:00:00Z",
}

# The base input with part of the workspace replaced (objects merge).
ws(patch) := object.union(base, {"workspace": patch})

# The base input with these workflow steps.
steps(list) := object.union(base, {"workflow": list})

# The base input with other top-level fields.
with_input(patch) := object.union(base, patch)

# A step of the given type with flags.
step(kind, flags) := {"type": kind, "estimatedCost": 0, "currency": "USD", "flags": flags}
