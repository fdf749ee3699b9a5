//! Short-lived per-node copies of database reads, keyed by user: a hot read costs no query while nothing
//! changes. The code that changes the rows drops the copy after its commit. Each drop gives the entry a new
//! generation number, and a read stores what it loaded only if the number it saw before its query still
//! holds, so rows read before a change never outlive it. Numbers are never reused, so an entry dropped and
//! made again cannot take an older read either.

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
}

pub struct Copies<V> {
    life: Duration,
    entries: RwLock<HashMap<Uuid, Entry<V>>>,
    generations: AtomicU64,
}

/// Either the copy, or the ticket to store a fresh one.
enum Lookup<V> {
    Fresh(Arc<V>),
    Missing(u64),
}

impl<V> Copies<V> {
    /// Copies that are served for `life` after they were loaded.
    pub fn new(life: Duration) -> Self {
        Self {
            life,
            entries: RwLock::new(HashMap::new()),
            generations: AtomicU64::new(0),
        }
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
    pub fn forget(&self, key: &Uuid) {
        let generation = self.next_generation();
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(key) {
            entry.generation = generation;
            entry.copy = None;
        }
    }

    /// Drops every copy: after the node may have missed changes.
    pub fn forget_all(&self) {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    fn lookup(&self, key: Uuid) -> Lookup<V> {
        {
            let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(Entry {
                copy: Some((copy, stored)),
                ..
            }) = entries.get(&key)
                && stored.elapsed() < self.life
            {
                return Lookup::Fresh(copy.clone());
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= LIMIT {
            let life = self.life;
            entries.retain(|_, entry| matches!(&entry.copy, Some((_, stored)) if stored.elapsed() < life));
        }
        let generation = self.next_generation();
        let entry = entries.entry(key).or_insert(Entry { generation, copy: None });
        Lookup::Missing(entry.generation)
    }

    fn store(&self, key: Uuid, generation: u64, value: Arc<V>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(&key)
            && entry.generation == generation
        {
            entry.copy = Some((value, Instant::now()));
        }
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies() -> Copies<u32> {
        Copies::new(Duration::from_secs(60))
    }

    /// The ticket a read gets when the copy is missing.
    fn ticket(copies: &Copies<u32>, key: Uuid) -> u64 {
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
        copies.forget(&key);
        copies.store(key, generation, Arc::new(1));
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }

    #[test]
    fn a_read_is_kept_until_a_change() {
        let copies = copies();
        let key = Uuid::now_v7();
        let generation = ticket(&copies, key);
        copies.store(key, generation, Arc::new(1));
        assert!(matches!(copies.lookup(key), Lookup::Fresh(value) if *value == 1));
        copies.forget(&key);
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }

    #[test]
    fn a_dropped_entry_made_again_does_not_take_an_older_read() {
        let copies = copies();
        let key = Uuid::now_v7();
        let old = ticket(&copies, key);
        copies.forget_all();
        let new = ticket(&copies, key);
        copies.store(key, old, Arc::new(1));
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
        copies.store(key, new, Arc::new(2));
        assert!(matches!(copies.lookup(key), Lookup::Fresh(value) if *value == 2));
    }

    #[test]
    fn a_copy_ages_out() {
        let copies = Copies::<u32>::new(Duration::ZERO);
        let key = Uuid::now_v7();
        let generation = ticket(&copies, key);
        copies.store(key, generation, Arc::new(1));
        assert!(matches!(copies.lookup(key), Lookup::Missing(_)));
    }
}
