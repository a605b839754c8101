//! Expiry tests: deadlines read, kept and cleared as Redis does; expired
//! values become the same tombstone on every replica; bounded collection.

use std::num::NonZeroU64;

use super::*;

fn store(node: &str) -> Store {
    Store::new(StoreOptions {
        node_id: node.into(),
        ..StoreOptions::default()
    })
    .expect("store")
}

fn at(ms: u64) -> Ttl {
    Ttl::At(NonZeroU64::new(ms).expect("nonzero"))
}

fn set_ttl(s: &Store, key: &[u8], value: &[u8], ttl: Ttl, when: SetWhen) -> WriteResult {
    s.apply_local(WriteOp::SetWith {
        key,
        value,
        ttl,
        when,
    })
    .expect("set")
    .0
}

fn expire(s: &Store, key: &[u8], deadline: Option<u64>, when: ExpireWhen) -> bool {
    let op = WriteOp::Expire {
        key,
        deadline: deadline.and_then(NonZeroU64::new),
        when,
    };
    matches!(
        s.apply_local(op).expect("expire").0,
        WriteResult::Conditional { written: true, .. }
    )
}

fn later(s: &Store, ms: u64) -> u64 {
    s.now_ms() + ms
}

#[test]
fn a_value_reads_as_absent_once_its_deadline_passed() {
    let s = store("a");
    set_ttl(&s, b"k", b"v", at(later(&s, 60_000)), SetWhen::Always);
    assert_eq!(s.get(b"k").as_deref(), Some(&b"v"[..]));
    assert!(s.deadline(b"k").is_some_and(|d| d.is_some()));
    set_ttl(&s, b"gone", b"v", at(1), SetWhen::Always);
    assert_eq!(s.get(b"gone"), None);
    assert!(!s.contains(b"gone"));
    assert_eq!(s.deadline(b"gone"), None);
    assert!(s.scan(b"").iter().all(|k| &k[..] != b"gone"));
    // Its entry reads as what it becomes: the expired tombstone.
    let e = s.entry(b"gone").expect("entry");
    assert!(e.is_tombstone() && e.expires_at.is_some());
}

#[test]
fn set_clears_a_deadline_keepttl_and_incr_keep_it() {
    let s = store("a");
    let d = later(&s, 60_000);
    set_ttl(&s, b"k", b"1", at(d), SetWhen::Always);
    s.apply_local(WriteOp::Increment {
        key: b"k",
        delta: 1,
    })
    .expect("incr");
    assert_eq!(s.deadline(b"k"), Some(Some(d)));
    set_ttl(&s, b"k", b"x", Ttl::Keep, SetWhen::Always);
    assert_eq!(s.deadline(b"k"), Some(Some(d)));
    s.apply_local(WriteOp::Set {
        key: b"k",
        value: b"y",
    })
    .expect("set");
    assert_eq!(s.deadline(b"k"), Some(None));
    assert_eq!(s.expiring_count(), 0);
}

#[test]
fn conditional_sets_answer_whether_they_wrote_and_the_old_value() {
    let s = store("a");
    let r = set_ttl(&s, b"k", b"1", Ttl::Clear, SetWhen::Present);
    assert_eq!(
        r,
        WriteResult::Conditional {
            written: false,
            old: None
        }
    );
    let r = set_ttl(&s, b"k", b"1", Ttl::Clear, SetWhen::Absent);
    assert_eq!(
        r,
        WriteResult::Conditional {
            written: true,
            old: None
        }
    );
    let r = set_ttl(&s, b"k", b"2", Ttl::Clear, SetWhen::Absent);
    let old = Some(Box::from(&b"1"[..]));
    assert_eq!(
        r,
        WriteResult::Conditional {
            written: false,
            old
        }
    );
    // An expired key counts as absent.
    set_ttl(&s, b"e", b"v", at(1), SetWhen::Always);
    let r = set_ttl(&s, b"e", b"w", Ttl::Clear, SetWhen::Absent);
    assert_eq!(
        r,
        WriteResult::Conditional {
            written: true,
            old: None
        }
    );
    assert_eq!(s.get(b"e").as_deref(), Some(&b"w"[..]));
}

