//! Answers to recent gRPC writes by `(client_id, request_id)`, so a
//! retried Put or Delete is applied once. Bounded: the oldest answers are
//! forgotten first, and none is kept longer than [`KEEP_FOR`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Answers remembered at most.
const CAPACITY: usize = 100_000;
/// How long an answer is remembered.
pub const KEEP_FOR: Duration = Duration::from_secs(600);

type Id = (String, u64);

/// Recent answers of type `A`.
pub struct RequestIds<A> {
    inner: Mutex<Inner<A>>,
}

struct Inner<A> {
    answers: HashMap<Id, (Instant, A)>,
    order: VecDeque<Id>,
}

impl<A: Clone> Default for RequestIds<A> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                answers: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }
}

impl<A: Clone> RequestIds<A> {
    /// The answer given to this request before, if remembered.
    pub fn answered(&self, client_id: &str, request_id: u64) -> Option<A> {
        if client_id.is_empty() {
            return None;
        }
        let inner = self.inner.lock();
        inner
            .answers
            .get(&(client_id.to_owned(), request_id))
            .filter(|(at, _)| at.elapsed() < KEEP_FOR)
            .map(|(_, a)| a.clone())
    }

    /// Remembers the answer to this request.
    pub fn remember(&self, client_id: &str, request_id: u64, answer: A) {
        if client_id.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        let id = (client_id.to_owned(), request_id);
        if inner
            .answers
            .insert(id.clone(), (Instant::now(), answer))
            .is_none()
        {
            inner.order.push_back(id);
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.answers.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_client_and_request_and_forgets_the_oldest() {
        let ids = RequestIds::default();
        ids.remember("c", 1, 10u32);
        assert_eq!(ids.answered("c", 1), Some(10));
        assert_eq!(ids.answered("c", 2), None);
        assert_eq!(ids.answered("d", 1), None);
        ids.remember("", 1, 5);
        assert_eq!(ids.answered("", 1), None, "no client id, no memory");
        for i in 0..CAPACITY as u64 {
            ids.remember("bulk", i, 0);
        }
        assert_eq!(ids.answered("c", 1), None, "the oldest was forgotten");
        assert_eq!(ids.answered("bulk", CAPACITY as u64 - 1), Some(0));
    }
}
