//! The Messages API client. The same code talks to the real Twilio and to the simulator.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::media::{MediaError, MediaFetcher, MediaPolicy};
use crate::monitoring::TwilioOutcome;

/// How long a create may take before its answer counts as lost.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one page of the Messages list may take.
pub const LIST_PAGE_TIMEOUT: Duration = Duration::from_secs(15);
/// How many pages of the Messages list a lookup reads at most.
pub const LIST_PAGES: u32 = 3;

/// A message resource, as far as we read it.
#[derive(Clone, Debug, Deserialize)]
pub struct MessageResource {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub error_code: Option<i64>,
    /// RFC 2822, as Twilio writes dates.
    #[serde(default)]
    pub date_created: Option<String>,
}

impl MessageResource {
    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.date_created
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc))
    }
}

#[derive(Deserialize)]
struct ListPage {
    messages: Vec<MessageResource>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error.
    #[error("Twilio answered {status}: {message} (code {code:?})")]
    Api {
        status: u16,
        code: Option<i64>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request never reached Twilio: nothing was sent.
    #[error("could not reach Twilio: {0}")]
    NotSent(String),
    /// The request may have reached Twilio but no answer came back.
    #[error("no answer from Twilio: {0}")]
    NoAnswer(String),
}

/// How a call to send went, as `/metrics` counts it.
fn outcome<T>(result: &Result<T, TwilioError>) -> TwilioOutcome {
    match result {
        Ok(_) => TwilioOutcome::Created,
        Err(TwilioError::Api { status: 429, .. }) => TwilioOutcome::RateLimited,
        Err(TwilioError::Api { status, .. }) if *status >= 500 => TwilioOutcome::ServerError,
        Err(TwilioError::Api { .. }) => TwilioOutcome::ClientError,
        Err(TwilioError::NoAnswer(_)) => TwilioOutcome::Timeout,
        Err(TwilioError::NotSent(_)) => TwilioOutcome::ConnectError,
    }
}

impl TwilioError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_connect() || e.is_builder() {
            Self::NotSent(e.to_string())
        } else {
            Self::NoAnswer(e.to_string())
        }
    }
}

/// What to send.
#[derive(Clone, Debug)]
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub messaging_service_sid: Option<&'a str>,
    pub body: &'a str,
    /// One `MediaUrl` each: the pictures Twilio fetches and sends as an MMS.
    pub media_urls: &'a [String],
    pub status_callback: Option<String>,
}

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    account_url: String,
    account_sid: String,
    auth_token: SecretString,
    api_url: Url,
    media: MediaFetcher,
}

impl TwilioClient {
    /// `api_base` is `https://api.twilio.com` or the simulator's address.
    pub fn new(api_base: &str, account_sid: &str, auth_token: SecretString) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("smsdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend is compiled in");
        let api_url = Url::parse(api_base).expect("the API base is a URL (checked by config)");
        let media = MediaFetcher::new(
            MediaPolicy::Twilio,
            &api_url,
            account_sid,
            auth_token.clone(),
        );
        Self {
            http,
            api_url,
            media,
            account_url: format!(
                "{}/2010-04-01/Accounts/{account_sid}",
                api_base.trim_end_matches('/')
            ),
            account_sid: account_sid.to_owned(),
            auth_token,
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    pub fn auth_token(&self) -> &str {
        self.auth_token.expose_secret()
    }

    /// `POST /Messages.json`, counted and timed for `/metrics`.
    pub async fn send(&self, msg: &Outgoing<'_>) -> Result<MessageResource, TwilioError> {
        let started = std::time::Instant::now();
        let sent = self.create(msg).await;
        crate::monitoring::twilio_request(outcome(&sent), started.elapsed());
        sent
    }

    async fn create(&self, msg: &Outgoing<'_>) -> Result<MessageResource, TwilioError> {
        let mut form: Vec<(&str, &str)> = vec![("To", msg.to)];
        // A picture may go without text; Twilio wants a Body only when there is no MediaUrl.
        if !msg.body.is_empty() || msg.media_urls.is_empty() {
            form.push(("Body", msg.body));
        }
        form.extend(msg.media_urls.iter().map(|url| ("MediaUrl", url.as_str())));
        match msg.messaging_service_sid {
            Some(ms) => form.push(("MessagingServiceSid", ms)),
            None => form.push(("From", msg.from)),
        }
        if let Some(cb) = &msg.status_callback {
            form.push(("StatusCallback", cb));
        }
        let response = self
            .http
            .post(format!("{}/Messages.json", self.account_url))
            .basic_auth(&self.account_sid, Some(self.auth_token()))
            .form(&form)
            .send()
            .await
            .map_err(TwilioError::from_reqwest)?;
        read(response).await
    }

    /// `GET /Messages/{sid}.json`: the message as Twilio holds it now. A sid that is not one
    /// (two letters and 32 hex digits, as Twilio makes them) is refused before any request.
    pub async fn fetch(&self, sid: &str) -> Result<MessageResource, TwilioError> {
        let b = sid.as_bytes();
        let is_sid = b.len() == 34
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..].iter().all(u8::is_ascii_hexdigit);
        if !is_sid {
            return Err(TwilioError::NotSent(format!(
                "{sid:?} is not a message sid"
            )));
        }
        let response = self
            .http
            .get(format!("{}/Messages/{sid}.json", self.account_url))
            .basic_auth(&self.account_sid, Some(self.auth_token()))
            .send()
            .await
            .map_err(TwilioError::from_reqwest)?;
        read(response).await
    }