#[test]
fn expire_conditions_follow_redis() {
    let s = store("a");
    assert!(!expire(
        &s,
        b"missing",
        Some(later(&s, 1_000)),
        ExpireWhen::Always
    ));
    s.apply_local(WriteOp::Set {
        key: b"k",
        value: b"v",
    })
    .expect("set");
    let (near, far) = (later(&s, 10_000), later(&s, 20_000));
    assert!(!expire(&s, b"k", Some(far), ExpireWhen::HasDeadline));
    assert!(
        !expire(&s, b"k", Some(far), ExpireWhen::Later),
        "no deadline is never"
    );
    assert!(
        !expire(&s, b"k", None, ExpireWhen::Always),
        "PERSIST without one"
    );
    assert!(expire(&s, b"k", Some(far), ExpireWhen::NoDeadline));
    assert!(!expire(&s, b"k", Some(near), ExpireWhen::NoDeadline));
    assert!(!expire(&s, b"k", Some(near), ExpireWhen::Later));
    assert!(expire(&s, b"k", Some(near), ExpireWhen::Earlier));
    assert!(expire(&s, b"k", Some(far), ExpireWhen::Later));
    assert!(expire(&s, b"k", Some(near), ExpireWhen::HasDeadlineEarlier));
    assert_eq!(s.deadline(b"k"), Some(Some(near)));
    assert!(expire(&s, b"k", None, ExpireWhen::Always));
    assert_eq!(s.deadline(b"k"), Some(None));
    // A deadline in the past expires the key at once.
    assert!(expire(&s, b"k", Some(1), ExpireWhen::Always));
    assert_eq!(s.get(b"k"), None);
}

#[test]
fn replicas_expire_into_the_same_entry_and_root_without_talking() {
    let a = store("a");
    let b = store("b");
    let deadline = later(&a, 40);
    let (_, changes) = a
        .apply_local(WriteOp::SetWith {
            key: b"k",
            value: b"v",
            ttl: at(deadline),
            when: SetWhen::Always,
        })
        .expect("set");
    for c in changes {
        b.merge(&c.key, c.entry).expect("merge");
    }
    for i in 0..50u32 {
        a.apply_local(WriteOp::Set {
            key: format!("plain{i}").as_bytes(),
            value: b"x",
        })
        .expect("set");
    }
    for i in 0..50u32 {
        let e = a.entry(format!("plain{i}").as_bytes()).expect("entry");
        b.merge(format!("plain{i}").as_bytes(), e).expect("merge");
    }
    assert_eq!(a.root(), b.root());
    std::thread::sleep(std::time::Duration::from_millis(60));
    let mut cursor = ExpiryCursor::default();
    let mut expired = 0;
    // Enough ticks to visit every shard.
    for _ in 0..100 {
        expired += a
            .expire_tick(&mut cursor, expiry::TICK_BUDGET)
            .expect("tick");
    }
    assert_eq!(expired, 1);
    assert_ne!(a.root(), b.root(), "b has not expired it yet");
    let mut cursor = ExpiryCursor::default();
    for _ in 0..100 {
        b.expire_tick(&mut cursor, expiry::TICK_BUDGET)
            .expect("tick");
    }
    assert_eq!(a.root(), b.root());
    assert_eq!(a.len(), 50);
    assert_eq!(a.expiring_count(), 0);
    let tomb = a.entry(b"k").expect("kept as a tombstone");
    assert!(tomb.is_tombstone());
    assert_eq!(tomb.expires_at, NonZeroU64::new(deadline));
}

