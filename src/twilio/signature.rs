//! `X-Twilio-Signature`: HMAC-SHA1 over the URL followed by every POST parameter, sorted by
//! name (and values of a repeated name sorted too), then base64 — as Twilio's helper
//! libraries compute it and accept it: over the URL as written, without its port, or with
//! the default port.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The signature Twilio sends for `url` and `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(
        mac(auth_token, url, &sorted(params))
            .finalize()
            .into_bytes(),
    )
}

/// Whether `signature` is valid for `url` as written, with its port removed (any port:
/// Twilio drops the port of some https callbacks), or with the scheme's default port added
/// when it has none — the URLs Twilio's helper libraries accept. The other URLs are only
/// built when the one as written does not match.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let sorted = sorted(params);
    // `verify_slice` compares in constant time.
    let matches = |u: &str| mac(auth_token, u, &sorted).verify_slice(&given).is_ok();
    matches(url) || url_variants(url)[1..].iter().any(|u| matches(u.as_str()))
}

/// The parameters sorted by name, then value, as Twilio signs them.
fn sorted(params: &[(String, String)]) -> Vec<&(String, String)> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_unstable();
    sorted
}

fn mac(auth_token: &str, url: &str, sorted: &[&(String, String)]) -> Hmac<Sha1> {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// `url`, then without its port, then with the default port; rebuilt from the string
/// itself, since a parsed and reserialised URL may be encoded differently from what Twilio
/// signed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return out,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The port follows the last `:` that is after any userinfo and outside IPv6 brackets.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let port_at = host_port
        .rfind(':')
        .filter(|&i| !host_port[i..].contains(']'))
        .filter(|&i| host_port[i + 1..].bytes().all(|b| b.is_ascii_digit()));
    let head = &authority[..host_start];
    match port_at {
        Some(i) => out.push(format!("{scheme}://{head}{}{tail}", &host_port[..i])),
        None => out.push(format!("{scheme}://{authority}:{default_port}{tail}")),
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

    /// twilio-python's `tests/unit/test_request_validator.py`: the same token, URL and
    /// parameters as above, with a port in the URL.
    #[test]
    fn accepts_twilio_python_vectors_for_urls_with_ports() {
        let p = params();
        // test_validation_removes_port_on_https: signed without the port.
        assert!(verify(
            "12345",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // test_validation_removes_port_on_http: signed over the URL with its port.
        assert!(verify(
            "12345",
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
        // test_validation_adds_port_on_https / _on_http: signed with the default port.
        assert!(verify("12345", URL, &p, "kvajT1Ptam85bY51eRf/AJRuM3w="));
        assert!(verify(
            "12345",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &p,
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
        // A port other than the configured one is still another URL.
        let other_port = sign(
            "12345",
            "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
            &p,
        );
        assert!(!verify(
            "12345",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p,
            &other_port
        ));
    }

    #[test]
    fn url_variants_touch_only_the_port() {
        assert_eq!(
            url_variants("https://h.io:8443/a:1/b?c=d:2"),
            ["https://h.io:8443/a:1/b?c=d:2", "https://h.io/a:1/b?c=d:2"]
        );
        assert_eq!(
            url_variants("https://h.io?x=1"),
            ["https://h.io?x=1", "https://h.io:443?x=1"]
        );
        assert_eq!(
            url_variants("http://u:p@[::1]:8080/x"),
            ["http://u:p@[::1]:8080/x", "http://u:p@[::1]/x"]
        );
        assert_eq!(
            url_variants("http://[::1]/x"),
            ["http://[::1]/x", "http://[::1]:80/x"]
        );
        assert_eq!(url_variants("not a url"), ["not a url"]);
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