    /// Messages to `to` (and from `from`, unless empty) created since `since`, newest
    /// first: at most [`LIST_PAGES`] pages of [`LIST_PAGE_TIMEOUT`] each, so a lookup
    /// never takes longer than their product. Twilio filters by day, so the list may
    /// also hold older messages of that day.
    pub async fn list_sent(
        &self,
        to: &str,
        from: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<MessageResource>, TwilioError> {
        let date = since.format("%Y-%m-%d").to_string();
        let mut url = format!("{}/Messages.json", self.account_url);
        let mut first: Vec<(&str, &str)> = vec![("To", to)];
        if !from.is_empty() {
            first.push(("From", from));
        }
        first.extend([("DateSent>", date.as_str()), ("PageSize", "100")]);
        let mut query = Some(first);
        let mut found = Vec::new();
        for _ in 0..LIST_PAGES {
            let mut req = self
                .http
                .get(&url)
                .timeout(LIST_PAGE_TIMEOUT)
                .basic_auth(&self.account_sid, Some(self.auth_token()));
            if let Some(q) = query.take() {
                req = req.query(&q);
            }
            let response = req.send().await.map_err(TwilioError::from_reqwest)?;
            let page: ListPage = read(response).await?;
            let reached_since = page
                .messages
                .last()
                .and_then(MessageResource::created)
                .is_some_and(|c| c < since);
            found.extend(page.messages);
            if reached_since {
                break;
            }
            match page.next_page_uri {
                Some(next) if !next.is_empty() => {
                    let origin = self
                        .account_url
                        .split("/2010-04-01")
                        .next()
                        .unwrap_or_default();
                    url = format!("{origin}{next}");
                }
                _ => break,
            }
        }
        Ok(found)
    }

    /// Fetches a media file under the client's [`MediaPolicy`].
    pub async fn fetch_media(&self, url: &str) -> Result<reqwest::Response, MediaError> {
        self.media.fetch(url).await
    }

    /// Where media may come from: Twilio's hosts (the default), or any public address.
    pub fn with_media_policy(mut self, policy: MediaPolicy) -> Self {
        self.media = MediaFetcher::new(
            policy,
            &self.api_url,
            &self.account_sid,
            self.auth_token.clone(),
        );
        self
    }
}

async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, TwilioError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| TwilioError::NoAnswer(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| TwilioError::NoAnswer(format!("unreadable answer from Twilio ({e})")));
    }
    let body: Option<ApiErrorBody> = serde_json::from_slice(&bytes).ok();
    Err(TwilioError::Api {
        status: status.as_u16(),
        code: body.as_ref().and_then(|b| b.code),
        message: body
            .and_then(|b| b.message)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
        retry_after,
    })
}