#[test]
fn the_expired_tombstone_replaces_its_value_but_not_a_later_write() {
    let s = store("a");
    let d = NonZeroU64::new(s.now_ms() + 60_000);
    let live = Entry {
        version: Version::new(100, 1),
        value: Some(Box::from(&b"v"[..])),
        expires_at: d,
    };
    s.merge(b"k", live.clone()).expect("merge");
    assert_eq!(
        s.merge(b"k", live.expired()).expect("merge"),
        MergeOutcome::Applied
    );
    assert_eq!(
        s.merge(b"k", live.clone()).expect("merge"),
        MergeOutcome::Stale
    );
    let rewritten = Entry {
        version: Version::new(101, 2),
        value: Some(Box::from(&b"w"[..])),
        expires_at: None,
    };
    s.merge(b"j", rewritten.clone()).expect("merge");
    let old_expiry = Entry {
        version: Version::new(100, 1),
        value: None,
        expires_at: d,
    };
    assert_eq!(
        s.merge(b"j", old_expiry).expect("merge"),
        MergeOutcome::Stale
    );
    // A value that arrives already expired is stored as its tombstone.
    let past = Entry {
        version: Version::new(100, 1),
        value: Some(Box::from(&b"v"[..])),
        expires_at: NonZeroU64::new(1),
    };
    s.merge(b"p", past.clone()).expect("merge");
    assert_eq!(s.entry(b"p"), Some(past.expired()));
    assert_eq!(s.len(), 1);
}

#[test]
fn an_expired_tombstone_ages_from_its_deadline() {
    let s = store("a");
    let now = s.now_ms();
    // Written long ago, expired a moment ago.
    let e = Entry {
        version: Version::new(crate::clock::from_physical_ms(now - 100_000), 1),
        value: None,
        expires_at: NonZeroU64::new(now - 10),
    };
    s.merge(b"k", e).expect("merge");
    assert_eq!(s.gc_tombstones(now, 50_000).expect("gc"), 0);
    assert_eq!(s.gc_tombstones(now + 60_000, 50_000).expect("gc"), 1);
}

#[test]
fn a_tick_converts_at_most_its_budget_and_the_next_goes_on() {
    let s = store("a");
    let d = later(&s, 30);
    for i in 0..5_000u32 {
        set_ttl(&s, format!("k{i}").as_bytes(), b"v", at(d), SetWhen::Always);
    }
    assert_eq!(s.expiring_count(), 5_000);
    std::thread::sleep(std::time::Duration::from_millis(40));
    let mut cursor = ExpiryCursor::default();
    let first = s
        .expire_tick(&mut cursor, std::time::Duration::ZERO)
        .expect("tick");
    assert!(first > 0 && first <= expiry::BATCH, "one batch: {first}");
    let mut total = first;
    for _ in 0..5_000 {
        if total == 5_000 {
            break;
        }
        total += s
            .expire_tick(&mut cursor, expiry::TICK_BUDGET)
            .expect("tick");
    }
    assert_eq!(total, 5_000);
    assert_eq!(s.len(), 0);
    assert_eq!(s.entry_count(), 5_000, "kept as tombstones");
}

#[test]
fn msetnx_writes_all_keys_or_none() {
    let s = store("a");
    let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"b", b"2")];
    let (r, changes) = s
        .apply_local(WriteOp::MultiSetIfAbsent { pairs: &pairs })
        .expect("msetnx");
    assert_eq!(
        r,
        WriteResult::Conditional {
            written: true,
            old: None
        }
    );
    assert_eq!(changes.len(), 2);
    let pairs: Vec<(&[u8], &[u8])> = vec![(b"c", b"3"), (b"b", b"9")];
    let (r, changes) = s
        .apply_local(WriteOp::MultiSetIfAbsent { pairs: &pairs })
        .expect("msetnx");
    assert_eq!(
        r,
        WriteResult::Conditional {
            written: false,
            old: None
        }
    );
    assert!(changes.is_empty());
    assert_eq!(s.get(b"c"), None);
    assert_eq!(s.get(b"b").as_deref(), Some(&b"2"[..]));
    // An expired key counts as absent.
    set_ttl(&s, b"e", b"v", at(1), SetWhen::Always);
    let pairs: Vec<(&[u8], &[u8])> = vec![(b"e", b"w")];
    let (r, _) = s
        .apply_local(WriteOp::MultiSetIfAbsent { pairs: &pairs })
        .expect("msetnx");
    assert_eq!(
        r,
        WriteResult::Conditional {
            written: true,
            old: None
        }
    );
}

