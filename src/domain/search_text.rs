//! What an agent types to find a conversation (docs/api.md, "Search"), and the three things it is
//! looked for as: the text itself in a contact's name, its digits in a contact's phone, and
//! its words in a message. The text is only ever bound as data; the store folds case and
//! accents with the database's own rules (the same ones its indexes were built with).

use super::{InvalidField, check_clean};
use crate::text::{self, Lines};

/// At most this many characters: enough for any name, number or phrase, not for an essay.
const MAX_CHARS: usize = 200;

/// At most this many words are looked for in messages; the rest narrow nothing useful.
const MAX_WORDS: usize = 16;

/// A phone's digits are looked for once there are this many.
const MIN_DIGITS: usize = 3;

/// A search text: trimmed, 1 to 200 characters on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText {
    text: String,
    digits: Option<String>,
    words: Vec<String>,
}

impl SearchText {
    /// `None` for a text that shows nothing: no filter at all.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidField> {
        check_clean("q", raw, Lines::One)?;
        let text = raw.trim();
        if !text::is_visible(text) {
            return Ok(None);
        }
        if text.chars().count() > MAX_CHARS {
            return Err(InvalidField::new(format!(
                "q must be at most {MAX_CHARS} characters"
            )));
        }
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(MAX_WORDS)
            .map(str::to_owned)
            .collect();
        Ok(Some(Self {
            text: text.to_owned(),
            digits: phone_digits(text),
            words,
        }))
    }

    /// The text as typed (trimmed): what a contact's name must contain.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The digits of a text written as a phone number (`(555) 123-4567`, `+1 555…`), when
    /// there are at least three: what a contact's phone must contain.
    pub fn digits(&self) -> Option<&str> {
        self.digits.as_deref()
    }

    /// The words (runs of letters and digits) a message must all contain; the last may be
    /// the start of a word still being typed.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

/// The digits of `text` if it reads as a phone number: digits and the signs people write
/// numbers with, nothing else ("room 101" looks for words, not phones).
fn phone_digits(text: &str) -> Option<String> {
    let phone_like = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | ' ' | '/'));
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    (phone_like && digits.len() >= MIN_DIGITS).then_some(digits)
}

/// `text` as a literal inside a `LIKE` pattern escaped with `\`: `%` and `_` match themselves.
pub fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> SearchText {
        SearchText::parse(raw).unwrap().unwrap()
    }

    #[test]
    fn a_blank_text_is_no_filter() {
        assert_eq!(SearchText::parse("").unwrap(), None);
        assert_eq!(SearchText::parse("  \u{200B} ").unwrap(), None);
    }

    #[test]
    fn phones_are_read_in_any_written_form() {
        for raw in [
            "(555) 123-4567",
            "555.123.4567",
            "+1 555 123 4567",
            "5551234567",
        ] {
            assert!(
                parse(raw).digits().unwrap().ends_with("5551234567"),
                "{raw}"
            );
        }
        assert_eq!(parse("55").digits(), None, "fewer than three digits");
        assert_eq!(parse("room 101").digits(), None, "words are not a phone");
    }

    #[test]
    fn words_are_runs_of_letters_and_digits() {
        assert_eq!(
            parse("  Café, \"NEAR(x* 12%").words(),
            ["Café", "NEAR", "x", "12"]
        );
        assert!(parse("\"*%_").words().is_empty());
        assert_eq!(parse(&"a ".repeat(40)).words().len(), MAX_WORDS);
    }

    #[test]
    fn too_long_or_unclean_text_is_refused_naming_q() {
        for bad in ["x".repeat(201), "a\nb".to_owned(), "a\0".to_owned()] {
            let err = SearchText::parse(&bad).unwrap_err();
            assert!(err.to_string().starts_with("q "), "{err}");
        }
        assert!(SearchText::parse(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn like_wildcards_match_themselves() {
        assert_eq!(like_literal(r"50%_a\b"), r"50\%\_a\\b");
    }
}
