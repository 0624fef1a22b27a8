//! `X-Twilio-Signature`: HMAC-SHA1 over the URL followed by every POST parameter, sorted by
//! name (and values of a repeated name sorted too), then base64 — as Twilio's helper
//! libraries compute it, including their tolerance of an explicit or missing default port.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use url::Url;

/// The signature Twilio sends for `url` and `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is valid for `url` as written, with its default port removed, or
/// with it added (Twilio signs whichever form the number's webhook URL was saved in).
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let candidates = url_variants(url);
    candidates.iter().any(|u| {
        let expected = sign(auth_token, u, params);
        bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes()))
    })
}

fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Ok(parsed) = Url::parse(url) else {
        return out;
    };
    let Some(default) = parsed.port_or_known_default() else {
        return out;
    };
    // `Url` drops a port equal to the scheme's default, so rebuild both forms by hand.
    let host = parsed.host_str().unwrap_or_default();
    let after_host = &url[url.find(host).map_or(0, |i| i + host.len())..];
    let rest = after_host
        .strip_prefix(':')
        .map(|p| p.trim_start_matches(|c: char| c.is_ascii_digit()))
        .unwrap_or(after_host);
    let explicit_port = parsed.port();
    let prefix = &url[..url.find(host).map_or(0, |i| i + host.len())];
    if explicit_port.is_none() && after_host.starts_with(':') {
        // The URL spelled out the default port: also try without it.
        out.push(format!("{prefix}{rest}"));
    } else if explicit_port.is_none() {
        out.push(format!("{prefix}:{default}{rest}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[test]
    fn matches_twilio_helper_library_vectors() {
        assert_eq!(
            sign("12345", URL, &params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            sign(
                "12345",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &params()
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
    }

    #[test]
    fn accepts_the_url_with_or_without_the_default_port() {
        let p = params();
        assert!(verify("12345", URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(verify("12345", URL, &p, "kvajT1Ptam85bY51eRf/AJRuM3w="));
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(verify(
            "12345",
            with_port,
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(verify(
            "12345",
            with_port,
            &p,
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        let http = "http://mycompany.com/myapp.php?foo=1&bar=2";
        let sig80 = sign("12345", "http://mycompany.com:80/myapp.php?foo=1&bar=2", &p);
        assert!(verify("12345", http, &p, &sig80));
    }

    #[test]
    fn rejects_tampering() {
        let mut p = params();
        assert!(!verify("12345", URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8X"));
        assert!(!verify("wrong", URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify(
            "12345",
            "https://mycompany.com/other.php?foo=1&bar=2",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        p[2].1 = "9999".into();
        assert!(!verify("12345", URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify("12345", URL, &params(), ""));
    }

    #[test]
    fn repeated_parameters_are_all_signed_in_order() {
        let a = vec![
            ("MediaUrl".to_string(), "b".to_string()),
            ("MediaUrl".to_string(), "a".to_string()),
        ];
        let b = vec![
            ("MediaUrl".to_string(), "a".to_string()),
            ("MediaUrl".to_string(), "b".to_string()),
        ];
        assert_eq!(
            sign("t", "https://x.io/", &a),
            sign("t", "https://x.io/", &b)
        );
        assert_ne!(
            sign("t", "https://x.io/", &a),
            sign("t", "https://x.io/", &a[..1])
        );
    }
}
