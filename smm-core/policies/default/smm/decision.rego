# The aggregate decision: data.smm.decision is always an object
# {allow, deny, warnings, reasons, require_human_approval}; allow is true or
# false, never undefined; deny, warnings and reasons are sorted arrays of
# codes. Every union names only rules its package defines (a partial set
# rule is the empty set when nothing matches, so the unions are defined).
package smm

import rego.v1

deny_codes := (((((((data.smm.consent.deny | data.smm.budget.deny) | data.smm.connector.deny) | data.smm.security.deny) | data.smm.content.deny) | data.smm.emergency.deny) | data.smm.quota.deny) | data.smm.lifecycle.deny)

warning_codes := ((((data.smm.consent.warnings | data.smm.budget.warnings) | data.smm.connector.warnings) | data.smm.security.warnings) | data.smm.quota.warnings)

approval_codes := (((data.smm.budget.require_human_approval | data.smm.content.require_human_approval) | data.smm.hallucination.require_human_approval) | data.smm.emergency.require_human_approval)

# Reasons: what was validated, and why a human must approve.
reason_codes := ((((((data.smm.consent.reasons | data.smm.budget.reasons) | data.smm.connector.reasons) | data.smm.security.reasons) | data.smm.content.reasons) | data.smm.hallucination.reasons) | data.smm.quota.reasons) | approval_codes

default allow := false

allow if count(deny_codes) == 0

decision := {
	"allow": allow,
	"deny": sort(deny_codes),
	"warnings": sort(warning_codes),
	"reasons": sort(reason_codes),
	"require_human_approval": count(approval_codes) > 0,
}