#[test]
fn rename_moves_value_and_deadline_within_and_across_shards() {
    let s = store("a");
    let far = 4_000_000_000_000;
    let same_shard = (1..10_000)
        .map(|i| format!("to{i}"))
        .find(|k| s.locate(k.as_bytes()).shard == s.locate(b"from").shard)
        .expect("a key in the same shard");
    let other_shard = (1..10_000)
        .map(|i| format!("to{i}"))
        .find(|k| s.locate(k.as_bytes()).shard != s.locate(b"from").shard)
        .expect("a key in another shard");
    for to in [same_shard.as_bytes(), other_shard.as_bytes()] {
        set_ttl(&s, b"from", b"v", at(far), SetWhen::Always);
        let op = WriteOp::Rename {
            from: b"from",
            to,
            only_if_absent: false,
        };
        let (r, changes) = s.apply_local(op).expect("rename");
        assert!(matches!(r, WriteResult::Conditional { written: true, .. }));
        assert_eq!(changes.len(), 2, "the new key and the old key's tombstone");
        assert_eq!(s.get(b"from"), None);
        assert_eq!(s.get(to).as_deref(), Some(&b"v"[..]));
        let moved = s.entry(to).expect("entry");
        assert_eq!(moved.expires_at.map(NonZeroU64::get), Some(far));
        // RENAMENX does not replace a live key; a missing source is an error.
        set_ttl(&s, b"from", b"w", Ttl::Clear, SetWhen::Always);
        let nx = WriteOp::Rename {
            from: b"from",
            to,
            only_if_absent: true,
        };
        let (r, changes) = s.apply_local(nx).expect("renamenx");
        assert!(matches!(r, WriteResult::Conditional { written: false, .. }));
        assert!(changes.is_empty());
        assert_eq!(s.get(to).as_deref(), Some(&b"v"[..]));
        s.apply_local(WriteOp::Delete { key: b"from" })
            .expect("del");
        assert_eq!(
            s.apply_local(WriteOp::Rename {
                from: b"from",
                to,
                only_if_absent: false
            })
            .map(|(r, _)| r),
            Err(StoreError::NoSuchKey)
        );
    }
}

#[test]
fn incrbyfloat_keeps_the_deadline_and_refuses_non_numbers() {
    let s = store("a");
    let far = 4_000_000_000_000;
    set_ttl(&s, b"f", b"1.5", at(far), SetWhen::Always);
    let (r, changes) = s
        .apply_local(WriteOp::IncrementFloat {
            key: b"f",
            delta: b"0.25",
        })
        .expect("incrbyfloat");
    assert_eq!(r, WriteResult::Value(Box::from(&b"1.75"[..])));
    assert_eq!(changes.len(), 1);
    let entry = s.entry(b"f").expect("entry");
    assert_eq!(entry.expires_at.map(NonZeroU64::get), Some(far));
    for (value, delta, error) in [
        (&b"abc"[..], &b"1"[..], StoreError::NotAFloat),
        (b"1", b"x", StoreError::NotAFloat),
        (b"1", b"inf", StoreError::NotFinite),
    ] {
        set_ttl(&s, b"g", value, Ttl::Clear, SetWhen::Always);
        let op = WriteOp::IncrementFloat { key: b"g", delta };
        assert_eq!(s.apply_local(op).map(|(r, _)| r), Err(error));
        assert_eq!(s.get(b"g").as_deref(), Some(value), "left as it was");
    }
}

#[test]
fn incrbyfloat_never_stores_more_than_a_client_may_send() {
    let s = Store::new(StoreOptions {
        node_id: "a".into(),
        max_value_bytes: 1024,
        ..StoreOptions::default()
    })
    .expect("store");
    let huge = WriteOp::IncrementFloat {
        key: b"f",
        delta: b"1e4000",
    };
    assert_eq!(
        s.apply_local(huge).map(|(r, _)| r),
        Err(StoreError::ValueTooLarge { limit: 1024 })
    );
    assert_eq!(s.get(b"f"), None);
}
