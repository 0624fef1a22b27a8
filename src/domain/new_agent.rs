//! What it takes to create an agent, from the setup page, the command line or an admin's
//! invite, and the rules for a password and a list of numbers wherever they change.

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
        Self::check_password(password)?;
        let numbers = Self::parse_numbers(numbers)?;
        Ok(Self {
            email,
            name,
            numbers,
        })
    }

    /// An invited agent: the same fields but the password, which they choose later.
    pub fn parse_invited(
        email: &str,
        name: &str,
        numbers: &[String],
    ) -> Result<Self, InvalidField> {
        Ok(Self {
            email: Email::try_from(email)?,
            name: AgentName::try_from(name)?,
            numbers: Self::parse_numbers(numbers)?,
        })
    }

    /// At least 8 characters, and not so long that hashing it costs more than another.
    pub fn check_password(password: &str) -> Result<(), InvalidField> {
        if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
            return Err(InvalidField::new("password must be at least 8 characters"));
        }
        Ok(())
    }

    /// An agent's numbers: 1 to 50, each E.164 once parsed.
    pub fn parse_numbers(numbers: &[String]) -> Result<Vec<PhoneNumber>, InvalidField> {
        if numbers.is_empty() || numbers.len() > MAX_NUMBERS {
            return Err(InvalidField::new(
                "numbers must list 1 to 50 Twilio numbers",
            ));
        }
        PhoneNumber::parse_all("numbers", numbers)
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
        assert_eq!(
            agent.numbers,
            [PhoneNumber::parse("n", "+14155550100").unwrap()]
        );
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

    #[test]
    fn an_invited_agent_is_checked_but_for_the_password() {
        let numbers = vec!["(415) 555-0100".to_owned()];
        let invited = NewAgent::parse_invited("Bo@X.io", "Bo", &numbers).unwrap();
        assert_eq!(invited.email.as_str(), "bo@x.io");
        assert_eq!(
            invited.numbers,
            [PhoneNumber::parse("n", "+14155550100").unwrap()]
        );
        for (email, name, numbers, field) in [
            ("bo", "Bo", numbers.clone(), "email"),
            ("bo@x.io", "", numbers.clone(), "name"),
            ("bo@x.io", "Bo", vec![], "numbers"),
            ("bo@x.io", "Bo", vec!["12".to_owned()], "numbers"),
        ] {
            let err = NewAgent::parse_invited(email, name, &numbers).unwrap_err();
            assert!(err.to_string().starts_with(field), "{field}: {err}");
        }
        assert!(NewAgent::check_password("1234567").is_err());
        assert!(NewAgent::check_password("12345678").is_ok());
    }
}
