//! MMS media: which content types are stored and how each is served (inert: only plain
//! image, audio and video types inline), and the fetcher behind the media proxy, which must
//! never become a way to reach what only this server can reach (SSRF).
//!
//! Live mode fetches only from Twilio's hosts and `TWILIO_API_BASE`'s origin. Simulator mode
//! (media URLs typed by an agent) fetches only from public addresses: names are resolved by
//! a resolver that drops every non-public address, so the address checked is the one
//! connected to, and IP-literal hosts, which never reach a resolver, are checked here. Every
//! redirect goes through the same check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mime::Mime;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use secrecy::{ExposeSecret, SecretString};
use url::{Host, Origin, Url};

/// Where Twilio fetches the pictures we send: `PUBLIC_URL` + this + a link's token.
pub const MEDIA_LINK_PATH: &str = "/media/out/";

/// The type stored and served when a content type is missing or not a valid one.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Image, audio and video types that browsers only ever render as media: nothing in them
/// can run script. SVG and everything else is served as an attachment.
const INLINE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/avif",
    "image/heic",
    "image/heif",
    "audio/mpeg",
    "audio/mp3",
    "audio/mp4",
    "audio/aac",
    "audio/ogg",
    "audio/opus",
    "audio/wav",
    "audio/x-wav",
    "audio/webm",
    "audio/amr",
    "audio/3gpp",
    "video/mp4",
    "video/mpeg",
    "video/ogg",
    "video/webm",
    "video/quicktime",
    "video/3gpp",
    "video/3gpp2",
];

/// Twilio's media URLs redirect to these hosts (https only).
const TWILIO_MEDIA_HOSTS: &[&str] = &["api.twilio.com", "s3-external-1.amazonaws.com"];
const TWILIO_MEDIA_DOMAIN: &str = ".twiliocdn.com";

const MAX_REDIRECTS: usize = 5;

/// `raw` as a plain `type/subtype` (lowercase, parameters dropped), if it is a valid,
/// concrete content type.
pub fn normalize_content_type(raw: &str) -> Option<String> {
    if raw.len() > 255 {
        return None;
    }
    let parsed: Mime = raw.trim().parse().ok()?;
    if parsed.type_() == mime::STAR || parsed.subtype() == mime::STAR {
        return None;
    }
    Some(parsed.essence_str().to_ascii_lowercase())
}

/// How one media item is served.
#[derive(Debug, PartialEq, Eq)]
pub struct Presentation {
    pub content_type: String,
    pub disposition: String,
}

/// Inline for the known-safe media types; anything else is a download served as
/// `application/octet-stream`, so that not even a `<script>` or `<link>` on our own origin
/// could use it (`nosniff` refuses those types there).
pub fn presentation(content_type: &str, filename_stem: &str) -> Presentation {
    if INLINE_TYPES.contains(&content_type) {
        return Presentation {
            content_type: content_type.to_owned(),
            disposition: "inline".to_owned(),
        };
    }
    let extension = match content_type {
        "application/pdf" => "pdf",
        "text/vcard" | "text/x-vcard" | "text/directory" => "vcf",
        "text/calendar" => "ics",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "application/zip" => "zip",
        _ => "bin",
    };
    let stem: String = filename_stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Presentation {
        content_type: OCTET_STREAM.to_owned(),
        disposition: format!("attachment; filename=\"{stem}.{extension}\""),
    }
}

/// Where media may be fetched from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaPolicy {
    /// Live mode: Twilio's media hosts and the API's own origin.
    Twilio,
    /// Simulator mode: any public address.
    PublicAddresses,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("refused to fetch media: {0}")]
    Refused(String),
    #[error("media answered {0}")]
    Upstream(u16),
    #[error("media could not be fetched: {0}")]
    Fetch(String),
}

/// The check every URL (the first and each redirect) must pass.
struct Rule {
    policy: MediaPolicy,
    api: Origin,
}

impl Rule {
    fn check(&self, url: &Url) -> Result<(), MediaError> {
        let refused = |why: &str| {
            Err(MediaError::Refused(format!(
                "{why}: {}",
                url.origin().ascii_serialization()
            )))
        };
        if !matches!(url.scheme(), "http" | "https") {
            return refused("not http(s)");
        }
        match self.policy {
            MediaPolicy::Twilio => {
                if url.origin() == self.api {
                    return Ok(());
                }
                let twilio_host = url.scheme() == "https"
                    && matches!(url.host(), Some(Host::Domain(d))
                        if TWILIO_MEDIA_HOSTS.contains(&d) || d.ends_with(TWILIO_MEDIA_DOMAIN));
                if twilio_host {
                    Ok(())
                } else {
                    refused("not a Twilio media host")
                }
            }
            MediaPolicy::PublicAddresses => match url.host() {
                Some(Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
                    refused("not a public address")
                }
                Some(Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
                    refused("not a public address")
                }
                Some(_) => Ok(()),
                None => refused("no host"),
            },
        }
    }
}

/// Whether `ip` is a global unicast address: not loopback, private, shared, link-local,
/// documentation, benchmarking, multicast, reserved or unspecified, including such IPv4
/// addresses inside IPv6 (mapped, compatible, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address; 6to4 (2002::/16) too.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    // Global unicast is 2000::/3; inside it: Teredo, ORCHID, documentation.
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && s[1] == 0)
        && !(s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010)
        && !(s[0] == 0x2001 && s[1] == 0x0db8)
        && !(s[0] == 0x3fff && s[1] < 0x1000)
}

