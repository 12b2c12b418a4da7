package smm.content_test

import rego.v1

import data.smm.fixtures

test_content_within_thresholds if {
	count(data.smm.content.deny) == 0 with input as fixtures.base
	data.smm.content.reasons == {"citation_coverage_sufficient", "duplication_risk_acceptable"} with input as fixtures.base
}

test_low_citation_coverage if {
	i := fixtures.with_input({"simulation": {"citationCoverage": 0.71}})
	data.smm.content.deny == {"citation_coverage_below_minimum"} with input as i
	data.smm.content.reasons == {"duplication_risk_acceptable"} with input as i
}

test_high_duplication_risk if {
	i := fixtures.with_input({"simulation": {"duplicationRisk": 0.26}})
	data.smm.content.deny == {"duplication_risk_above_maximum"} with input as i
	data.smm.content.reasons == {"citation_coverage_sufficient"} with input as i
}

test_forbidden_topic if {
	i := fixtures.steps([fixtures.step("creative", {"contentTopics": ["fintech", "gambling"]})])
	data.smm.content.deny == {"forbidden_topic_gambling"} with input as i
}

test_allowed_topics if {
	i := fixtures.steps([fixtures.step("creative", {"contentTopics": ["fintech"]})])
	count(data.smm.content.deny) == 0 with input as i
}

test_legal_review_for_legal_claims if {
	i := object.union(
		fixtures.steps([fixtures.step("creative", {"containsLegalClaims": true})]),
		{"workspace": {"approvalPolicy": {"legalManualApproval": true}}},
	)
	data.smm.content.require_human_approval == {"legal_review_required"} with input as i
}

test_no_legal_review_without_sensitive_content if {
	i := fixtures.ws({"approvalPolicy": {"legalManualApproval": true}})
	count(data.smm.content.require_human_approval) == 0 with input as i
}

test_no_legal_review_when_the_contract_does_not_ask if {
	i := fixtures.steps([fixtures.step("creative", {"containsLegalClaims": true})])
	count(data.smm.content.require_human_approval) == 0 with input as i
}
