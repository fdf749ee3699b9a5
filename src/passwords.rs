//! argon2id hashing and verification, always off the async workers and behind a bound on how many run at
//! once (each takes 19 MiB).
//!
//! argon2id runs with 19 MiB, t=2, p=1, on `PASSWORD_HASH_THREADS` threads (one per core by default) in the idle
//! scheduling class: any other thread that wakes runs first. Each thread keeps its 19 MiB of verification memory,
//! and a new hash takes another 19 MiB while it runs. At most 128 checks a thread wait or run (at least 256);
//! more are turned away with 503. Unknown addresses get a dummy verification, and a hash of older parameters is
//! redone at login.
//!
//! Unit tests run every argon2 variant through the reused working memory.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, PasswordHash},
};

use crate::domain::Password;

/// OWASP's argon2id parameters: 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;
/// The PHC prefix of a hash made with the current parameters; any other prefix is rehashed at login.
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the hashing task did not finish")]
    Task,
    #[error("too many password checks are waiting")]
    Busy,
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The stored hash uses other parameters than today's and should be replaced.
    pub needs_rehash: bool,
}

type Job = Box<dyn FnOnce() + Send>;

/// Puts the calling thread in the idle scheduling class. A hash takes tens of milliseconds of one core; a
/// request thread waiting behind one would add that to every request it serves. In the idle class the
/// hashes still take every core that is idle, and any other thread that wakes runs first. Niceness 10, the
/// earlier setting, still gave each hash thread a tenth of a busy core, and refreshes queued behind them
/// during a flood of sign-ins.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        let parameters = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads the parameters it is given; pid 0 names the calling thread.
        let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &parameters) };
        if result != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot lower the hashing threads' priority");
        }
    }
}

