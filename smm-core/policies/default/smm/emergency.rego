# Emergency switches: a halted workspace denies everything; the
# humanApprovalRequired switch puts a human in front of every action.
package smm.emergency

import rego.v1


deny contains "workspace_halted" if data.smm.lib.emergency.halted == true

require_human_approval contains "emergency_human_approval_required" if {
	data.smm.lib.emergency.humanApprovalRequired == true
}
