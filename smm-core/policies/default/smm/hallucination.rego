# Hallucination: an agent output with a confidence score below the
# threshold needs a human unless retrieval verified it (verified is true and
# it cites at least one source). The reasons say which condition failed.
package smm.hallucination

import rego.v1


output := object.get(input, "agentOutput", {})

has_output if count(output) > 0

default low_confidence := false

low_confidence if {
	has_output
	object.get(output, "confidenceScore", 0) < data.smm.config.hallucination.minConfidence
}

default verified := false

verified if output.verified == true

citations := object.get(output, "citations", [])

default verified_by_retrieval := false

verified_by_retrieval if {
	verified
	count(citations) > 0
}

require_human_approval contains "hallucination_low_confidence" if {
	low_confidence
	not verified_by_retrieval
}

reasons contains "hallucination_output_not_verified" if {
	low_confidence
	not verified
}

reasons contains "hallucination_no_citations" if {
	low_confidence
	verified
	count(citations) == 0
}

reasons contains "hallucination_verified_by_retrieval" if {
	has_output
	verified_by_retrieval
}

reasons contains "hallucination_confidence_sufficient" if {
	has_output
	not low_confidence
}
