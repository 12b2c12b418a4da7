# Model-usage quotas, read from the usage ledger's figures
# (input.quotas: [{kind, period, limit, used}]): an exhausted quota denies,
# one at or above the warning ratio warns.
package smm.quota

import rego.v1


quotas := object.get(input, "quotas", [])

deny contains concat("", ["quota_exhausted_", q.kind]) if {
	some q in quotas
	q.used >= q.limit
}

warnings contains concat("", ["quota_approaching_", q.kind]) if {
	some q in quotas
	q.used < q.limit
	q.used >= data.smm.config.quota.warnRatio * q.limit
}

reasons contains "quotas_within_limits" if {
	count(quotas) > 0
	count(deny) == 0
}
