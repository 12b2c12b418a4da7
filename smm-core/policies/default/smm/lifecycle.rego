# Lifecycle: only a signed, provisioning or active contract runs; a paused
# workspace denies everything; the contract must be in its effective window
# and the workspace within its time to live.
package smm.lifecycle

import rego.v1


state := object.get(data.smm.lib.workspace, "lifecycle", "draft")

deny contains "workspace_paused" if state == "paused"

deny contains "lifecycle_not_runnable" if {
	state != "paused"
	not state in data.smm.config.runnableLifecycles
}

deny contains "contract_not_yet_effective" if {
	time.parse_rfc3339_ns(data.smm.lib.workspace.effectiveFrom) > data.smm.lib.now_ns
}

deny contains "contract_expired" if {
	time.parse_rfc3339_ns(data.smm.lib.workspace.effectiveTo) <= data.smm.lib.now_ns
}

deny contains "workspace_expired" if {
	ttl_ns := ((data.smm.lib.workspace.ttlHours * 60) * 60) * 1000000000
	time.parse_rfc3339_ns(data.smm.lib.workspace.createdAt) + ttl_ns <= data.smm.lib.now_ns
}
