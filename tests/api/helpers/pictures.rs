//! Pictures to upload, made here byte by byte, and the multipart bodies that carry them.

use serde_json::Value;

use super::{Agent, TestApp, read};

/// A whole 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// A whole 1×1 GIF.
pub const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// The 5 MB an upload may be, exactly.
pub const FIVE_MB: usize = 5 * 1024 * 1024;

/// A whole baseline JPEG of exactly `size` bytes: a 1×1 image whose size is made up by
/// comment segments, as a camera's metadata would.
pub fn jpeg(size: usize) -> Vec<u8> {
    let frame: &[u8] = &[
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00, // SOF0
        0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, // SOS
        0x12, 0xFF, 0x00, 0x34, // scan data, with a stuffed FF
        0xFF, 0xD9, // EOI
    ];
    let mut j = vec![0xFF, 0xD8];
    let mut padding = size.checked_sub(2 + frame.len()).expect("room for a JPEG");
    assert!(
        padding == 0 || padding >= 4,
        "a segment is 4 bytes at least"
    );
    while padding > 0 {
        let mut segment = padding.min(65_537);
        if (1..4).contains(&(padding - segment)) {
            segment -= 4;
        }
        let length = u16::try_from(segment - 2).unwrap();
        j.extend([0xFF, 0xFE]);
        j.extend(length.to_be_bytes());
        j.resize(j.len() + segment - 4, b'.');
        padding -= segment;
    }
    j.extend(frame);
    assert_eq!(j.len(), size);
    j
}

/// One part of a multipart body: its name, file name and declared type (if any), and bytes.
pub struct Part<'a> {
    pub name: &'a str,
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub bytes: &'a [u8],
}

impl<'a> Part<'a> {
    /// The `file` part, as a browser sends a picture.
    pub fn file(filename: &'a str, content_type: &'a str, bytes: &'a [u8]) -> Self {
        Self {
            name: "file",
            filename: Some(filename),
            content_type: Some(content_type),
            bytes,
        }
    }
}

pub const BOUNDARY: &str = "----smsdesk-test-boundary-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body of `parts`, and its `Content-Type`.
pub fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for p in parts {
        body.extend(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if let Some(f) = p.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend(format!("{disposition}\r\n").as_bytes());
        if let Some(ct) = p.content_type {
            body.extend(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend(b"\r\n");
        body.extend(p.bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

impl TestApp {
    /// Posts a multipart body of `parts` to the uploads route as `agent`.
    pub async fn upload_parts(&self, agent: Option<&Agent>, parts: &[Part<'_>]) -> (u16, Value) {
        let (content_type, body) = multipart(parts);
        let mut request = self
            .http
            .post(self.url("/api/crm/sms/uploads"))
            .header("content-type", content_type)
            .body(body);
        if let Some(a) = agent {
            request = request.bearer_auth(&a.token);
        }
        read(request.send().await.unwrap()).await
    }

    /// Uploads `bytes` as the `file` part, named and declared as given.
    pub async fn upload(
        &self,
        agent: &Agent,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> (u16, Value) {
        self.upload_parts(Some(agent), &[Part::file(filename, content_type, bytes)])
            .await
    }

    /// Sends `body` with the uploads `media` to the conversation as `agent`.
    pub async fn send_pictures(
        &self,
        agent: &Agent,
        conversation: &str,
        body: &str,
        media: &[&str],
        client_id: &str,
    ) -> (u16, Value) {
        self.post_json(
            "/api/crm/sms/send",
            Some(agent),
            serde_json::json!({
                "conversationId": conversation, "body": body, "mediaIds": media,
                "clientId": client_id,
            }),
        )
        .await
    }

    /// Uploads a picture that must be taken; returns its id.
    pub async fn uploaded(&self, agent: &Agent, bytes: &[u8]) -> String {
        let (status, upload) = self.upload(agent, "picture", "image/png", bytes).await;
        assert_eq!(status, 201, "{upload}");
        upload["id"].as_str().expect("an id").to_owned()
    }
}
