package smm.hallucination_test

import rego.v1

import data.smm.fixtures

output(o) := fixtures.with_input({"agentOutput": o})

test_no_agent_output if {
	count(data.smm.hallucination.require_human_approval) == 0 with input as fixtures.base
	count(data.smm.hallucination.reasons) == 0 with input as fixtures.base
}

test_low_confidence_unverified if {
	i := output({"confidenceScore": 0.6, "verified": false, "citations": []})
	data.smm.hallucination.require_human_approval == {"hallucination_low_confidence"} with input as i
	data.smm.hallucination.reasons == {"hallucination_output_not_verified"} with input as i
}

test_low_confidence_verified_without_citations if {
	i := output({"confidenceScore": 0.6, "verified": true, "citations": []})
	data.smm.hallucination.require_human_approval == {"hallucination_low_confidence"} with input as i
	data.smm.hallucination.reasons == {"hallucination_no_citations"} with input as i
}

test_low_confidence_verified_by_retrieval if {
	i := output({"confidenceScore": 0.6, "verified": true, "citations": ["https://example.com/source"]})
	count(data.smm.hallucination.require_human_approval) == 0 with input as i
	data.smm.hallucination.reasons == {"hallucination_verified_by_retrieval"} with input as i
}

test_confident_output if {
	i := output({"confidenceScore": 0.85, "verified": false, "citations": []})
	count(data.smm.hallucination.require_human_approval) == 0 with input as i
	data.smm.hallucination.reasons == {"hallucination_confidence_sufficient"} with input as i
}
