package smm.budget_test

import rego.v1

import data.smm.fixtures

test_within_limits if {
	count(data.smm.budget.deny) == 0 with input as fixtures.base
	reasons := data.smm.budget.reasons with input as fixtures.base
	reasons == {"weekly_budget_within_limits", "hard_budget_within_limits"}
}

# 850 spent this week + 800 of steps > 1000.
test_weekly_budget_exceeded if {
	i := fixtures.with_input({"currentSpend": {"thisWeek": 850}, "workflow": [{"type": "creative", "estimatedCost": 800, "currency": "USD"}]})
	data.smm.budget.deny == {"weekly_budget_exceeded"} with input as i
	not "weekly_budget_within_limits" in data.smm.budget.reasons with input as i
}

# 4800 spent in total + 500 > 5000.
test_hard_budget_exceeded if {
	i := fixtures.with_input({"currentSpend": {"thisWeek": 0, "total": 4800}, "workflow": [{"type": "creative", "estimatedCost": 500, "currency": "USD"}]})
	data.smm.budget.deny == {"hard_budget_exceeded"} with input as i
	not "hard_budget_within_limits" in data.smm.budget.reasons with input as i
}

test_break_glass_override_needs_a_human if {
	i := object.union(
		fixtures.with_input({"currentSpend": {"thisWeek": 900, "total": 4900}, "workflow": [{"type": "creative", "estimatedCost": 500, "currency": "USD"}]}),
		{"workspace": {"emergencyFlags": {"budgetOverride": true}}},
	)
	count(data.smm.budget.deny) == 0 with input as i
	data.smm.budget.require_human_approval == {"budget_override_in_use"} with input as i
	"budget_override_in_use" in data.smm.budget.warnings with input as i
}

test_override_unused_within_limits if {
	i := fixtures.ws({"emergencyFlags": {"budgetOverride": true}})
	count(data.smm.budget.require_human_approval) == 0 with input as i
}

test_step_currency_mismatch if {
	i := fixtures.steps([{"type": "creative", "estimatedCost": 10, "currency": "EUR"}])
	data.smm.budget.deny == {"currency_mismatch"} with input as i
}

test_spend_currency_mismatch if {
	i := fixtures.with_input({"currentSpend": {"currency": "EUR"}})
	data.smm.budget.deny == {"currency_mismatch"} with input as i
}

test_other_currency_workspace_is_fine if {
	i := object.union(
		fixtures.with_input({"currentSpend": {"currency": "EUR"}, "workflow": [{"type": "creative", "estimatedCost": 10, "currency": "EUR"}]}),
		{"workspace": {"budget": {"currency": "EUR"}}},
	)
	count(data.smm.budget.deny) == 0 with input as i
}

test_simulated_cost_above_hard_cap if {
	i := fixtures.with_input({"simulation": {"costEstimateUSD": 5001}})
	data.smm.budget.deny == {"simulated_cost_exceeds_hard_cap"} with input as i
}

test_simulated_cost_above_weekly_cap_warns if {
	i := fixtures.with_input({"simulation": {"costEstimateUSD": 1001}})
	count(data.smm.budget.deny) == 0 with input as i
	"simulated_cost_exceeds_weekly_cap" in data.smm.budget.warnings with input as i
}

# 650 spent + 150 of steps = 800 = 80 % of the weekly cap.
test_approaching_weekly_limit if {
	i := fixtures.with_input({"currentSpend": {"thisWeek": 650}})
	"approaching_weekly_limit" in data.smm.budget.warnings with input as i
}

test_approaching_hard_limit if {
	i := fixtures.with_input({"currentSpend": {"total": 4350}})
	"approaching_hard_limit" in data.smm.budget.warnings with input as i
}

test_no_warnings_at_base if {
	count(data.smm.budget.warnings) == 0 with input as fixtures.base
}

test_high_cost_workflow if {
	i := fixtures.steps([{"type": "creative", "estimatedCost": 501, "currency": "USD"}])
	"high_cost_workflow" in data.smm.budget.warnings with input as i
}
