package smm.connector_test

import rego.v1

import data.smm.fixtures

li(status, last) := {"platform": "linkedin", "connectorId": "c-li", "accountId": "a", "displayName": "LI", "status": status, "lastConnectedAt": last}

x_ok := {"platform": "x", "connectorId": "c-x", "accountId": "b", "displayName": "X", "status": "connected", "lastConnectedAt": "2025-08-31T09:00:00Z"}

recent := "2025-08-31T09:00:00Z"

test_all_required_connectors_available if {
	count(data.smm.connector.deny) == 0 with input as fixtures.base
	count(data.smm.connector.warnings) == 0 with input as fixtures.base
	data.smm.connector.reasons == {"all_required_connectors_available"} with input as fixtures.base
}

test_missing_connector if {
	i := fixtures.ws({"connectors": [li("connected", recent)]})
	data.smm.connector.deny == {"missing_connector_x"} with input as i
	count(data.smm.connector.reasons) == 0 with input as i
}

test_revoked_connector_denies if {
	i := fixtures.ws({"connectors": [li("revoked", recent), x_ok]})
	data.smm.connector.deny == {"connector_revoked_linkedin"} with input as i
}

test_unconnected_connector_denies if {
	i := fixtures.ws({"connectors": [li("unconnected", recent), x_ok]})
	data.smm.connector.deny == {"connector_unhealthy_linkedin"} with input as i
}

test_degraded_connector_warns if {
	i := fixtures.ws({"connectors": [li("degraded", recent), x_ok]})
	count(data.smm.connector.deny) == 0 with input as i
	data.smm.connector.warnings == {"connector_degraded_linkedin"} with input as i
}

test_stale_connection_warns if {
	i := fixtures.ws({"connectors": [li("connected", "2025-08-20T00:00:00Z"), x_ok]})
	data.smm.connector.warnings == {"stale_connection_linkedin"} with input as i
}

test_never_connected_is_stale if {
	never := {"platform": "linkedin", "connectorId": "c-li", "accountId": "a", "displayName": "LI", "status": "connected"}
	i := fixtures.ws({"connectors": [never, x_ok]})
	data.smm.connector.warnings == {"stale_connection_linkedin"} with input as i
}

test_publish_channel_is_required if {
	i := fixtures.steps([fixtures.step("publish", {"channels": ["instagram"]})])
	data.smm.connector.deny == {"missing_connector_instagram"} with input as i
}

test_post_rate_within_limit if {
	i := fixtures.steps([fixtures.step("publish", {"channels": ["linkedin"], "postsPerHour": 5})])
	count(data.smm.connector.deny) == 0 with input as i
}

test_post_rate_above_limit if {
	i := fixtures.steps([fixtures.step("publish", {"channels": ["linkedin", "x"], "postsPerHour": 6})])
	data.smm.connector.deny == {"post_rate_exceeds_limit_linkedin"} with input as i
}