/// A resolver that keeps only public addresses, so that a name pointing inside is refused
/// at connect time, whatever it resolved to when the URL was checked.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(MediaError::Refused(format!("{host} has no public address")).into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Fetches media under a [`MediaPolicy`], with the account's credentials for the API's own
/// origin only (reqwest drops them on a redirect to another host).
#[derive(Clone)]
pub struct MediaFetcher {
    http: reqwest::Client,
    rule: Arc<Rule>,
    account_sid: String,
    auth_token: SecretString,
}

impl MediaFetcher {
    pub fn new(
        policy: MediaPolicy,
        api_base: &Url,
        account_sid: &str,
        auth_token: SecretString,
    ) -> Self {
        let rule = Arc::new(Rule {
            policy,
            api: api_base.origin(),
        });
        let on_redirect = rule.clone();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("smsdesk/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(MediaError::Fetch("too many redirects".into()));
                }
                match on_redirect.check(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }));
        if policy == MediaPolicy::PublicAddresses {
            // A proxy would resolve and connect on our behalf, past the resolver's check.
            builder = builder.no_proxy().dns_resolver(Arc::new(PublicOnly));
        }
        Self {
            http: builder.build().expect("the TLS backend is compiled in"),
            rule,
            account_sid: account_sid.to_owned(),
            auth_token,
        }
    }

    /// Starts fetching `url`; the body is left to stream.
    pub async fn fetch(&self, url: &str) -> Result<reqwest::Response, MediaError> {
        let url = Url::parse(url).map_err(|e| MediaError::Refused(format!("not a URL ({e})")))?;
        self.rule.check(&url)?;
        let mut request = self.http.get(url.clone());
        if url.origin() == self.rule.api {
            request = request.basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()));
        }
        let response = request.send().await.map_err(|e| {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            MediaError::Fetch(why)
        })?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(MediaError::Upstream(response.status().as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_parsed_not_trusted() {
        assert_eq!(
            normalize_content_type("image/JPEG").as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(
            normalize_content_type("audio/ogg; codecs=opus").as_deref(),
            Some("audio/ogg")
        );
        for bad in [
            "",
            "image",
            "text/html\r\nX-Evil: 1",
            "image/png\r\nX: y",
            "a b/c",
            "*/*",
            "image/*",
            "ïmage/png",
        ] {
            assert_eq!(normalize_content_type(bad), None, "{bad:?}");
        }
        assert_eq!(
            normalize_content_type(&format!("image/{}", "x".repeat(300))),
            None
        );
    }

    #[test]
    fn only_plain_media_is_inline() {
        for ok in ["image/png", "image/jpeg", "video/mp4", "audio/mpeg"] {
            assert_eq!(presentation(ok, "m").disposition, "inline", "{ok}");
            assert_eq!(presentation(ok, "m").content_type, ok);
        }
        for bad in [
            "image/svg+xml",
            "text/html",
            "application/javascript",
            "text/javascript",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "multipart/x-mixed-replace",
            "application/pdf",
            "text/css",
            "application/octet-stream",
        ] {
            let p = presentation(bad, "media-7-0");
            assert!(
                p.disposition
                    .starts_with("attachment; filename=\"media-7-0."),
                "{bad}: {p:?}"
            );
            assert_eq!(p.content_type, OCTET_STREAM, "{bad}");
        }
        assert_eq!(
            presentation("application/pdf", "a\"b\r\n/../c").disposition,
            "attachment; filename=\"abc.pdf\""
        );
    }

    #[test]
    fn only_global_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(!is_public(inside.parse().unwrap()), "{inside}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "54.172.60.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn live_mode_fetches_from_twilio_and_the_api_origin_only() {
        let rule = Rule {
            policy: MediaPolicy::Twilio,
            api: Url::parse("http://127.0.0.1:9999").unwrap().origin(),
        };
        let ok = |u: &str| rule.check(&Url::parse(u).unwrap()).is_ok();
        assert!(ok(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
        ));
        assert!(ok(
            "https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC1/abc"
        ));
        assert!(ok("https://media.twiliocdn.com/AC1/abc"));
        assert!(ok("http://127.0.0.1:9999/media/x"));
        assert!(
            !ok("http://api.twilio.com/x"),
            "Twilio's hosts over https only"
        );
        assert!(!ok("https://api.twilio.com.evil.example/x"));
        assert!(!ok("https://eviltwiliocdn.com/x"));
        assert!(!ok("https://s3.amazonaws.com/x"));
        assert!(
            !ok("http://127.0.0.1:9998/x"),
            "another port is another origin"
        );
        assert!(!ok("http://localhost:9999/x"));
        assert!(!ok("http://169.254.169.254/latest/meta-data/"));
        assert!(!ok("ftp://api.twilio.com/x"));
    }

    #[test]
    fn simulator_mode_refuses_literal_inside_addresses() {
        let rule = Rule {
            policy: MediaPolicy::PublicAddresses,
            api: Url::parse("http://127.0.0.1:3000").unwrap().origin(),
        };
        let ok = |u: &str| rule.check(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://example.com/cat.png"));
        assert!(ok("http://8.8.8.8/cat.png"));
        for inside in [
            "http://127.0.0.1:3000/dev/twilio",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
        ] {
            assert!(!ok(inside), "{inside}");
        }
    }
}
