//! The request head socket.io keeps for a socket's whole life, made small: only the headers
//! smsdesk and engineioxide read, and the URI, as copies of their own.
//!
//! engineioxide holds each socket's request head (`req_parts`). Hyper parses that head into
//! zero-copy slices of its 16 KiB read buffer, so one kept header value or URI keeps the whole
//! buffer alive for as long as the socket stays connected.

use axum::extract::{OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::Response;

/// What a socket reads from its request head: the cookie and origin of a cookie handshake
/// (`authenticate`), the websocket upgrade's key and version, and the polling body's type.
const KEPT: [HeaderName; 7] = [
    header::COOKIE,
    header::ORIGIN,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::UPGRADE,
    header::CONNECTION,
    header::CONTENT_TYPE,
];

/// Middleware in front of socket.io: its requests go on with a head of their own, so the
/// connection's read buffer is freed once the request is parsed.
pub async fn detach_request_head(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/socket.io/") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    detach(&mut parts);
    next.run(Request::from_parts(parts, body)).await
}

/// Replaces the headers by copies of the kept ones and the URIs by copies; extensions (the
/// connection upgrade, the handshake's place) stay as they are.
fn detach(parts: &mut Parts) {
    let mut headers = HeaderMap::new();
    for name in KEPT {
        for value in parts.headers.get_all(&name) {
            headers.append(name.clone(), copy_value(value));
        }
    }
    parts.headers = headers;
    parts.uri = copy_uri(&parts.uri);
    if let Some(OriginalUri(original)) = parts.extensions.get::<OriginalUri>() {
        let copy = OriginalUri(copy_uri(original));
        parts.extensions.insert(copy);
    }
}

fn copy_value(value: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_bytes(value.as_bytes())
        .expect("bytes taken from a valid header value are valid");
    copy.set_sensitive(value.is_sensitive());
    copy
}

fn copy_uri(uri: &Uri) -> Uri {
    // Parsing from text copies it; a URI hyper accepted always parses again.
    uri.to_string()
        .parse()
        .expect("a parsed URI prints as a valid URI")
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use axum::body::Bytes;

    use super::*;

    /// A head whose URI and header values are all slices of one buffer, as hyper makes them.
    fn sliced_head(buffer: &Bytes) -> Parts {
        let slice = |text: &str| {
            let at = buffer
                .windows(text.len())
                .position(|w| w == text.as_bytes())
                .expect("the text is in the buffer");
            buffer.slice(at..at + text.len())
        };
        let value = |text: &str| HeaderValue::from_maybe_shared(slice(text)).unwrap();
        let uri = Uri::from_maybe_shared(slice("/socket.io/?EIO=4&transport=websocket")).unwrap();
        let (mut parts, ()) = Request::builder()
            .uri(uri.clone())
            .header(header::COOKIE, value("a=1"))
            .header(header::COOKIE, value("smsdesk_session=tok"))
            .header(header::ORIGIN, value("https://desk.example"))
            .header(header::SEC_WEBSOCKET_KEY, value("dGhlIHNhbXBsZSBub25jZQ=="))
            .header(header::SEC_WEBSOCKET_VERSION, value("13"))
            .header(header::UPGRADE, value("websocket"))
            .header(header::CONNECTION, value("Upgrade"))
            .header(header::CONTENT_TYPE, value("text/plain"))
            .header(header::USER_AGENT, value("Mozilla/5.0"))
            .header("x-forwarded-for", value("203.0.113.9"))
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(OriginalUri(uri));
        parts.extensions.insert(7_u32);
        parts
    }

    fn within(bytes: &[u8], buffer: &Range<usize>) -> bool {
        buffer.contains(&(bytes.as_ptr() as usize))
    }

    #[test]
    fn keeps_what_the_socket_reads_as_copies_and_drops_the_rest() {
        let buffer = Bytes::from(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nCookie: a=1\r\n\
             Cookie: smsdesk_session=tok\r\nOrigin: https://desk.example\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nContent-Type: text/plain\r\n\
             User-Agent: Mozilla/5.0\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
        );
        let span = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let original = sliced_head(&buffer);
        let mut parts = sliced_head(&buffer);

        detach(&mut parts);

        assert_eq!(parts.uri, original.uri);
        assert!(!within(parts.uri.path().as_bytes(), &span));
        let OriginalUri(kept_original) = parts.extensions.get::<OriginalUri>().unwrap();
        assert_eq!(kept_original, &original.uri);
        assert!(!within(kept_original.path().as_bytes(), &span));
        assert_eq!(parts.extensions.get::<u32>(), Some(&7));

        for name in KEPT {
            let before: Vec<_> = original.headers.get_all(&name).iter().collect();
            let after: Vec<_> = parts.headers.get_all(&name).iter().collect();
            assert_eq!(after, before, "{name}");
            assert!(after.iter().all(|v| !within(v.as_bytes(), &span)), "{name}");
        }
        assert_eq!(parts.headers.get_all(header::COOKIE).iter().count(), 2);
        assert!(parts.headers.get(header::USER_AGENT).is_none());
        assert!(parts.headers.get("x-forwarded-for").is_none());
        assert_eq!(parts.headers.len(), 8);
    }
}
