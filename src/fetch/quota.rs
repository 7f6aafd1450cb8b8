//! The account's allowances, read from `GET /users/{id}/overall_quotas`, where `{id}` may be
//! the API key itself (VirusTotal API v3 reference, "Get a user's overall quotas").
//!
//! Quotas have three limits, per minute, per day and per month; daily ones reset at 00:00 UTC
//! and monthly ones at 00:00 UTC on the 1st (docs.virustotal.com, "How consumption quotas are
//! handled"). The endpoint reports hourly, daily and monthly request quotas.

use serde::{Deserialize, Serialize};

use reqwest::header::HeaderValue;

use super::ApiKey;
use super::client::{ClientSettings, error_chain};
use super::tls;

/// One quota as the API reports it: for the user, and for the group the key belongs to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct QuotaUse {
    pub user: Option<Allowance>,
    pub group: Option<Allowance>,
}

/// Requests allowed and used in the current period.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Allowance {
    pub allowed: Option<u64>,
    pub used: Option<u64>,
}

impl Allowance {
    /// Requests left in the period, when both numbers are known.
    pub fn remaining(&self) -> Option<u64> {
        Some(self.allowed?.saturating_sub(self.used?))
    }
}

/// The API request quotas of the account.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct AccountQuotas {
    #[serde(default)]
    pub api_requests_hourly: QuotaUse,
    #[serde(default)]
    pub api_requests_daily: QuotaUse,
    #[serde(default)]
    pub api_requests_monthly: QuotaUse,
}

#[derive(Deserialize)]
struct Envelope {
    data: AccountQuotas,
}

/// Failure to read the quotas, with the HTTP status when there was one.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("cannot reach the API: {0}")]
    Transport(String),
    #[error("the API answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the quota answer is not the expected JSON: {0}")]
    Parse(String),
}

/// Reads the account's quotas. The key travels in the `x-apikey` header as for every request.
/// The path's `{id}` is `settings.user_id`, or else the key itself, which the API accepts.
/// The key then shows in the request line, so that URL is never logged or put in an error.
pub async fn fetch_account_quotas(
    settings: &ClientSettings,
    key: &ApiKey,
) -> Result<AccountQuotas, QuotaError> {
    let http = tls::client_builder(settings)
        .timeout(settings.connect_timeout + settings.read_timeout)
        .build()
        .map_err(|err| QuotaError::Transport(error_chain(&err)))?;

    let mut key_header = HeaderValue::from_str(key.expose()).map_err(|_| {
        QuotaError::Transport(
            "the API key contains characters not allowed in an HTTP header".into(),
        )
    })?;
    key_header.set_sensitive(true);

    // TODO: without --user-id the key is the path's ID, so a proxy that logs URLs records it.
    // VirusTotal documents no endpoint that returns the user ID from the x-apikey header.
    let url = quota_url(
        &settings.api_url,
        settings.user_id.as_deref().unwrap_or(key.expose()),
    )?;
    if settings.user_id.is_none() {
        tracing::debug!("no --user-id: the API key is the user ID in the quota request's path");
    }
    let response = http
        .get(url)
        .header("x-apikey", key_header)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|err| QuotaError::Transport(error_chain(&err)))?;

    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|err| QuotaError::Transport(error_chain(&err)))?;
    if status != 200 {
        let text =
            String::from_utf8_lossy(&body[..body.len().min(300)]).replace(key.expose(), "<key>");
        return Err(QuotaError::Status { status, body: text });
    }

    serde_json::from_slice::<Envelope>(&body)
        .map(|envelope| envelope.data)
        .map_err(|err| QuotaError::Parse(err.to_string()))
}

/// Builds `{api_url}/users/{id}/overall_quotas`, with `id` percent-encoded as one segment.
fn quota_url(api_url: &str, id: &str) -> Result<reqwest::Url, QuotaError> {
    // The root was validated as a URL with a path when the settings were read.
    let mut url = reqwest::Url::parse(api_url)
        .map_err(|err| QuotaError::Transport(format!("invalid API root `{api_url}`: {err}")))?;
    url.path_segments_mut()
        .map_err(|()| {
            QuotaError::Transport(format!("the API root `{api_url}` cannot take a path"))
        })?
        .pop_if_empty()
        .extend(["users", id, "overall_quotas"]);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_answer_parses_user_and_group() {
        let body = br#"{"data": {
            "api_requests_daily": {"user": {"allowed": 500, "used": 120}, "group": {"allowed": 10000, "used": 4000}},
            "api_requests_monthly": {"user": {"allowed": 15500, "used": 3000}},
            "intelligence_searches_monthly": {"user": {"allowed": 0, "used": 0}}
        }}"#;
        let quotas = serde_json::from_slice::<Envelope>(body).unwrap().data;
        let daily = quotas.api_requests_daily.user.unwrap();
        assert_eq!(daily.remaining(), Some(380));
        assert_eq!(
            quotas.api_requests_daily.group.unwrap().allowed,
            Some(10_000)
        );
        assert_eq!(
            quotas.api_requests_monthly.user.unwrap().remaining(),
            Some(12_500)
        );
        assert_eq!(quotas.api_requests_hourly, QuotaUse::default());
    }

    #[test]
    fn quota_url_encodes_the_id_as_one_segment() {
        let url = quota_url("http://127.0.0.1:9/api/v3", "svc+ops@example.invalid/x").unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/api/v3/users/svc+ops@example.invalid%2Fx/overall_quotas"
        );
    }

    #[test]
    fn used_beyond_allowed_leaves_nothing() {
        let allowance = Allowance {
            allowed: Some(10),
            used: Some(12),
        };
        assert_eq!(allowance.remaining(), Some(0));
    }
}
