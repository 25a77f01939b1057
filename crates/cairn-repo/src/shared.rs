//! One loaded value shared by concurrent users, loaded once however many ask at the same
//! time, and loaded again when asked to, when it is too old, or when a caller needs one
//! loaded after a given moment.
//!
//! It exists for the repository index: reading it costs time and memory in proportion to the
//! repository, and every archive reading its own made a run over N resources cost O(N²) and
//! hold N copies at once.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    /// Held by the one thread that loads, so that N threads finding nothing load once.
    loading: Mutex<()>,
    max_age: Duration,
}

struct State<T> {
    current: Option<Loaded<T>>,
    /// The number the next load gets; loads are numbered in the order they start.
    next: u64,
    /// Loads numbered below this started before the last `invalidate` and are not used.
    floor: u64,
}

struct Loaded<T> {
    value: Arc<T>,
    seq: u64,
    started: Instant,
}

enum Lookup<T> {
    Fresh((Arc<T>, u64)),
    /// Usable, but older than `max_age`.
    Old((Arc<T>, u64)),
    Missing,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Shared<T> {
    pub(crate) fn new(max_age: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                current: None,
                next: 0,
                floor: 0,
            }),
            loading: Mutex::new(()),
            max_age,
        }
    }

    /// A mark of the present moment: `get(mark, ..)` returns only a value whose load started
    /// after this call.
    pub(crate) fn mark(&self) -> u64 {
        lock(&self.state).next
    }

    /// Forgets the value: the next `get` loads afresh (a load under way when this is called
    /// is not kept either, it may have started too early).
    pub(crate) fn invalidate(&self) {
        let mut s = lock(&self.state);
        s.floor = s.next;
        s.current = None;
    }

    /// The shared value and the number of its load. It is loaded with `load` when there is
    /// none, or none numbered `after` or higher (a [`mark`](Self::mark), or one more than a
    /// value found wanting; 0 for any), or when it is older than the maximum age: then one
    /// caller reloads while the others go on with the old value.
    pub(crate) fn get<E>(
        &self,
        after: u64,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<(Arc<T>, u64), E> {
        let _loading = match self.lookup(after) {
            Lookup::Fresh(v) => return Ok(v),
            Lookup::Old(old) => match self.loading.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => return Ok(old),
            },
            Lookup::Missing => lock(&self.loading),
        };
        // Another thread may have loaded while this one waited for the lock.
        if let Lookup::Fresh(v) = self.lookup(after) {
            return Ok(v);
        }
        let seq = {
            let mut s = lock(&self.state);
            s.next += 1;
            s.next - 1
        };
        let started = Instant::now();
        let value = Arc::new(load()?);
        let mut s = lock(&self.state);
        if seq >= s.floor && s.current.as_ref().is_none_or(|c| c.seq < seq) {
            s.current = Some(Loaded {
                value: value.clone(),
                seq,
                started,
            });
        }
        Ok((value, seq))
    }

    fn lookup(&self, after: u64) -> Lookup<T> {
        let s = lock(&self.state);
        match &s.current {
            Some(c) if c.seq >= after.max(s.floor) => {
                let v = (c.value.clone(), c.seq);
                if c.started.elapsed() < self.max_age {
                    Lookup::Fresh(v)
                } else {
                    Lookup::Old(v)
                }
            }
            _ => Lookup::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counting(loads: &AtomicU64) -> impl FnOnce() -> Result<u64, ()> + '_ {
        move || {
            std::thread::sleep(Duration::from_millis(20));
            Ok(loads.fetch_add(1, Ordering::SeqCst))
        }
    }

    #[test]
    fn many_threads_finding_nothing_load_once() {
        let shared = Shared::new(Duration::from_secs(60));
        let loads = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 0));
            }
        });
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn invalidate_and_marks_force_a_new_load() {
        let shared = Shared::new(Duration::from_secs(60));
        let loads = AtomicU64::new(0);
        assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 0);
        assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 0, "kept");
        shared.invalidate();
        assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 1);
        let mark = shared.mark();
        assert_eq!(*shared.get(mark, counting(&loads)).unwrap().0, 2);
        assert_eq!(
            *shared.get(mark, counting(&loads)).unwrap().0,
            2,
            "loaded after"
        );
        assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 2);
    }

    #[test]
    fn an_old_value_is_reloaded_and_errors_keep_the_old_one() {
        let shared = Shared::new(Duration::ZERO);
        let loads = AtomicU64::new(0);
        assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 0);
        assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 1);
        assert!(shared.get(0, || Err::<u64, _>("down")).is_err());
        let shared = Shared::new(Duration::from_secs(60));
        assert_eq!(*shared.get(0, counting(&loads)).unwrap().0, 2);
        assert!(shared.get(shared.mark(), || Err::<u64, _>("down")).is_err());
        assert_eq!(
            *shared.get(0, counting(&loads)).unwrap().0,
            2,
            "still there"
        );
    }

    #[test]
    fn a_value_found_wanting_is_replaced_once_for_all_who_found_it() {
        let shared = Shared::new(Duration::from_secs(60));
        let loads = AtomicU64::new(0);
        let (_, seq) = shared.get(0, counting(&loads)).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let (v, _) = shared.get(seq + 1, counting(&loads)).unwrap();
                    assert_eq!(*v, 1);
                });
            }
        });
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }
}
