//! What it takes to create an agent, from the setup page or the command line.

use super::{AgentName, Email, InvalidField, PhoneNumber};

/// Passwords are at least this many characters…
const MIN_PASSWORD_CHARS: usize = 8;
/// …and at most this many bytes, so hashing one costs what hashing any other does.
const MAX_PASSWORD_BYTES: usize = 1024;
/// An agent has at least one number and at most this many.
const MAX_NUMBERS: usize = 50;

/// A new agent's checked fields; the password is checked and left to the caller to hash.
#[derive(Clone, Debug)]
pub struct NewAgent {
    pub email: Email,
    pub name: AgentName,
    pub numbers: Vec<PhoneNumber>,
}

impl NewAgent {
    /// Checks the fields in the order a form shows them; the error names the first bad one.
    pub fn parse(
        email: &str,
        name: &str,
        password: &str,
        numbers: &[String],
    ) -> Result<Self, InvalidField> {
        let email = Email::try_from(email)?;
        let name = AgentName::try_from(name)?;
        if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
            return Err(InvalidField::new("password must be at least 8 characters"));
        }
        if numbers.is_empty() || numbers.len() > MAX_NUMBERS {
            return Err(InvalidField::new(
                "numbers must list 1 to 50 Twilio numbers",
            ));
        }
        let numbers = PhoneNumber::parse_all("numbers", numbers)?;
        Ok(Self {
            email,
            name,
            numbers,
        })
    }

    /// Whether `password` may be a password at all (what [`NewAgent::parse`] demands):
    /// longer ones are never checked.
    pub fn password_fits(password: &str) -> bool {
        password.len() <= MAX_PASSWORD_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        email: &str,
        name: &str,
        password: &str,
        numbers: &[&str],
    ) -> Result<NewAgent, String> {
        let numbers: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
        NewAgent::parse(email, name, password, &numbers).map_err(|e| e.to_string())
    }

    #[test]
    fn every_field_is_parsed() {
        let agent = parse(" Ana@X.io", " Ana ", "correct horse", &["(415) 555-0100"]).unwrap();
        assert_eq!(agent.email.as_str(), "ana@x.io");
        assert_eq!(agent.name.as_str(), "Ana");
        assert_eq!(PhoneNumber::strings(&agent.numbers), ["+14155550100"]);
    }

    #[test]
    fn the_first_bad_field_is_named() {
        let n = ["+14155550100"];
        for (email, name, password, numbers, field) in [
            ("ana", "Ana", "correct horse", &n[..], "email"),
            ("a@x.io", "\u{200B}", "correct horse", &n[..], "name"),
            ("a@x.io", "Ana", "short", &n[..], "password"),
            ("a@x.io", "Ana", &"x".repeat(1025), &n[..], "password"),
            ("a@x.io", "Ana", "correct horse", &[][..], "numbers"),
            ("a@x.io", "Ana", "correct horse", &["nope"][..], "numbers"),
        ] {
            let err = parse(email, name, password, numbers).unwrap_err();
            assert!(err.starts_with(field), "{field}: {err}");
        }
        let many: Vec<&str> = vec!["+14155550100"; 51];
        assert!(parse("a@x.io", "Ana", "correct horse", &many).is_err());
    }
}
