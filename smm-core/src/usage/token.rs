//! Agent authorization: agents act with short-lived scoped tokens (the
//! design: policies `agent-<type>-<workspace>`, at most two hours).
//! Introspection is the host's (Vault `auth/token/lookup`, a JWT
//! verifier, ...); the library checks the claims.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::UsageError;
use super::records::AgentType;
use crate::time::Timestamp;

/// Longest lifetime of an agent token: two hours.
pub const MAX_AGENT_TOKEN_SECONDS: i64 = crate::limits::MAX_AGENT_TOKEN_SECONDS as i64;

/// What the host's introspection says about a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentTokenClaims {
    /// The token's policies (Vault), or scopes.
    pub policies: Vec<String>,
    /// When it was issued (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub issued_at: String,
    /// When it expires (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// Whether it can be renewed (agent tokens must not be).
    #[serde(default)]
    pub renewable: bool,
}

/// The host's token introspection (e.g. backed by Vault).
pub trait TokenIntrospector: Send + Sync {
    /// The claims of a token, or an error message.
    fn introspect(&self, token: &str) -> Result<AgentTokenClaims, String>;
}

/// Check that `claims` let an agent of `agent_type` act for `workspace_id`
/// at `now`: the scope policy `agent-<type>-<workspace>` is present, the
/// token was issued before `now` and has not expired, it lives at most two
/// hours, and it is not renewable. The error says which check failed.
pub fn check_agent_token(
    claims: &AgentTokenClaims,
    workspace_id: &str,
    agent_type: AgentType,
    now: Timestamp,
) -> Result<(), UsageError> {
    let refuse = |reason: String| Err(UsageError::TokenRejected { reason });
    let t = |s: &str, what: &str| {
        Timestamp::parse(s).ok_or_else(|| UsageError::InvalidInput {
            pointer: format!("/{what}"),
            message: format!("{s:?} is not RFC 3339"),
        })
    };
    let now_t = now;
    let issued = t(&claims.issued_at, "issuedAt")?;
    let expires = t(&claims.expires_at, "expiresAt")?;
    let scope = format!("agent-{}-{workspace_id}", agent_type.as_str());
    if !claims.policies.contains(&scope) {
        return refuse(format!(
            "the token's policies {:?} do not include {scope:?}",
            claims.policies
        ));
    }
    if claims.renewable {
        return refuse("agent tokens must not be renewable".into());
    }
    if expires <= issued {
        return refuse("the token expires before it is issued".into());
    }
    let lifetime = expires.seconds - issued.seconds;
    if lifetime > MAX_AGENT_TOKEN_SECONDS {
        return refuse(format!(
            "the token lives {lifetime} s, more than the {MAX_AGENT_TOKEN_SECONDS} s an agent token may"
        ));
    }
    if now_t < issued {
        return refuse(format!(
            "the token is issued in the future ({})",
            claims.issued_at
        ));
    }
    if now_t >= expires {
        return refuse(format!("the token expired at {}", claims.expires_at));
    }
    Ok(())
}

/// Introspect `token` through the host and check its claims.
pub fn authorize_agent(
    introspector: &dyn TokenIntrospector,
    token: &str,
    workspace_id: &str,
    agent_type: AgentType,
    now: Timestamp,
) -> Result<AgentTokenClaims, UsageError> {
    let claims = introspector
        .introspect(token)
        .map_err(|message| UsageError::Introspection { message })?;
    check_agent_token(&claims, workspace_id, agent_type, now)?;
    Ok(claims)
}
