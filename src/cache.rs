//! Short-lived per-node copies of database reads, keyed by user: a hot read costs no query while nothing
//! changes. The code that changes the rows drops the copy after its commit. Each drop gives the entry a new
//! generation number, and a read stores what it loaded only if the number it saw before its query still
//! holds, so rows read before a change never outlive it. Numbers are never reused, so an entry dropped and
//! made again cannot take an older read either.
//!
//! A copy that only aged (nothing dropped it) can be served a while longer when `serving_stale_for` says
//! so, to the requests that come while one of them reloads it: a slow database then delays that one
//! request instead of every request for the key. A drop still ends the copy at once.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use uuid::Uuid;

/// Entries kept before stale ones are swept out.
const LIMIT: usize = 100_000;

struct Entry<V> {
    generation: u64,
    copy: Option<(Arc<V>, Instant)>,
    /// A request is reloading the aged copy; the others are served the old copy meanwhile.
    reloading: bool,
}

pub struct Cache<V> {
    life: Duration,
    /// How long past its life an aged copy is served while a reload runs.
    stale_for: Duration,
    entries: RwLock<HashMap<Uuid, Entry<V>>>,
    generations: AtomicU64,
}

/// Either the copy, or the ticket to store a fresh one.
enum Lookup<V> {
    Fresh(Arc<V>),
    Missing(u64),
}

impl<V> Cache<V> {
    /// Copies that are served for `life` after they were loaded.
    pub fn new(life: Duration) -> Self {
        Self {
            life,
            stale_for: Duration::ZERO,
            entries: RwLock::new(HashMap::new()),
            generations: AtomicU64::new(0),
        }
    }

    /// Also serves an aged copy up to `stale_for` past its life to the requests that come while one
    /// request reloads it. A reload that gives up without storing leaves the copy served until then; the
    /// first request after it reloads.
    pub fn serving_stale_for(self, stale_for: Duration) -> Self {
        Self { stale_for, ..self }
    }

    /// The copy for `key` while it is fresh; otherwise `load` runs and its answer is kept (unless `key` was
    /// dropped meanwhile) and returned.
    pub async fn get_or_load<E, Load>(&self, key: Uuid, load: Load) -> Result<Arc<V>, E>
    where
        Load: Future<Output = Result<V, E>>,
    {
        match self.lookup(key) {
            Lookup::Fresh(copy) => Ok(copy),
            Lookup::Missing(generation) => {
                let value = Arc::new(load.await?);
                self.store(key, generation, value.clone());
                Ok(value)
            }
        }
    }

    /// The rows behind `key` changed (call after the change has committed).
    pub fn invalidate(&self, key: &Uuid) {
        let generation = self.next_generation();
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(key) {
            entry.generation = generation;
            entry.copy = None;
            entry.reloading = false;
        }
    }

