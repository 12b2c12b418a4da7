package smm.decision_test

import rego.v1

import data.smm.fixtures

test_base_input_is_allowed if {
	d := data.smm.decision with input as fixtures.base
	d.allow == true
	d.deny == []
	d.require_human_approval == false
	"weekly_budget_within_limits" in d.reasons
}

test_halted_workspace_denies_everything if {
	d := data.smm.decision with input as fixtures.ws({"emergencyFlags": {"halted": true, "reason": "breach"}})
	d.allow == false
	d.deny == ["workspace_halted"]
}

test_paused_workspace_denies_everything if {
	d := data.smm.decision with input as fixtures.ws({"lifecycle": "paused"})
	d.allow == false
	d.deny == ["workspace_paused"]
}

test_codes_are_sorted_and_unique if {
	i := object.union(
		fixtures.with_input({"simulation": {"citationCoverage": 0.1, "duplicationRisk": 0.4}, "currentSpend": {"thisWeek": 999}}),
		{"workspace": {"connectors": []}},
	)
	d := data.smm.decision with input as i
	d.allow == false
	d.deny == sort(d.deny)
	d.deny == [
		"citation_coverage_below_minimum", "duplication_risk_above_maximum",
		"missing_connector_linkedin", "missing_connector_x", "weekly_budget_exceeded",
	]
	d.warnings == sort(d.warnings)
	d.reasons == sort(d.reasons)
}

test_approval_reasons_are_listed if {
	i := object.union(fixtures.with_input({"agentOutput": {"confidenceScore": 0.5}}), {"workspace": {"emergencyFlags": {"humanApprovalRequired": true}}})
	d := data.smm.decision with input as i
	d.allow == true
	d.require_human_approval == true
	"hallucination_low_confidence" in d.reasons
	"emergency_human_approval_required" in d.reasons
}

# A missing optional field never makes the decision undefined.
test_decision_defined_on_an_empty_input if {
	d := data.smm.decision with input as {}
	d.allow == false
	d.deny == ["lifecycle_not_runnable"]
	d.warnings == []
	d.require_human_approval == false
}

test_allow_is_never_undefined if {
	data.smm.allow == false with input as {"workspace": {"lifecycle": "draft"}}
}
