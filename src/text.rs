//! Text that comes from outside: the one rule for what a client's field may contain, and
//! how a webhook's text is made storable whatever Twilio delivers.

use std::borrow::Cow;

/// Whether a field may span lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// Names, emails, phone numbers: no control character at all.
    One,
    /// Message bodies: newlines and tabs, but no other control character.
    Many,
}

/// Whether `value` holds no control character (NUL, escapes, C1 controls…) beyond the
/// newlines and tabs that `lines` allows.
pub fn is_clean(value: &str, lines: Lines) -> bool {
    value
        .chars()
        .all(|c| !c.is_control() || (lines == Lines::Many && matches!(c, '\n' | '\r' | '\t')))
}

/// Whether `c` is one of Unicode's bidirectional controls (the `Bidi_Control` property):
/// the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069, and the marks
/// U+200E, U+200F and U+061C. Invisible themselves, they reorder what is shown around them:
/// a name with U+202E shows its end reversed, beside whatever follows it on the page.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `value` shows anything: not only whitespace, zero-width, format or other
/// invisible characters.
pub fn is_visible(value: &str) -> bool {
    value.chars().any(|c| !is_invisible(c))
}

/// Text from a webhook as it can be stored: PostgreSQL's `TEXT` refuses NUL, and a message
/// Twilio delivers must never become unstorable, so NUL becomes U+FFFD.
pub fn storable(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Whitespace, controls, and Unicode's default-ignorable code points (zero-width spaces
/// and joiners, bidi and other format controls, variation selectors, fillers, tags), plus
/// the blank braille pattern and the few format characters outside that set.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_but_newlines_in_bodies() {
        assert!(is_clean("Ana María ☺", Lines::One));
        assert!(is_clean("line one\r\nline two\tend", Lines::Many));
        for bad in [
            "a\0b",
            "\u{1b}[31m",
            "bell\u{7}",
            "\u{7f}",
            "c1\u{85}",
            "x\u{9b}",
        ] {
            assert!(!is_clean(bad, Lines::One), "{bad:?}");
            assert!(!is_clean(bad, Lines::Many), "{bad:?}");
        }
        for multi in ["a\nb", "a\tb", "a\rb"] {
            assert!(!is_clean(multi, Lines::One), "{multi:?}");
        }
    }

    #[test]
    fn a_body_needs_something_visible() {
        for invisible in [
            "",
            "   ",
            "\n\t",
            "\u{200B}",
            "\u{200B}\u{200D}\u{FEFF}\u{2060}",
            "\u{00A0}\u{3000}",
            "\u{202E}\u{2066}",
            "\u{FE0F}",
            "\u{3164}",
            "\u{2800}",
            "\u{E0041}",
        ] {
            assert!(!is_visible(invisible), "{invisible:?}");
        }
        for visible in ["ok", " . ", "😀", "👍🏽", "\u{200B}a", "é", "中", "١"] {
            assert!(is_visible(visible), "{visible:?}");
        }
    }

    #[test]
    fn bidi_controls_are_the_bidi_control_property() {
        let controls: Vec<char> = ('\u{0}'..='\u{10FFFF}')
            .filter(|c| is_bidi_control(*c))
            .collect();
        assert_eq!(
            controls,
            [
                '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
                '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'
            ]
        );
        for c in controls {
            assert!(is_invisible(c), "{c:?}");
        }
    }

    #[test]
    fn nul_is_replaced_for_storage() {
        assert_eq!(storable("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        assert!(matches!(storable("plain"), Cow::Borrowed("plain")));
    }
}
