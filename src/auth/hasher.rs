//! Password hashing and checking with bounded concurrency. argon2 with its default (OWASP)
//! parameters takes about 19 MiB and tens of milliseconds of a core per call, so calls run
//! on the blocking pool, at most one per core at a time, and only [`QUEUE`] more may wait
//! for a turn: a flood gets a quick `503` instead of the server's memory. Checks reuse
//! their working memory, so what a flood leaves behind is one buffer per permit.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use argon2::Block;
use tokio::sync::Semaphore;

use super::{decoy_hash, hash_password, verify_password_in};
use crate::error::{AppError, PASSWORDS_BUSY};

/// How many callers may wait for a turn beyond those running.
pub const QUEUE: usize = 64;
/// Never more at once than this, however many cores: 8 × 19 MiB.
const MAX_PERMITS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks are waiting")]
    Busy,
    #[error(transparent)]
    Failed(anyhow::Error),
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Self::Busy(PASSWORDS_BUSY),
            HashError::Failed(e) => Self::Internal(e),
        }
    }
}

pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    size: usize,
    queue: usize,
    /// Callers running or waiting.
    admitted: AtomicUsize,
    running: Arc<AtomicUsize>,
    high_water: Arc<AtomicUsize>,
    /// argon2's working memory (~19 MiB each), kept between checks.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A caller's place among the admitted ones.
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordHasher {
    pub fn new(permits: usize, queue: usize) -> Self {
        let size = permits.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            queue,
            admitted: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            high_water: Arc::new(AtomicUsize::new(0)),
            memory: Arc::default(),
        }
    }

    /// One turn per core (at most [`MAX_PERMITS`]).
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::new(cores.min(MAX_PERMITS), QUEUE)
    }

    /// How many hash computations may run at once.
    pub fn permits(&self) -> usize {
        self.size
    }

    /// The most hash computations that ever ran at once.
    pub fn high_water(&self) -> usize {
        self.high_water.load(Ordering::SeqCst)
    }

    /// Whether a caller arriving now would be let in, so a request can give up before it
    /// does other work.
    pub fn has_room(&self) -> bool {
        self.admitted.load(Ordering::SeqCst) < self.size + self.queue
    }

    /// Checks `password` against `hash`, or against a decoy when there is none (an unknown
    /// email), so both take as long.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let memory = self.memory.clone();
        self.run(move || {
            // Each running check holds one buffer, so there are never more than permits.
            let mut blocks = lock(&memory).pop().unwrap_or_default();
            let hash = hash.as_deref().unwrap_or_else(|| decoy_hash());
            let ok = verify_password_in(&mut blocks, &password, hash);
            lock(&memory).push(blocks);
            ok
        })
        .await
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(HashError::Failed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.size + self.queue {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        let _admission = Admission(&self.admitted);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Failed(e.into()))?;
        let (running, high_water) = (self.running.clone(), self.high_water.clone());
        tokio::task::spawn_blocking(move || {
            // The permit lives as long as the work, even if the caller stops waiting for it.
            let _permit = permit;
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            high_water.fetch_max(now, Ordering::SeqCst);
            let out = work();
            running.fetch_sub(1, Ordering::SeqCst);
            out
        })
        .await
        .map_err(|e| HashError::Failed(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_its_permits_and_refuses_beyond_the_queue() {
        let hasher = Arc::new(PasswordHasher::new(2, 3));
        let (release, gate) = tokio::sync::watch::channel(false);
        let started = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for _ in 0..5 {
            let (hasher, started) = (hasher.clone(), started.clone());
            let mut gate = gate.clone();
            calls.push(tokio::spawn(async move {
                hasher
                    .run(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        let handle = tokio::runtime::Handle::current();
                        handle.block_on(gate.wait_for(|open| *open)).unwrap();
                    })
                    .await
            }));
        }
        while started.load(Ordering::SeqCst) < 2 || hasher.has_room() {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.run(|| ()).await, Err(HashError::Busy)));
        assert_eq!(started.load(Ordering::SeqCst), 2, "two run, three wait");
        release.send(true).unwrap();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert_eq!(hasher.high_water(), 2);
        assert!(hasher.has_room());
        assert!(hasher.run(|| ()).await.is_ok());
    }
}
