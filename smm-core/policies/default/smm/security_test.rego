package smm.security_test

import rego.v1

import data.smm.fixtures

test_clean_workflow if {
	count(data.smm.security.deny) == 0 with input as fixtures.base
	count(data.smm.security.warnings) == 0 with input as fixtures.base
	data.smm.security.reasons == {"data_handling_policies_followed"} with input as fixtures.base
}

test_customer_data_made_public if {
	i := fixtures.steps([fixtures.step("publish", {"includesCustomerData": true, "publicVisibility": true})])
	data.smm.security.deny == {"customer_data_public"} with input as i
	count(data.smm.security.reasons) == 0 with input as i
}

test_customer_data_kept_private if {
	i := fixtures.steps([fixtures.step("research", {"includesCustomerData": true})])
	count(data.smm.security.deny) == 0 with input as i
}

test_personal_data_without_consent if {
	i := fixtures.steps([fixtures.step("research", {"processesPersonalData": true})])
	data.smm.security.deny == {"missing_data_processing_consent"} with input as i
}

test_personal_data_with_consent if {
	dp := {"consentId": "dp", "type": "data_processing", "grantedBy": "legal", "grantedAt": "2025-01-01T00:00:00Z", "expiresAt": "2026-01-01T00:00:00Z"}
	i := object.union(fixtures.steps([fixtures.step("research", {"processesPersonalData": true})]), {"workspace": {"consentRecords": [dp]}})
	count(data.smm.security.deny) == 0 with input as i
}

test_unapproved_external_calls_warn if {
	i := fixtures.steps([fixtures.step("research", {"callsExternalApis": true})])
	data.smm.security.warnings == {"external_api_calls"} with input as i
}

test_approved_external_calls if {
	i := fixtures.steps([fixtures.step("research", {"callsExternalApis": true, "apiCallsApproved": true})])
	count(data.smm.security.warnings) == 0 with input as i
}
