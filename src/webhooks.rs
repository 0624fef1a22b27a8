//! Twilio's two webhooks: inbound messages and status callbacks. Both are checked against
//! `X-Twilio-Signature` before anything is read, stored at most once, and pushed after the
//! commit.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{AppError, AppResult, Json};
use crate::model::{Media, MessageId, Status, now};
use crate::monitoring::{self, Duplicate, WebhookKind};
use crate::sms::{opt_change, segments};
use crate::store::{InboundArrival, NewInbound, StatusOutcome, StatusReport};
use crate::text::storable;
use crate::twilio::media::{OCTET_STREAM, normalize_content_type};
use crate::twilio::signature;

/// Twilio allows at most 10 media per message.
pub const MAX_MEDIA: usize = 10;
const MAX_FIELD: usize = 64;
const MAX_BODY: usize = 16 * 1024;
const MAX_URL: usize = 2048;

/// Whether `url` may be a message's media: an http(s) URL of at most [`MAX_URL`] bytes.
pub fn is_media_url(url: &str) -> bool {
    url.len() <= MAX_URL && (url.starts_with("https://") || url.starts_with("http://"))
}

/// Where Twilio posts inbound messages, under `PUBLIC_URL`.
pub const INBOUND_PATH: &str = "/api/crm/sms/webhook";
/// Where Twilio posts status callbacks, under `PUBLIC_URL`.
pub const STATUS_PATH: &str = "/api/crm/sms/status-webhook";

pub fn router() -> Router<AppState> {
    let measured = |kind| axum::middleware::from_fn_with_state(kind, monitoring::measure_webhook);
    Router::new()
        .route(
            INBOUND_PATH,
            post(inbound)
                .get(inbound_info)
                .route_layer(measured(WebhookKind::Inbound)),
        )
        .route(
            STATUS_PATH,
            post(status)
                .get(status_info)
                .route_layer(measured(WebhookKind::Status)),
        )
}

/// The `StatusCallback` URL of our sends: the status webhook with the message's own id in
/// its query, so that a callback that arrives before the Messages API has answered (before
/// the message has its sid) still finds its message. Built and read here only.
#[derive(Clone, Debug)]
pub struct StatusCallback {
    /// `PUBLIC_URL` and [`STATUS_PATH`].
    url: String,
}

impl StatusCallback {
    /// The query parameter that carries our id.
    const MESSAGE_ID: &str = "mid";

    /// The status webhook under `public_url` (without a trailing slash).
    pub fn new(public_url: &str) -> Self {
        Self {
            url: format!("{public_url}{STATUS_PATH}"),
        }
    }

    /// The webhook itself, for messages sent elsewhere (which carry no id of ours).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `StatusCallback` of message `id`.
    pub fn for_message(&self, id: MessageId) -> String {
        format!("{}?{}={id}", self.url, Self::MESSAGE_ID)
    }

    /// Our message's id in the query of a callback's URL, if it is one of ours.
    pub fn message_id(query: Option<&str>) -> Option<MessageId> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query?)
            .ok()?
            .into_iter()
            .find(|(name, _)| name == Self::MESSAGE_ID)
            .and_then(|(_, id)| id.parse().ok())
    }
}

/// What a `GET` on a webhook answers: how to set it up in Twilio.
#[derive(Debug, Serialize, Deserialize)]
pub struct WebhookInfo {
    /// Always `true`.
    pub success: bool,
    pub message: String,
    pub instructions: Vec<String>,
}

impl WebhookInfo {
    fn new(message: &str, instructions: &[&str]) -> Json<Self> {
        Json(Self {
            success: true,
            message: message.to_owned(),
            instructions: instructions.iter().map(|i| (*i).to_owned()).collect(),
        })
    }
}

/// The empty TwiML answer: no automatic reply.
fn twiml() -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
    )
        .into_response()
}

/// A webhook's form parameters, in the order received, and the query of its URL.
pub struct Params {
    fields: Vec<(String, String)>,
    query: Option<String>,
}

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `MessageSid`, which must look like a Twilio sid.
    fn sid(&self) -> AppResult<&str> {
        let sid = self.required("MessageSid", MAX_FIELD)?;
        if valid_sid(sid) {
            Ok(sid)
        } else {
            Err(AppError::BadRequest(
                "MessageSid is not a Twilio sid".into(),
            ))
        }
    }

    fn required(&self, name: &'static str, max: usize) -> AppResult<&str> {
        let value = self
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AppError::BadRequest(format!("the webhook has no {name}")))?;
        if value.len() > max {
            return Err(AppError::BadRequest(format!("{name} is too long")));
        }
        Ok(value)
    }
}

