//! What `smsdesk` prints when it starts: the banner of the Node original, then what this instance uses
//! and where Twilio should post.

use crate::startup::Started;
use crate::webhooks::{INBOUND_PATH, StatusCallback};

/// Emoji take two terminal columns.
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| if c > '\u{1F000}' { 2 } else { 1 })
        .sum()
}

/// The seed's box, as wide as its longest line needs.
fn ready_box(port: u16) -> String {
    let line = format!("   ➜ Local:    http://localhost:{port}");
    let width = 39.max(columns(&line) + 2);
    let pad = |t: &str| format!("║{t}{}║\n", " ".repeat(width.saturating_sub(columns(t))));
    let rule = "═".repeat(width);
    format!(
        "╔{rule}╗\n{}{}{}╚{rule}╝\n",
        pad("   🚀 Server ready!"),
        pad(&line),
        pad("   📡 Socket.io: Enabled"),
    )
}

/// The start-up banner of the Node original, then what this instance is using.
pub fn banner(s: &Started) -> String {
    let twilio = if s.simulated {
        "simulated (no TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN: messages go to the built-in simulator)"
    } else {
        "live"
    };
    let mut out = ready_box(s.port);
    out.push_str("\n[Socket.io] 🚀 Server initialized\n");
    out.push_str(&format!("Database:   {}\n", s.database));
    if let Some(redis) = &s.redis {
        out.push_str(&format!(
            "Redis:      {redis} (events reach the sockets of every instance)\n"
        ));
    }
    out.push_str(&format!("Twilio:     {twilio}\n"));
    out.push_str(&format!("Public URL: {}\n", s.public_url));
    out.push_str("Paste into Twilio (Phone Numbers → your number → Messaging):\n");
    out.push_str(&format!(
        "  A message comes in:  {}{INBOUND_PATH}\n",
        s.public_url
    ));
    out.push_str(&format!(
        "  Status callback URL: {}\n",
        StatusCallback::new(&s.public_url).url()
    ));
    if !s.status_callbacks {
        out.push_str(
            "Note: PUBLIC_URL is not reachable by Twilio, so messages are sent without a StatusCallback and \
             their status will not update until PUBLIC_URL is public (e.g. an ngrok URL).\n",
        );
    }
    if !s.media {
        out.push_str(
            "Note: Twilio fetches the pictures of a message from PUBLIC_URL, so sending pictures (MMS) \
             is refused until PUBLIC_URL is public (e.g. an ngrok URL).\n",
        );
    }
    if let Some(url) = &s.setup_url {
        out.push_str(&format!(
            "\nNo agent yet. Create the first one here (link valid until restart):\n  {url}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(port: u16) -> Started {
        Started {
            port,
            public_url: format!("http://localhost:{port}"),
            database: "sqlite (sqlite://data/smsdesk.db)".into(),
            redis: None,
            simulated: true,
            status_callbacks: true,
            media: true,
            setup_url: Some(format!("http://localhost:{port}/setup?token=abc")),
        }
    }

    #[test]
    fn the_seed_box_comes_first_and_lines_up() {
        let text = banner(&started(3000));
        let expected = "╔═══════════════════════════════════════╗\n\
                        ║   🚀 Server ready!                    ║\n\
                        ║   ➜ Local:    http://localhost:3000   ║\n\
                        ║   📡 Socket.io: Enabled               ║\n\
                        ╚═══════════════════════════════════════╝\n\
                        \n[Socket.io] 🚀 Server initialized\n";
        assert!(text.starts_with(expected), "{text}");
        assert!(
            text.ends_with("  http://localhost:3000/setup?token=abc\n"),
            "{text}"
        );
    }

    #[test]
    fn redis_is_named_only_when_set() {
        assert!(!banner(&started(3000)).contains("Redis"));
        let with_redis = Started {
            redis: Some("redis://:***@cache:6379/0".into()),
            ..started(3000)
        };
        assert!(
            banner(&with_redis).contains("Redis:      redis://:***@cache:6379/0"),
            "{}",
            banner(&with_redis)
        );
    }

    #[test]
    fn a_local_public_url_is_said_to_stop_statuses_and_pictures() {
        assert!(!banner(&started(3000)).contains("Note:"));
        let local = Started {
            simulated: false,
            status_callbacks: false,
            media: false,
            ..started(3000)
        };
        let text = banner(&local);
        let statuses = text.find("without a StatusCallback").expect(&text);
        let pictures = text.find("sending pictures (MMS) is refused").expect(&text);
        assert!(statuses < pictures, "side by side: {text}");
    }

    #[test]
    fn a_long_address_widens_the_box() {
        let text = banner(&started(65535));
        let widths: Vec<usize> = text.lines().take(5).map(columns).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");
    }
}