    /// Drops every copy: after the node may have missed changes.
    pub fn invalidate_all(&self) {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    fn lookup(&self, key: Uuid) -> Lookup<V> {
        {
            let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(copy) = entries.get(&key).and_then(|entry| self.servable(entry)) {
                return Lookup::Fresh(copy);
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= LIMIT {
            entries.retain(|_, entry| self.servable(entry).is_some());
        }
        let generation = self.next_generation();
        let entry = entries.entry(key).or_insert(Entry {
            generation,
            copy: None,
            reloading: false,
        });
        // Looked at again: another request may have stored or begun a reload since the read above.
        if let Some(copy) = self.servable(entry) {
            return Lookup::Fresh(copy);
        }
        entry.reloading = true;
        Lookup::Missing(entry.generation)
    }

    /// The entry's copy while it is fresh, or while a reload runs and it is aged less than `stale_for` past
    /// its life.
    fn servable(&self, entry: &Entry<V>) -> Option<Arc<V>> {
        let (copy, stored) = entry.copy.as_ref()?;
        let age = stored.elapsed();
        (age < self.life || (entry.reloading && age < self.life + self.stale_for)).then(|| copy.clone())
    }

    fn store(&self, key: Uuid, generation: u64, value: Arc<V>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(&key)
            && entry.generation == generation
        {
            entry.copy = Some((value, Instant::now()));
            entry.reloading = false;
        }
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies() -> Cache<u32> {
        Cache::new(Duration::from_secs(60))
    }

    /// The ticket a read gets when the copy is missing.
    fn ticket(copies: &Cache<u32>, key: Uuid) -> u64 {
        match copies.lookup(key) {
            Lookup::Missing(generation) => generation,
            Lookup::Fresh(_) => panic!("an empty copy answered a value"),
        }
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let copies = copies();
        let key = Uuid::now_v7();
        let generation = ticket(&copies, key);
        copies.invalidate(&key);
        copies.store(key, generation, Arc::new(1));
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }

    #[test]
    fn a_read_is_kept_until_a_change() {
        let copies = copies();
        let key = stored_copy(&copies, 1);
        assert!(matches!(copies.lookup(key), Lookup::Fresh(value) if *value == 1));
        copies.invalidate(&key);
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }

    #[test]
    fn a_dropped_entry_made_again_does_not_take_an_older_read() {
        let copies = copies();
        let key = Uuid::now_v7();
        let old = ticket(&copies, key);
        copies.invalidate_all();
        let new = ticket(&copies, key);
        copies.store(key, old, Arc::new(1));
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
        copies.store(key, new, Arc::new(2));
        assert!(matches!(copies.lookup(key), Lookup::Fresh(value) if *value == 2));
    }

    /// A new key whose copy holds `value`.
    fn stored_copy(copies: &Cache<u32>, value: u32) -> Uuid {
        let key = Uuid::now_v7();
        let generation = ticket(copies, key);
        copies.store(key, generation, Arc::new(value));
        key
    }

    /// Copies that age at once and are served stale for a minute while a reload runs.
    fn stale_copies() -> Cache<u32> {
        Cache::new(Duration::ZERO).serving_stale_for(Duration::from_secs(60))
    }

    #[test]
    fn an_aged_copy_is_served_while_one_request_reloads_it() {
        let copies = stale_copies();
        let key = stored_copy(&copies, 1);
        // The first request after the copy aged reloads it; the others meanwhile get the old copy.
        let reload = ticket(&copies, key);
        assert!(matches!(copies.lookup(key), Lookup::Fresh(value) if *value == 1));
        assert!(matches!(copies.lookup(key), Lookup::Fresh(value) if *value == 1));
        copies.store(key, reload, Arc::new(2));
        // Stored, it ages at once again: the next request reloads, and the others get the new copy.
        ticket(&copies, key);
        assert!(matches!(copies.lookup(key), Lookup::Fresh(value) if *value == 2));
    }

    #[test]
    fn a_dropped_copy_is_never_served_stale() {
        let copies = stale_copies();
        let key = stored_copy(&copies, 1);
        let reload = ticket(&copies, key);
        copies.invalidate(&key);
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
        copies.store(key, reload, Arc::new(1));
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }

    #[test]
    fn without_a_stale_window_every_request_reloads_an_aged_copy() {
        let copies = Cache::<u32>::new(Duration::ZERO);
        let key = stored_copy(&copies, 1);
        ticket(&copies, key);
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }

    #[test]
    fn an_aged_copy_is_not_served_past_the_stale_window() {
        let copies = Cache::<u32>::new(Duration::ZERO).serving_stale_for(Duration::from_millis(300));
        let key = stored_copy(&copies, 1);
        // This reload never stores (as when its request gave up): the copy is served until the window ends.
        ticket(&copies, key);
        assert!(matches!(copies.lookup(key), Lookup::Fresh(_)));
        std::thread::sleep(Duration::from_millis(350));
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }

    #[test]
    fn a_copy_ages_out() {
        let copies = Cache::<u32>::new(Duration::ZERO);
        let key = stored_copy(&copies, 1);
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }
}
