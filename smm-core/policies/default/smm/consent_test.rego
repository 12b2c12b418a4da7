package smm.consent_test

import rego.v1

import data.smm.fixtures

voice := fixtures.step("creative", {"usesSyntheticVoice": true})

test_voice_consent_validated if {
	reasons := data.smm.consent.reasons with input as fixtures.steps([voice])
	"voice_consent_validated" in reasons
	count(data.smm.consent.deny) == 0 with input as fixtures.steps([voice])
}

test_missing_voice_consent if {
	i := object.union(fixtures.steps([voice]), {"workspace": {"consentRecords": []}})
	deny := data.smm.consent.deny with input as i
	deny == {"missing_voice_consent"}
}

test_expired_voice_consent_is_not_also_missing if {
	expired := [{"consentId": "c", "type": "voice_likeness", "grantedBy": "user-123", "grantedAt": "2024-01-01T00:00:00Z", "expiresAt": "2025-09-01T12:00:00Z"}]
	i := object.union(fixtures.steps([voice]), {"workspace": {"consentRecords": expired}})
	deny := data.smm.consent.deny with input as i
	deny == {"expired_voice_consent"}
}

test_voice_consent_expiring_soon if {
	soon := [{"consentId": "c", "type": "voice_likeness", "grantedBy": "user-123", "grantedAt": "2024-01-01T00:00:00Z", "expiresAt": "2025-09-20T00:00:00Z"}]
	i := object.union(fixtures.steps([voice]), {"workspace": {"consentRecords": soon}})
	"consent_expiring_soon" in data.smm.consent.warnings with input as i
	count(data.smm.consent.deny) == 0 with input as i
}

test_no_expiry_warning_far_ahead if {
	count(data.smm.consent.warnings) == 0 with input as fixtures.steps([voice])
}

test_ugc_and_celebrity_need_their_consents if {
	i := fixtures.steps([fixtures.step("creative", {"usesUgcContent": true, "usesCelebrityLikeness": true})])
	deny := data.smm.consent.deny with input as i
	deny == {"missing_ugc_license", "missing_celebrity_release"}
}

test_ugc_license_validated if {
	ugc := {"consentId": "u", "type": "ugc_license", "grantedBy": "creator-9", "grantedAt": "2025-01-01T00:00:00Z", "expiresAt": "2026-01-01T00:00:00Z"}
	i := object.union(fixtures.steps([fixtures.step("creative", {"usesUgcContent": true})]), {"workspace": {"consentRecords": [ugc]}})
	"ugc_consent_validated" in data.smm.consent.reasons with input as i
	count(data.smm.consent.deny) == 0 with input as i
}

test_no_requirement_no_consent_codes if {
	i := object.union(fixtures.base, {"workspace": {"consentRecords": []}})
	count(data.smm.consent.deny) == 0 with input as i
	count(data.smm.consent.reasons) == 0 with input as i
}

# The documented happy path: model "user-123-voice-v1" of a consent granted by "user-123".
test_voice_model_of_the_consenting_person if {
	i := fixtures.steps([fixtures.step("creative", {"usesSyntheticVoice": true, "voiceModel": "user-123-voice-v1"})])
	count(data.smm.consent.deny) == 0 with input as i
}

test_voice_model_of_someone_else if {
	i := fixtures.steps([fixtures.step("creative", {"usesSyntheticVoice": true, "voiceModel": "user-456-voice-v1"})])
	data.smm.consent.deny == {"invalid_consent_scope"} with input as i
}

test_voice_model_needs_a_valid_consent if {
	expired := [{"consentId": "c", "type": "voice_likeness", "grantedBy": "user-123", "grantedAt": "2024-01-01T00:00:00Z", "expiresAt": "2025-01-01T00:00:00Z"}]
	i := object.union(fixtures.steps([fixtures.step("creative", {"voiceModel": "user-123-voice-v1"})]), {"workspace": {"consentRecords": expired}})
	data.smm.consent.deny == {"invalid_consent_scope"} with input as i
}