/// Hashes run on a fixed set of threads of their own: their number bounds both the CPU and the memory
/// argon2 takes: each thread keeps 19 MiB of working memory, which every verification and every new hash
/// (registration, password change) reuses.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: std::sync::mpsc::Sender<Job>,
    /// Hashes waiting for a thread or running now.
    in_flight: Arc<AtomicUsize>,
    /// Beyond this many, a request that needs a hash is turned away at once: waiting longer than a few
    /// seconds helps no client, and an unbounded queue lets a flood delay every sign-in without end.
    most_in_flight: usize,
    /// Verified when the account does not exist, so an unknown email costs the same time as a wrong password.
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    /// `concurrency` hashes run at once; more wait their turn, up to 128 a thread (at least 256 in all).
    pub fn new(concurrency: usize) -> Result<Self, PasswordError> {
        Self::with_queue(concurrency, (concurrency * 128).max(256))
    }

    /// `new` with the bound on hashes waiting or running.
    pub fn with_queue(concurrency: usize, most_in_flight: usize) -> Result<Self, PasswordError> {
        let dummy_hash = hash_now(crate::tokens::random_token(24).as_bytes())?;
        // That hash ran on the calling thread, which is no hashing thread: its 19 MiB are not kept.
        WORKING_MEMORY.with_borrow_mut(|memory| *memory = Vec::new());
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..concurrency.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    yield_to_requests();
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|error| PasswordError::Hashing(error.to_string()))?;
        }
        Ok(Self {
            jobs,
            in_flight: Arc::new(AtomicUsize::new(0)),
            most_in_flight: most_in_flight.max(1),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    /// How many hashes wait for a thread or run now.
    pub fn queue_depth(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let bytes = password.as_str().as_bytes().to_vec();
        self.run(move || hash_now(&bytes)).await?
    }

    pub async fn verify(&self, stored: &str, password: &Password) -> Result<Verification, PasswordError> {
        let stored = stored.to_owned();
        let bytes = password.as_str().as_bytes().to_vec();
        self.run(move || verify_now(&stored, &bytes)).await
    }

    /// A hash of a random secret that is kept nowhere: an account with it has no password anyone knows,
    /// and a login against it still spends a full verification.
    pub async fn unusable_hash(&self) -> Result<String, PasswordError> {
        let secret = crate::tokens::random_token(32).into_bytes();
        self.run(move || hash_now(&secret)).await?
    }

    /// The hash an account holds before it has a password: of a random secret that this process forgot at
    /// start, so nothing matches it, and a check against it still spends a full verification.
    pub fn placeholder_hash(&self) -> String {
        self.dummy_hash.as_str().to_owned()
    }

    /// Spends the time of a real verification and always fails.
    pub async fn verify_dummy(&self) -> Result<(), PasswordError> {
        let stored = self.dummy_hash.clone();
        self.run(move || {
            verify_now(&stored, b"a password that matches nothing");
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= self.most_in_flight {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(PasswordError::Busy);
        }
        let in_flight = self.in_flight.clone();
        let job: Job = Box::new(move || {
            let outcome = work();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = sender.send(outcome);
        });
        if self.jobs.send(job).is_err() {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(PasswordError::Task);
        }
        receiver.await.map_err(|_| PasswordError::Task)
    }
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|error| PasswordError::Hashing(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new hash of `password` with today's parameters and a fresh 128-bit salt, computed in this thread's reused
/// working memory. The crate's own `hash_password` allocates 19 MiB each time, and glibc kept those blocks in
/// per-thread arenas for good: two dozen registrations left a process at about 400 MiB resident.
fn hash_now(password: &[u8]) -> Result<String, PasswordError> {
    use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
    let argon2 = hasher()?;
    let blocks = argon2.params().block_count();
    let mut salt = [0u8; 16];
    crate::tokens::fill_random(&mut salt);
    let mut output = [0u8; 32];
    WORKING_MEMORY
        .with_borrow_mut(|memory| {
            if memory.len() < blocks {
                memory.resize(blocks, Block::new());
            }
            argon2.hash_password_into_with_memory(password, &salt, &mut output, &mut memory[..blocks])
        })
        .map_err(|error| PasswordError::Hashing(error.to_string()))?;
    // The PHC string format: base64 without padding, standard alphabet.
    Ok(format!(
        "{CURRENT_PREFIX}{}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    ))
}

/// One verification on the calling thread, as the hashing threads run it (with this thread's reused working
/// memory). The service goes through `PasswordHasher::verify`; the load tool measures its hash bound with this.
pub fn verify_now(stored: &str, password: &[u8]) -> Verification {
    let matches = matches_stored(stored, password).unwrap_or(false);
    Verification {
        matches,
        needs_rehash: matches && !stored.starts_with(CURRENT_PREFIX),
    }
}

thread_local! {
    /// The working memory of this thread's verifications, kept from one to the next: allocating and zeroing
    /// 19 MiB per login costs time, and argon2 overwrites every block it reads.
    static WORKING_MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// argon2 over `password` with the stored hash's algorithm, version, parameters and salt, compared with the
/// stored output in constant time (as `PasswordVerifier` does, with reused working memory). `None` when the
/// stored text is not a usable argon2 hash.
fn matches_stored(stored: &str, password: &[u8]) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let (salt, expected) = (parsed.salt.as_ref()?, parsed.hash.as_ref()?);
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let computed = buffer.get_mut(..expected.len())?;
    WORKING_MEMORY
        .with_borrow_mut(|memory| {
            if memory.len() < blocks {
                memory.resize(blocks, Block::new());
            }
            argon2.hash_password_into_with_memory(password, salt.as_ref(), computed, &mut memory[..blocks])
        })
        .ok()?;
    // `Output` compares in constant time.
    Some(Output::new(computed).ok()? == *expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordHasher as _;

    use super::*;

    #[tokio::test]
    async fn checks_past_the_queue_bound_are_turned_away_at_once() {
        let hasher = PasswordHasher::with_queue(1, 3).unwrap();
        let password = Password::for_login("a password to verify").unwrap();
        let stored = hasher.hash(&password).await.unwrap();
        let checks = (0..6).map(|_| hasher.verify(&stored, &password));
        let outcomes = futures_util::future::join_all(checks).await;
        let busy = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(PasswordError::Busy)))
            .count();
        assert_eq!(busy, 3, "three run or wait, three are turned away");
        assert!(outcomes.iter().flatten().all(|verification| verification.matches));
        // Once the queue has drained, checks are taken again.
        assert!(hasher.verify(&stored, &password).await.unwrap().matches);
        assert_eq!(hasher.queue_depth(), 0);
        // The request is answered 503 `service_unavailable`, to be tried again shortly.
        let answer = crate::error::AppError::from(PasswordError::Busy);
        assert_eq!(actix_web::ResponseError::status_code(&answer), 503);
        assert_eq!(answer.code().as_str(), "service_unavailable");
        let response = actix_web::ResponseError::error_response(&answer);
        assert_eq!(
            response.headers().get("retry-after").map(|value| value.as_bytes()),
            Some(&b"1"[..])
        );
    }

    #[tokio::test]
    async fn hash_uses_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new(2).unwrap();
        let password = Password::for_login("correct horse battery staple").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with(CURRENT_PREFIX));
        let verification = hasher.verify(&hash, &password).await.unwrap();
        assert_eq!(
            verification,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = Password::for_login("correct horse battery stapler").unwrap();
        assert!(!hasher.verify(&hash, &wrong).await.unwrap().matches);
        assert_ne!(
            hash,
            hasher.hash(&password).await.unwrap(),
            "each hash has a fresh salt"
        );
    }

    #[tokio::test]
    async fn older_parameters_ask_for_a_rehash() {
        let params = Params::new(8192, 1, 1, None).unwrap();
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let old: PasswordHash = weak.hash_password(b"correct horse battery staple").unwrap();
        let hasher = PasswordHasher::new(1).unwrap();
        let password = Password::for_login("correct horse battery staple").unwrap();
        let verification = hasher.verify(&old.to_string(), &password).await.unwrap();
        assert_eq!(
            verification,
            Verification {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn new_hashes_run_in_the_threads_reused_memory() {
        std::thread::spawn(|| {
            let blocks = hasher().unwrap().params().block_count();
            WORKING_MEMORY.with_borrow(|memory| assert!(memory.is_empty()));
            let hash = hash_now(b"correct horse battery staple").unwrap();
            WORKING_MEMORY.with_borrow(|memory| assert_eq!(memory.len(), blocks));
            // A standard PHC string that the crate's own verifier reads.
            let parsed = PasswordHash::new(&hash).unwrap();
            assert!(
                argon2::PasswordVerifier::verify_password(&hasher().unwrap(), b"correct horse battery staple", &parsed)
                    .is_ok()
            );
            assert_ne!(hash, hash_now(b"correct horse battery staple").unwrap(), "fresh salt");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_reused_working_memory_verifies_every_variant_and_size() {
        let password = b"correct horse battery staple";
        // The current parameters first, so the later, smaller hashes run in memory a larger one left behind.
        let current = hash_now(password).unwrap();
        assert!(verify_now(&current, password).matches);
        for algorithm in [Algorithm::Argon2d, Algorithm::Argon2i, Algorithm::Argon2id] {
            for version in [Version::V0x10, Version::V0x13] {
                for memory in [4096, 8192] {
                    let params = Params::new(memory, 1, 1, Some(24)).unwrap();
                    let hash = Argon2::new(algorithm, version, params)
                        .hash_password(password)
                        .unwrap()
                        .to_string();
                    assert!(verify_now(&hash, password).matches, "{hash}");
                    assert!(!verify_now(&hash, b"correct horse battery stapler").matches, "{hash}");
                }
            }
        }
        assert!(verify_now(&current, password).matches);
        assert!(!verify_now("$argon2id$v=19$m=19456,t=2,p=1$bm90IGEgaGFzaA", password).matches);
        assert!(!verify_now("not a hash", password).matches);
    }
}