/// A Twilio form post whose `X-Twilio-Signature` matches `PUBLIC_URL` + path + query.
impl FromRequest<AppState> for Params {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> AppResult<Self> {
        let (parts, body) = request.into_parts();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(AppError::UnsupportedMediaType(
                "Twilio webhooks are application/x-www-form-urlencoded".into(),
            ));
        }
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state).await?;
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|e| AppError::BadRequest(format!("the form body cannot be read: {e}")))?;
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        let path = original.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path}", state.config.public_url);
        let signature = parts
            .headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if signature.is_empty()
            || !signature::verify(state.services.twilio.auth_token(), &url, &params, signature)
        {
            tracing::warn!(
                %url,
                signed = !signature.is_empty(),
                "rejected a webhook: X-Twilio-Signature does not match. Is PUBLIC_URL exactly the \
                 base URL Twilio calls (the ngrok URL in development), and the auth token right?"
            );
            return Err(AppError::Forbidden(
                "the X-Twilio-Signature header is missing or wrong".into(),
            ));
        }
        Ok(Params {
            fields: params,
            query: original.query().map(str::to_owned),
        })
    }
}

fn valid_sid(sid: &str) -> bool {
    sid.len() == 34
        && sid.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
        && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads an inbound message webhook's parameters. Text is never refused for the characters
/// in it: a message Twilio delivers must be stored, so it is made storable instead.
fn parse_inbound(p: &Params) -> AppResult<NewInbound> {
    let sid = p.sid()?;
    let from = storable(p.required("From", MAX_FIELD)?);
    let to = storable(p.required("To", MAX_FIELD)?);
    let raw_text = p.get("Body").unwrap_or_default();
    if raw_text.len() > MAX_BODY {
        return Err(AppError::BadRequest("Body is too long".into()));
    }
    let text = storable(raw_text);
    let num_media = match p.get("NumMedia").filter(|n| !n.is_empty()) {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_MEDIA)
            .ok_or_else(|| AppError::BadRequest("NumMedia must be a number from 0 to 10".into()))?,
    };
    let mut media = Vec::with_capacity(num_media);
    for i in 0..num_media {
        let Some(url) = p.get(&format!("MediaUrl{i}")).filter(|u| !u.is_empty()) else {
            continue;
        };
        if !is_media_url(url) {
            return Err(AppError::BadRequest(format!("MediaUrl{i} is not a URL")));
        }
        let content_type = p
            .get(&format!("MediaContentType{i}"))
            .and_then(normalize_content_type)
            .unwrap_or_else(|| OCTET_STREAM.to_owned());
        media.push(Media {
            url: storable(url).into_owned(),
            content_type,
        });
    }
    let reported_segments = p.get("NumSegments").and_then(|n| n.parse::<i64>().ok());
    Ok(NewInbound {
        twilio_sid: sid.to_owned(),
        from: from.into_owned(),
        to: to.into_owned(),
        segments: reported_segments
            .filter(|n| (1..=100).contains(n))
            .unwrap_or_else(|| segments(&text).max(1)),
        opt_change: opt_change(&text, p.get("OptOutType")),
        body: text.into_owned(),
        media,
    })
}

/// An inbound webhook counted as on its way to the store before its body is read and its
/// signature checked, so that a batch about to commit waits for it (`src/store/inbound.rs`).
struct Arriving(InboundArrival);

impl FromRequestParts<AppState> for Arriving {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(state.services.store.inbound_arrival()))
    }
}

/// `POST /api/crm/sms/webhook`: an SMS or MMS arrived.
async fn inbound(
    State(state): State<AppState>,
    Arriving(arrival): Arriving,
    p: Params,
) -> AppResult<Response> {
    let msg = parse_inbound(&p)?;
    // The write is committed with others of its batch whether this request waits for it or
    // not (a client that hangs up drops the handler): its event must go out all the same.
    let stored = tokio::spawn(store_inbound(state, msg, arrival))
        .await
        .map_err(|e| AppError::Internal(e.into()))??;
    Ok(if stored {
        twiml()
    } else {
        (Duplicate, twiml()).into_response()
    })
}

