# Content: the simulated citation coverage and duplication risk against the
# bundle's thresholds (data.smm.config.content), forbidden topics, and legal
# review of sensitive content.
#
# The thresholds are calibrated on the real readiness model: the original
# system's 90 % citation coverage and 20 % duplication risk were set against
# a hand-written baseline (readiness 0.847, citation 0.916) that its engine
# never produced; the model's citation coverage is clamped to [0.7, 1] with a
# mean near 0.76, and its duplication risk to [0, 0.4] with a mean near 0.19.
package smm.content

import rego.v1


cfg := data.smm.config.content

deny contains "citation_coverage_below_minimum" if {
	object.get(data.smm.lib.simulation, "citationCoverage", 1) < cfg.minCitationCoverage
}

deny contains "duplication_risk_above_maximum" if {
	object.get(data.smm.lib.simulation, "duplicationRisk", 0) > cfg.maxDuplicationRisk
}

deny contains concat("", ["forbidden_topic_", topic]) if {
	some step in data.smm.lib.steps
	some topic in step.flags.contentTopics
	topic in cfg.forbiddenTopics
}

legal_sensitive_flags := ["usesSyntheticVoice", "usesCelebrityLikeness", "containsLegalClaims"]

require_human_approval contains "legal_review_required" if {
	object.get(object.get(data.smm.lib.workspace, "approvalPolicy", {}), "legalManualApproval", false) == true
	some name in legal_sensitive_flags
	name in data.smm.lib.flags_set
}

reasons contains "citation_coverage_sufficient" if {
	not "citation_coverage_below_minimum" in deny
}

reasons contains "duplication_risk_acceptable" if {
	not "duplication_risk_above_maximum" in deny
}
