//! The Twilio part of the settings: live credentials (`TWILIO_*`), each SID checked for its
//! shape at start, or the simulator when none are set.

use std::fmt;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, bad, parse_base_url};

/// Credentials for the real Twilio.
#[derive(Clone)]
pub struct TwilioLive {
    pub account_sid: String,
    pub auth_token: SecretString,
    pub api_base: Url,
    pub messaging_service_sid: Option<String>,
}

impl fmt::Debug for TwilioLive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioLive")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"***")
            .field("api_base", &self.api_base.as_str())
            .field("messaging_service_sid", &self.messaging_service_sid)
            .finish()
    }
}

/// Live Twilio, or the in-process simulator when no credentials are set.
#[derive(Clone, Debug)]
pub enum TwilioMode {
    Live(TwilioLive),
    Simulated,
}

impl TwilioMode {
    /// Reads the `TWILIO_*` variables through `get` (trimmed, empty ones unset).
    pub(super) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (account_sid, token) = match (get("TWILIO_ACCOUNT_SID"), get("TWILIO_AUTH_TOKEN")) {
            (None, None) => return Ok(Self::Simulated),
            (Some(_), None) => {
                return Err(bad(
                    "TWILIO_AUTH_TOKEN",
                    "TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is not: set both for live mode, or neither for the simulator",
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "TWILIO_ACCOUNT_SID",
                    "TWILIO_AUTH_TOKEN is set but TWILIO_ACCOUNT_SID is not: set both for live mode, or neither for the simulator",
                ));
            }
            (Some(account_sid), Some(token)) => (account_sid, token),
        };
        let account_sid = sid(
            "TWILIO_ACCOUNT_SID",
            account_sid,
            "AC",
            "an account SID (the Twilio console's home page shows it)",
        )?;
        let api_base = parse_base_url(
            "TWILIO_API_BASE",
            &get("TWILIO_API_BASE").unwrap_or_else(|| "https://api.twilio.com".into()),
        )?;
        let messaging_service_sid = get("TWILIO_MESSAGING_SERVICE_SID")
            .map(|raw| {
                sid(
                    "TWILIO_MESSAGING_SERVICE_SID",
                    raw,
                    "MG",
                    "a messaging service SID (Messaging > Services in the Twilio console)",
                )
            })
            .transpose()?;
        Ok(Self::Live(TwilioLive {
            account_sid,
            auth_token: SecretString::from(token),
            api_base,
            messaging_service_sid,
        }))
    }
}

/// `raw` if it has the shape of a Twilio SID: `prefix` and 32 hexadecimal digits. Twilio
/// refuses any other on every send, long after the start.
fn sid(var: &'static str, raw: String, prefix: &str, what: &str) -> Result<String, ConfigError> {
    let digits = raw.strip_prefix(prefix).unwrap_or_default();
    if digits.len() == 32 && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(raw);
    }
    Err(bad(
        var,
        format!("`{raw}` is not {what}: {prefix} and 32 hexadecimal digits"),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789ABCDEF";
    const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

    fn mode(pairs: &[(&str, &str)]) -> Result<TwilioMode, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        TwilioMode::from_lookup(|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn one_credential_alone_is_refused() {
        let err = mode(&[("TWILIO_ACCOUNT_SID", ACCOUNT)]).unwrap_err();
        assert_eq!(err.var, "TWILIO_AUTH_TOKEN");
        let err = mode(&[("TWILIO_AUTH_TOKEN", "x")]).unwrap_err();
        assert_eq!(err.var, "TWILIO_ACCOUNT_SID");
        assert!(matches!(mode(&[]), Ok(TwilioMode::Simulated)));
    }

    #[test]
    fn sids_have_their_shape() {
        let live = |account: &str, service: Option<&str>| {
            let mut pairs = vec![("TWILIO_ACCOUNT_SID", account), ("TWILIO_AUTH_TOKEN", "t")];
            pairs.extend(service.map(|s| ("TWILIO_MESSAGING_SERVICE_SID", s)));
            mode(&pairs)
        };
        let Ok(TwilioMode::Live(ok)) = live(ACCOUNT, Some(SERVICE)) else {
            panic!("well-formed SIDs are refused");
        };
        assert_eq!(ok.account_sid, ACCOUNT);
        assert_eq!(ok.messaging_service_sid.as_deref(), Some(SERVICE));
        assert!(live(ACCOUNT, None).is_ok());
        for (account, service, var) in [
            ("ACnotvalid", None, "TWILIO_ACCOUNT_SID"),
            (SERVICE, None, "TWILIO_ACCOUNT_SID"),
            (
                "AC0123456789abcdef0123456789abcdeg",
                None,
                "TWILIO_ACCOUNT_SID",
            ),
            (
                "AC0123456789abcdef0123456789abcdef0",
                None,
                "TWILIO_ACCOUNT_SID",
            ),
            (ACCOUNT, Some("MG123"), "TWILIO_MESSAGING_SERVICE_SID"),
            (ACCOUNT, Some(ACCOUNT), "TWILIO_MESSAGING_SERVICE_SID"),
        ] {
            let err = live(account, service).unwrap_err();
            assert_eq!(err.var, var, "{account} {service:?}");
            assert!(err.to_string().contains("32 hexadecimal digits"), "{err}");
        }
    }

    #[test]
    fn the_auth_token_is_never_shown() {
        let live = mode(&[
            ("TWILIO_ACCOUNT_SID", ACCOUNT),
            ("TWILIO_AUTH_TOKEN", "topsecret"),
        ]);
        assert!(!format!("{:?}", live.unwrap()).contains("topsecret"));
    }
}
