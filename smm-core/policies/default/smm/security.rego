# Security: customer data never goes public, personal data needs an
# unexpired data-processing consent, external API calls need approval.
package smm.security

import rego.v1

deny contains "customer_data_public" if {
	some step in data.smm.lib.steps
	step.flags.includesCustomerData == true
	step.flags.publicVisibility == true
}

deny contains "missing_data_processing_consent" if {
	"processesPersonalData" in data.smm.lib.flags_set
	not "data_processing" in data.smm.lib.valid_consent_types
}

warnings contains "external_api_calls" if {
	some step in data.smm.lib.steps
	step.flags.callsExternalApis == true
	object.get(step.flags, "apiCallsApproved", false) != true
}

reasons contains "data_handling_policies_followed" if count(deny) == 0
