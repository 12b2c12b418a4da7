# Shared helpers of the default bundle. Every optional input field is read
# through object.get with a default, so a missing field never makes a rule
# undefined. Time is input.timestamp: no module reads the clock.
#
# Other packages refer to these rules by their full path (data.smm.lib.x),
# not through `import data.smm.lib`: regorus materializes an imported
# package on every reference, which cost ~10 µs a use. Sets computed once
# per evaluation (rules are cached, functions are not) keep the decision
# fast.
package smm.lib

import rego.v1

now_ns := time.parse_rfc3339_ns(input.timestamp)

day_ns := ((24 * 60) * 60) * 1000000000

workspace := object.get(input, "workspace", {})

steps := object.get(input, "workflow", [])

simulation := object.get(input, "simulation", {})

consents := object.get(workspace, "consentRecords", [])

connectors := object.get(workspace, "connectors", [])

emergency := object.get(workspace, "emergencyFlags", {})

# Names of the boolean flags that at least one step sets to true.
flags_set contains name if {
	some step in steps
	some name, value in step.flags
	value == true
}

# Types of the consent records, and of those still valid at now (a
# consent is valid while now < expiresAt: expired once now >= expiresAt).
consent_types := {c.type | some c in consents}

valid_consents := [c | some c in consents; time.parse_rfc3339_ns(c.expiresAt) > now_ns]

valid_consent_types := {c.type | some c in valid_consents}

# The latest expiry among the valid consents of each type.
latest_expiry := {t: max([time.parse_rfc3339_ns(c.expiresAt) | some c in valid_consents; c.type == t]) | some t in valid_consent_types}
