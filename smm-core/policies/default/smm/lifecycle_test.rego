package smm.lifecycle_test

import rego.v1

import data.smm.fixtures

test_signed_and_active_run if {
	count(data.smm.lifecycle.deny) == 0 with input as fixtures.base
	count(data.smm.lifecycle.deny) == 0 with input as fixtures.ws({"lifecycle": "active"})
}

test_paused_denies if {
	data.smm.lifecycle.deny == {"workspace_paused"} with input as fixtures.ws({"lifecycle": "paused"})
}

test_draft_does_not_run if {
	data.smm.lifecycle.deny == {"lifecycle_not_runnable"} with input as fixtures.ws({"lifecycle": "draft"})
}

test_decommissioned_does_not_run if {
	data.smm.lifecycle.deny == {"lifecycle_not_runnable"} with input as fixtures.ws({"lifecycle": "decommissioned"})
}

test_not_yet_effective if {
	i := fixtures.with_input({"timestamp": "2025-08-24T10:30:00Z"})
	data.smm.lifecycle.deny == {"contract_not_yet_effective"} with input as i
}

test_effective_window_over if {
	i := object.union(fixtures.with_input({"timestamp": "2026-03-01T00:00:00Z"}), {"workspace": {"ttlHours": 100000}})
	data.smm.lifecycle.deny == {"contract_expired"} with input as i
}

# createdAt + 720 h = 2025-09-23T10:00:00Z.
test_workspace_time_to_live_over if {
	i := fixtures.with_input({"timestamp": "2025-09-23T10:00:00Z"})
	data.smm.lifecycle.deny == {"workspace_expired"} with input as i
}

test_time_to_live_not_over if {
	i := fixtures.with_input({"timestamp": "2025-09-23T09:59:59Z"})
	count(data.smm.lifecycle.deny) == 0 with input as i
}
