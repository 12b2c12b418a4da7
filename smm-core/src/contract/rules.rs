//! Business rules of a contract that a schema cannot express (the original
//! system's validation rules, digest §1.3). Time is passed in.

use super::model::{ConnectorStatus, Lifecycle, WorkspaceContract};
use super::{Severity, Violation};
use crate::time::Timestamp;

/// Minimum `ttlHours` (stricter than the schema's 1).
pub const MIN_TTL_HOURS: u64 = 24;
/// A connector not connected for this long is flagged (warning).
pub const CONNECTOR_STALE_AFTER_DAYS: i64 = 7;

fn v(out: &mut Vec<Violation>, pointer: &str, rule: &str, severity: Severity, message: String) {
    out.push(Violation {
        pointer: pointer.to_string(),
        rule: format!("rule.{rule}"),
        message,
        severity,
    });
}

fn ts(s: &str) -> Option<Timestamp> {
    Timestamp::parse(s)
}

/// Check every business rule at `now`.
pub(crate) fn check(c: &WorkspaceContract, now: Timestamp, out: &mut Vec<Violation>) {
    use Severity::{Error, Warning};
    let b = &c.budget;
    let bd = &b.breakdown;
    let sum = bd.paid_ads + bd.llm_model_spend + bd.rendering + bd.third_party_services;
    if sum > b.weekly_cap {
        v(
            out,
            "/budget/breakdown",
            "breakdownWithinWeeklyCap",
            Error,
            format!(
                "breakdown items sum to {sum}, above weeklyCap {}",
                b.weekly_cap
            ),
        );
    }
    if b.weekly_cap > b.hard_cap {
        v(
            out,
            "/budget/weeklyCap",
            "weeklyCapWithinHardCap",
            Error,
            format!("weeklyCap {} exceeds hardCap {}", b.weekly_cap, b.hard_cap),
        );
    } else if b.weekly_cap * 4.0 > b.hard_cap {
        v(
            out,
            "/budget/hardCap",
            "budgetSustainable",
            Warning,
            format!(
                "four weeks at weeklyCap ({}) exceed hardCap {}",
                b.weekly_cap * 4.0,
                b.hard_cap
            ),
        );
    }
    if b.hard_cap <= 0.0 {
        v(
            out,
            "/budget/hardCap",
            "positiveCaps",
            Error,
            "hardCap must be greater than 0".into(),
        );
    }
    if b.weekly_cap <= 0.0 {
        v(
            out,
            "/budget/weeklyCap",
            "positiveCaps",
            Error,
            "weeklyCap must be greater than 0".into(),
        );
    }
    if c.lifecycle.is_signed_or_later() && c.signed_by.is_none() {
        v(
            out,
            "/signedBy",
            "signedImpliesSignedBy",
            Error,
            format!(
                "a contract in lifecycle `{}` must record signedBy",
                c.lifecycle.as_str()
            ),
        );
    }
    if let Some(s) = &c.signed_by
        && let (Some(at), Some(created)) = (ts(&s.signed_at), ts(&c.created_at))
        && at < created
    {
        v(
            out,
            "/signedBy/signedAt",
            "signedAfterCreated",
            Error,
            "signedAt is before createdAt".into(),
        );
    }
    if c.lifecycle == Lifecycle::Active {
        match c.effective_from.as_deref().and_then(ts) {
            None => v(
                out,
                "/effectiveFrom",
                "activeImpliesEffective",
                Error,
                "an active contract needs effectiveFrom".into(),
            ),
            Some(from) if from > now => v(
                out,
                "/effectiveFrom",
                "activeImpliesEffective",
                Error,
                "an active contract's effectiveFrom is in the future".into(),
            ),
            Some(_) => {}
        }
        if let Some(to) = c.effective_to.as_deref().and_then(ts)
            && to <= now
        {
            v(
                out,
                "/effectiveTo",
                "activeImpliesEffective",
                Error,
                "an active contract's effectiveTo has passed".into(),
            );
        }
    }
    if let (Some(from), Some(to)) = (
        c.effective_from.as_deref().and_then(ts),
        c.effective_to.as_deref().and_then(ts),
    ) && to <= from
    {
        v(
            out,
            "/effectiveTo",
            "effectiveRange",
            Error,
            "effectiveTo must be after effectiveFrom".into(),
        );
    }
    let connectors = c.connectors.as_deref().unwrap_or(&[]);
    for (i, ch) in c.primary_channels.iter().enumerate() {
        let mut on_platform = connectors.iter().filter(|k| k.platform == *ch);
        match on_platform.find(|k| k.status == ConnectorStatus::Connected) {
            None => v(
                out,
                &format!("/primaryChannels/{i}"),
                "channelHasConnector",
                Error,
                format!(
                    "primary channel {} has no connected connector",
                    platform_name(c, i)
                ),
            ),
            Some(k) => {
                if let Some(last) = k.last_connected_at.as_deref().and_then(ts)
                    && last.plus_seconds(CONNECTOR_STALE_AFTER_DAYS * 86_400) < now
                {
                    let j = connectors
                        .iter()
                        .position(|x| std::ptr::eq(x, k))
                        .unwrap_or(0);
                    v(
                        out,
                        &format!("/connectors/{j}/lastConnectedAt"),
                        "connectorFresh",
                        Warning,
                        format!(
                            "connector {} last connected more than {CONNECTOR_STALE_AFTER_DAYS} days ago",
                            k.connector_id
                        ),
                    );
                }
            }
        }
    }
    for (i, k) in c
        .consent_records
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let (granted, expires) = (ts(&k.granted_at), ts(&k.expires_at));
        if let Some(e) = expires
            && e <= now
        {
            v(
                out,
                &format!("/consentRecords/{i}/expiresAt"),
                "consentUnexpired",
                Error,
                format!("consent {} expired at {}", k.consent_id, k.expires_at),
            );
        }
        if let (Some(g), Some(e)) = (granted, expires)
            && e <= g
        {
            v(
                out,
                &format!("/consentRecords/{i}/expiresAt"),
                "consentRange",
                Error,
                format!("consent {} expires before it was granted", k.consent_id),
            );
        }
        if let Some(g) = granted
            && g > now
        {
            v(
                out,
                &format!("/consentRecords/{i}/grantedAt"),
                "consentGranted",
                Error,
                format!("consent {} is granted in the future", k.consent_id),
            );
        }
    }
    if c.ttl_hours < MIN_TTL_HOURS {
        v(
            out,
            "/ttlHours",
            "minimumTtl",
            Error,
            format!(
                "ttlHours must be at least {MIN_TTL_HOURS} (got {})",
                c.ttl_hours
            ),
        );
    }
    let f = &c.emergency_flags;
    if f.halted && f.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        v(
            out,
            "/emergencyFlags/reason",
            "haltedImpliesReason",
            Error,
            "a halted workspace must give a reason".into(),
        );
    }
    if f.halted && f.halted_at.is_none() {
        v(
            out,
            "/emergencyFlags/haltedAt",
            "haltedImpliesTime",
            Warning,
            "a halted workspace should record haltedAt".into(),
        );
    }
    if c.previous_contract_ref.is_none()
        && c.contract_version != "v1.0.0"
        && c.contract_version != "v0.1.0"
    {
        v(
            out,
            "/previousContractRef",
            "versionChained",
            Warning,
            format!("version {} names no previous version", c.contract_version),
        );
    }
}

fn platform_name(c: &WorkspaceContract, i: usize) -> String {
    c.primary_channels
        .get(i)
        .map_or_else(String::new, |p| p.as_str().to_owned())
}