/// How long after its write an inbound message's announcement has surely gone out, or
/// given up, on an instance that did not die: the write's own time (the row's time is taken
/// before it), then a publish to Redis, cut off at 1 s (src/events/redis.rs). A webhook
/// Twilio retries later than this finds the message unannounced if its first instance died,
/// and announces it; one that comes sooner is taken for a duplicate of a live delivery. It
/// compares the clock of the instance that stored the message with this one's: instances
/// whose clocks disagree by a good part of it (NTP keeps them within milliseconds) would
/// announce a quick duplicate twice or a quick retry never (docs/reliability.md).
const ANNOUNCED_WITHIN: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Stores an inbound message and, once it is committed, tells its audience. False when Twilio
/// retried a message already stored.
async fn store_inbound(
    state: AppState,
    msg: NewInbound,
    arrival: InboundArrival,
) -> AppResult<bool> {
    let sid = msg.twilio_sid.clone();
    match state.services.store.insert_inbound(msg, arrival).await? {
        Some(stored) => {
            tracing::info!(sid = %sid, conversation = %stored.message.conversation_id, "inbound message stored");
            state.services.events.message(&stored).await;
            Ok(true)
        }
        None => {
            tracing::info!(sid = %sid, "inbound message already stored; Twilio retried");
            // The instance that stored it may have died between its commit and its
            // announcement, leaving this retry as the only one: a message stored longer ago
            // than its announcement can take is announced again (same id and seq, which
            // pages merge). A younger one is a duplicate arriving with the first delivery,
            // whose own announcement is on its way.
            let before = now() - ANNOUNCED_WITHIN;
            if let Some(stored) = state
                .services
                .store
                .inbound_stored_before(&sid, before)
                .await?
            {
                tracing::info!(sid = %sid, "announcing a retried inbound message again");
                state.services.events.message(&stored).await;
            }
            Ok(false)
        }
    }
}

/// `POST /api/crm/sms/status-webhook`: Twilio tells how far a message got.
async fn status(State(state): State<AppState>, p: Params) -> AppResult<Response> {
    let sid = p.sid()?;
    let reported = p.required("MessageStatus", MAX_FIELD)?;
    let Ok(status) = reported.parse::<Status>() else {
        tracing::info!(sid, status = reported, "ignored a status we do not track");
        return Ok(twiml());
    };
    let report = StatusReport {
        message_id: StatusCallback::message_id(p.query.as_deref()),
        twilio_sid: sid.to_owned(),
        status,
        error_code: p.get("ErrorCode").and_then(|c| c.trim().parse().ok()),
    };
    match state.services.store.apply_status(&report).await? {
        StatusOutcome::Applied(changed) => {
            tracing::info!(sid, status = status.as_str(), "message status updated");
            state.services.events.message(&changed).await;
        }
        StatusOutcome::Stale => {
            tracing::debug!(
                sid,
                status = status.as_str(),
                "status not newer than stored"
            );
            return Ok((Duplicate, twiml()).into_response());
        }
        StatusOutcome::Deferred => {
            tracing::info!(
                sid,
                status = status.as_str(),
                "status for a sid not recorded yet; kept"
            )
        }
    }
    Ok(twiml())
}

async fn inbound_info() -> Json<WebhookInfo> {
    WebhookInfo::new(
        "Twilio Incoming Message Webhook Endpoint",
        &[
            "In the Twilio Console open Phone Numbers → Manage → Active Numbers → your number.",
            "Under Messaging Configuration set \"A message comes in\" to this URL (PUBLIC_URL + /api/crm/sms/webhook), method POST.",
            "Requests must carry a valid X-Twilio-Signature; PUBLIC_URL must be the exact base URL Twilio calls.",
        ],
    )
}

