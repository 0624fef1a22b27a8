//! The one-time setup token: printed at start while there is no agent, it lets whoever
//! holds it create the first one, once.

use std::sync::{Mutex, MutexGuard};

use subtle::ConstantTimeEq;

use crate::store::Store;

/// The setup link's token, until it is used or an agent exists.
pub struct SetupToken(Mutex<Option<String>>);

impl SetupToken {
    /// A fresh random token while `needed` (there is no agent), else none.
    pub fn new(needed: bool) -> Self {
        Self(Mutex::new(
            needed.then(|| format!("{:032x}", rand::random::<u128>())),
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Option<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token, to print.
    pub fn get(&self) -> Option<String> {
        self.lock().clone()
    }

    pub fn matches(&self, candidate: &str) -> bool {
        is(self.lock().as_deref(), candidate)
    }

    /// Takes the token if `candidate` is it: of concurrent requests, one gets it.
    pub fn take(&self, candidate: &str) -> bool {
        let mut token = self.lock();
        let matches = is(token.as_deref(), candidate);
        if matches {
            *token = None;
        }
        matches
    }

    /// Puts a taken token back, when setup failed on our side.
    pub fn restore(&self, token: String) {
        self.lock().get_or_insert(token);
    }

    /// Whether the setup link with `candidate` may still be used: the token matches and no
    /// agent exists, wherever it was made. Once one does, the token dies.
    pub async fn is_open(&self, store: &Store, candidate: &str) -> bool {
        if !self.matches(candidate) {
            return false;
        }
        match store.count_agents().await {
            Ok(0) => true,
            Ok(_) => {
                *self.lock() = None;
                false
            }
            Err(_) => false,
        }
    }
}

fn is(token: Option<&str>, candidate: &str) -> bool {
    token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(candidate.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_once_and_put_back_on_our_failure() {
        let setup = SetupToken::new(true);
        let token = setup.get().unwrap();
        assert!(!setup.matches("wrong"));
        assert!(setup.matches(&token));
        assert!(setup.take(&token));
        assert!(!setup.take(&token), "one request gets it");
        setup.restore(token.clone());
        assert!(setup.matches(&token));
        assert_eq!(SetupToken::new(false).get(), None);
    }
}
