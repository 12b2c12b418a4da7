# Consent: synthetic voice, user-generated content and celebrity likeness
# each need an unexpired consent record of the matching type; a voice model
# must belong to the person who granted the voice consent.
package smm.consent

import rego.v1

# What each workflow flag requires (by consent type), and the codes it reports.
kinds := {
	"voice_likeness": {
		"flag": "usesSyntheticVoice",
		"missing": "missing_voice_consent", "expired": "expired_voice_consent",
		"expiring": "consent_expiring_soon", "validated": "voice_consent_validated",
	},
	"ugc_license": {
		"flag": "usesUgcContent",
		"missing": "missing_ugc_license", "expired": "expired_ugc_license",
		"expiring": "ugc_consent_expiring_soon", "validated": "ugc_consent_validated",
	},
	"celebrity_release": {
		"flag": "usesCelebrityLikeness",
		"missing": "missing_celebrity_release", "expired": "expired_celebrity_release",
		"expiring": "celebrity_release_expiring_soon", "validated": "celebrity_release_validated",
	},
}

# The consent types the workflow needs.
required contains t if {
	some t, kind in kinds
	kind.flag in data.smm.lib.flags_set
}

# No record of the type at all.
deny contains kinds[t].missing if {
	some t in required
	not t in data.smm.lib.consent_types
}

# Records exist, but every one has expired (reported instead of "missing").
deny contains kinds[t].expired if {
	some t in required
	t in data.smm.lib.consent_types
	not t in data.smm.lib.valid_consent_types
}

# Every valid record expires within the warning window.
warnings contains kinds[t].expiring if {
	some t in required
	data.smm.lib.latest_expiry[t] <= expiring_before
}

expiring_before := data.smm.lib.now_ns + (data.smm.config.consentExpiringSoonDays * data.smm.lib.day_ns)

reasons contains kinds[t].validated if {
	some t in required
	t in data.smm.lib.valid_consent_types
}

# Who granted a valid voice consent.
voice_grantors contains c.grantedBy if {
	some c in data.smm.lib.valid_consents
	c.type == "voice_likeness"
}

# A voice model named "<grantedBy>-<anything>" (e.g. "user-123-voice-v1"
# for a consent granted by "user-123") is covered by that person's valid
# voice consent; any other model is outside the consent's scope.
covered_models contains model if {
	some step in data.smm.lib.steps
	model := step.flags.voiceModel
	some grantor in voice_grantors
	startswith(model, concat("", [grantor, "-"]))
}

# (object.get, not a plain reference: regorus's VM does not stop a body at
# an undefined assignment that a negation follows.)
deny contains "invalid_consent_scope" if {
	some step in data.smm.lib.steps
	model := object.get(step, ["flags", "voiceModel"], "")
	model != ""
	not model in covered_models
}
