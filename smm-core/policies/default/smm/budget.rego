# Budget: the workflow's estimated cost on top of the current spend must fit
# the weekly and hard caps, in the workspace's currency. The contract's
# emergencyFlags.budgetOverride (break-glass) turns a cap breach into a
# required human approval instead of a denial.
package smm.budget

import rego.v1


budget := object.get(data.smm.lib.workspace, "budget", {})

weekly_cap := object.get(budget, "weeklyCap", 0)

hard_cap := object.get(budget, "hardCap", 0)

spend := object.get(input, "currentSpend", {})

workflow_cost := sum([s.estimatedCost | some s in data.smm.lib.steps])

weekly_after := object.get(spend, "thisWeek", 0) + workflow_cost

hard_after := object.get(spend, "total", 0) + workflow_cost

override := object.get(data.smm.lib.emergency, "budgetOverride", false)

default weekly_exceeded := false

weekly_exceeded if weekly_after > weekly_cap

default hard_exceeded := false

hard_exceeded if hard_after > hard_cap

deny contains "weekly_budget_exceeded" if {
	weekly_exceeded
	override != true
}

deny contains "hard_budget_exceeded" if {
	hard_exceeded
	override != true
}

require_human_approval contains "budget_override_in_use" if {
	override == true
	weekly_exceeded
}

require_human_approval contains "budget_override_in_use" if {
	override == true
	hard_exceeded
}

warnings contains "budget_override_in_use" if {
	some _ in require_human_approval
}

# Amounts in another currency than the workspace's cannot be compared.
deny contains "currency_mismatch" if {
	some step in data.smm.lib.steps
	object.get(step, "currency", budget.currency) != budget.currency
}

deny contains "currency_mismatch" if {
	object.get(spend, "currency", budget.currency) != budget.currency
}

# The simulated cost (a weekly figure: the model's base is the planned
# weekly breakdown) against the caps.
deny contains "simulated_cost_exceeds_hard_cap" if {
	object.get(data.smm.lib.simulation, "costEstimateUSD", 0) > hard_cap
}

warnings contains "simulated_cost_exceeds_weekly_cap" if {
	object.get(data.smm.lib.simulation, "costEstimateUSD", 0) > weekly_cap
}

warnings contains "approaching_weekly_limit" if {
	weekly_cap > 0
	not weekly_exceeded
	weekly_after >= data.smm.config.budget.approachingWeeklyRatio * weekly_cap
}

warnings contains "approaching_hard_limit" if {
	hard_cap > 0
	not hard_exceeded
	hard_after >= data.smm.config.budget.approachingHardRatio * hard_cap
}

warnings contains "high_cost_workflow" if {
	workflow_cost > data.smm.config.budget.highCostWorkflowRatio * weekly_cap
}

reasons contains "weekly_budget_within_limits" if not weekly_exceeded

reasons contains "hard_budget_within_limits" if not hard_exceeded