async fn status_info() -> Json<WebhookInfo> {
    WebhookInfo::new(
        "Twilio Status Callback Webhook Endpoint",
        &[
            "smsdesk sets StatusCallback on every message it sends, so nothing needs configuring when PUBLIC_URL is public.",
            "To receive statuses for messages sent elsewhere, set the number's Status Callback URL to PUBLIC_URL + /api/crm/sms/status-webhook, method POST.",
            "Events: queued, sending, sent, delivered, undelivered, failed.",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            query: None,
        }
    }

    #[test]
    fn inbound_parameters_are_read_and_checked() {
        let sid = "SM0123456789abcdef0123456789abcdef";
        let ok = parse_inbound(&params(&[
            ("MessageSid", sid),
            ("From", "+14155550123"),
            ("To", "+15550001000"),
            ("Body", "STOP"),
            ("NumMedia", "1"),
            ("MediaUrl0", "https://api.twilio.com/m/1"),
        ]))
        .unwrap();
        assert_eq!(ok.media[0].content_type, "application/octet-stream");
        for (given, stored) in [
            ("image/PNG", "image/png"),
            ("image/jpeg; name=cat.jpg", "image/jpeg"),
            ("text/html\r\nSet-Cookie: a=b", "application/octet-stream"),
            ("not a type", "application/octet-stream"),
        ] {
            let m = parse_inbound(&params(&[
                ("MessageSid", sid),
                ("From", "+14155550123"),
                ("To", "+15550001000"),
                ("NumMedia", "1"),
                ("MediaUrl0", "https://api.twilio.com/m/1"),
                ("MediaContentType0", given),
            ]))
            .unwrap();
            assert_eq!(m.media[0].content_type, stored, "{given:?}");
        }
        assert_eq!(ok.segments, 1);
        assert!(ok.opt_change.is_some());
        for bad in [
            vec![("From", "+1"), ("To", "+2")],
            vec![("MessageSid", sid), ("To", "+2")],
            vec![
                ("MessageSid", sid),
                ("From", "+1"),
                ("To", "+2"),
                ("NumMedia", "11"),
            ],
            vec![
                ("MessageSid", sid),
                ("From", "+1"),
                ("To", "+2"),
                ("NumMedia", "x"),
            ],
        ] {
            assert!(matches!(
                parse_inbound(&params(&bad)),
                Err(AppError::BadRequest(_))
            ));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a client posts, parsing answers Ok or a 400, never panics.
        #[test]
        fn parsing_never_panics(raw in proptest::collection::vec((
            prop_oneof![
                Just("MessageSid".to_string()), Just("From".to_string()), Just("To".to_string()),
                Just("Body".to_string()), Just("NumMedia".to_string()), Just("MediaUrl0".to_string()),
                Just("MediaContentType0".to_string()), Just("NumSegments".to_string()),
                Just("OptOutType".to_string()), ".{0,12}",
            ],
            prop_oneof![".{0,40}", "SM[0-9a-f]{32}", "[0-9]{1,3}", "https?://[a-z.]{1,10}/.{0,5}"],
        ), 0..12)) {
            match parse_inbound(&Params { fields: raw, query: None }) {
                Ok(_) | Err(AppError::BadRequest(_)) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        /// A form body of any bytes parses or is refused, never panics.
        #[test]
        fn form_decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body);
        }

        /// What Twilio signs verifies; changing any parameter or the URL does not.
        #[test]
        fn signatures_bind_url_and_every_parameter(
            token in "[a-zA-Z0-9]{1,32}",
            path in "/[a-z/]{0,20}",
            raw in proptest::collection::vec(("[A-Za-z]{1,8}", ".{0,16}"), 1..8),
            victim in any::<prop::sample::Index>(),
        ) {
            let url = format!("https://example.ngrok.io{path}");
            let sig = signature::sign(&token, &url, &raw);
            prop_assert!(signature::verify(&token, &url, &raw, &sig));
            let other_url = format!("{url}x");
            prop_assert!(!signature::verify(&token, &other_url, &raw, &sig));
            let mut tampered = raw.clone();
            let i = victim.index(tampered.len());
            tampered[i].1.push('!');
            prop_assert!(!signature::verify(&token, &url, &tampered, &sig));
        }
    }

    #[test]
    fn a_status_callback_carries_its_message_id() {
        let callback = StatusCallback::new("https://smsdesk.test");
        assert_eq!(
            callback.url(),
            "https://smsdesk.test/api/crm/sms/status-webhook"
        );
        let id: MessageId = "42".parse().unwrap();
        let url = callback.for_message(id);
        assert_eq!(
            url,
            "https://smsdesk.test/api/crm/sms/status-webhook?mid=42"
        );
        let query = url.split_once('?').map(|(_, q)| q);
        assert_eq!(StatusCallback::message_id(query), Some(id));
        for other in [None, Some(""), Some("mid=x"), Some("id=42"), Some("mid=-1")] {
            assert_eq!(StatusCallback::message_id(other), None, "{other:?}");
        }
    }

    #[test]
    fn sids_look_like_twilio_sids() {
        assert!(valid_sid("SM0123456789abcdef0123456789abcdef"));
        assert!(valid_sid("MM0123456789ABCDEF0123456789abcdef"));
        assert!(!valid_sid("SM0123"));
        assert!(!valid_sid("sm0123456789abcdef0123456789abcdef"));
        assert!(!valid_sid("SM0123456789abcdef0123456789abcdeg"));
    }
}
