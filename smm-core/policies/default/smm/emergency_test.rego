package smm.emergency_test

import rego.v1

import data.smm.fixtures

test_normal_operation if {
	count(data.smm.emergency.deny) == 0 with input as fixtures.base
	count(data.smm.emergency.require_human_approval) == 0 with input as fixtures.base
}

test_halted_denies if {
	i := fixtures.ws({"emergencyFlags": {"halted": true, "reason": "budget breach"}})
	data.smm.emergency.deny == {"workspace_halted"} with input as i
}

test_human_approval_switch if {
	i := fixtures.ws({"emergencyFlags": {"humanApprovalRequired": true}})
	data.smm.emergency.require_human_approval == {"emergency_human_approval_required"} with input as i
}
