package smm.quota_test

import rego.v1

import data.smm.fixtures

quotas(list) := fixtures.with_input({"quotas": list})

test_no_quotas if {
	count(data.smm.quota.deny) == 0 with input as fixtures.base
	count(data.smm.quota.reasons) == 0 with input as fixtures.base
}

test_within_quota if {
	i := quotas([{"kind": "tokens", "period": "day", "limit": 5000, "used": 100}])
	data.smm.quota.reasons == {"quotas_within_limits"} with input as i
	count(data.smm.quota.warnings) == 0 with input as i
}

test_quota_exhausted if {
	i := quotas([{"kind": "tokens", "period": "day", "limit": 5000, "used": 5000}])
	data.smm.quota.deny == {"quota_exhausted_tokens"} with input as i
	count(data.smm.quota.reasons) == 0 with input as i
}

test_quota_approaching if {
	i := quotas([{"kind": "cost_usd", "period": "month", "limit": 100, "used": 80}])
	data.smm.quota.warnings == {"quota_approaching_cost_usd"} with input as i
	count(data.smm.quota.deny) == 0 with input as i
}
