# Connectors: every required channel (the workspace's primary channels and
# the channels of its publish steps) needs a connector; a revoked or
# unconnected connector on a required channel denies, a degraded or stale
# one warns. Publish steps must stay within each platform's posting rate.
package smm.connector

import rego.v1

publish_channels contains ch if {
	some step in data.smm.lib.steps
	step.type == "publish"
	some ch in step.flags.channels
}

required_channels := {ch | some ch in object.get(data.smm.lib.workspace, "primaryChannels", [])} | publish_channels

platforms := {c.platform | some c in data.smm.lib.connectors}

# The connectors of required channels.
required_connectors := [c | some c in data.smm.lib.connectors; c.platform in required_channels]

# A connection made before this is stale.
stale_before := data.smm.lib.now_ns - (data.smm.config.connectorStaleAfterDays * data.smm.lib.day_ns)

deny contains concat("", ["missing_connector_", ch]) if {
	some ch in required_channels
	not ch in platforms
}

deny contains concat("", ["connector_revoked_", c.platform]) if {
	some c in required_connectors
	c.status == "revoked"
}

deny contains concat("", ["connector_unhealthy_", c.platform]) if {
	some c in required_connectors
	c.status == "unconnected"
}

warnings contains concat("", ["connector_degraded_", c.platform]) if {
	some c in required_connectors
	c.status == "degraded"
}

# A connection older than the staleness window (or never made).
warnings contains concat("", ["stale_connection_", c.platform]) if {
	some c in required_connectors
	c.status in {"connected", "degraded"}
	last := object.get(c, "lastConnectedAt", "1970-01-01T00:00:00Z")
	time.parse_rfc3339_ns(last) < stale_before
}

deny contains concat("", ["post_rate_exceeds_limit_", ch]) if {
	some step in data.smm.lib.steps
	step.type == "publish"
	rate := object.get(step, ["flags", "postsPerHour"], 0)
	some ch in step.flags.channels
	rate > object.get(data.smm.config.postsPerHourLimits, ch, 10)
}

reasons contains "all_required_connectors_available" if count(deny) == 0
