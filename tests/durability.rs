//! Crash tests with the real binary: acknowledged writes survive `kill -9`.
//!
//! Eight writer threads SET unique keys (overwrite some and DEL some of
//! their own acked keys) while the node runs with `storage.fsync = "always"`; the node is
//! killed with SIGKILL at a random moment; after a restart on the same data
//! directory every acknowledged SET is present with its value and every
//! acknowledged DEL is still deleted. Repeated for several random kill
//! points on one directory, so later rounds also re-check earlier ones.
//! `everysec` and `never` hand each write to the OS before the reply, so
//! they survive a process crash too (only a power failure or an OS crash
//! can take their unsynced tail).
//!
//! SIGKILL leaves the page cache intact, so these tests check that no reply
//! precedes its write; that `always` also fsyncs before the reply is
//! checked through the fsync counters (see `durability_restart.rs`).

mod common;
mod durability_support;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Client, NodeProcess};
use durability_support::{persistent, read_values};
use rand::Rng;

const WRITERS: usize = 8;

/// What the clients were told: the last acknowledged state of each key.
#[derive(Default)]
struct Acked {
    /// key -> value of an acknowledged SET (not later deleted).
    live: HashMap<String, String>,
    /// keys whose DEL was acknowledged.
    deleted: Vec<String>,
}

/// Sends one command; `None` once the connection is gone.
fn try_cmd(client: &mut Client, cmd: &str) -> Option<String> {
    client
        .writer
        .write_all(format!("{cmd}\r\n").as_bytes())
        .ok()?;
    let mut line = String::new();
    match client.reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// One writer: SETs unique keys, DELs every fourth acked key, until the
/// connection breaks or `stop` is set; counts its acknowledged SETs in
/// `acks`. Returns what was acknowledged and the keys whose fate is
/// unknown (reply lost).
fn writer(
    mut client: Client,
    round: usize,
    id: usize,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> Acked {
    let mut acked = Acked::default();
    let mut rng = rand::rng();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
        let key = format!("r{round}-w{id}-{i}");
        let value = format!("v{round}.{id}.{i}.{}", rng.random::<u32>());
        i += 1;
        match try_cmd(&mut client, &format!("SET {key} {value}")) {
            Some(reply) if reply == "OK\r\n" => {
                acked.live.insert(key.clone(), value.clone());
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Some(reply) => panic!("SET {key}: unexpected reply {reply:?}"),
            None => break,
        }
        if i % 3 == 0 {
            // Overwrite the key just written: an older value coming back
            // after recovery must be caught, not only a missing one.
            let newer = format!("{value}-overwritten");
            match try_cmd(&mut client, &format!("SET {key} {newer}")) {
                Some(reply) if reply == "OK\r\n" => {
                    acked.live.insert(key.clone(), newer);
                }
                Some(reply) => panic!("SET {key} (overwrite): unexpected reply {reply:?}"),
                None => {
                    // Unknown outcome: either value may be there.
                    acked.live.remove(&key);
                    break;
                }
            }
        }
        if i % 4 == 0 {
            let victim = acked.live.keys().next().cloned();
            if let Some(victim) = victim {
                match try_cmd(&mut client, &format!("DEL {victim}")) {
                    Some(reply) if reply == "DELETED\r\n" => {
                        acked.live.remove(&victim);
                        acked.deleted.push(victim);
                    }
                    Some(reply) => panic!("DEL {victim}: unexpected reply {reply:?}"),
                    None => {
                        // Unknown outcome: neither value nor absence is owed.
                        acked.live.remove(&victim);
                        break;
                    }
                }
            }
        }
    }
    acked
}

/// Checks that the node holds every acknowledged state.
fn verify(node: &NodeProcess, acked: &Acked, context: &str) {
    let mut client = node.client();
    let keys: Vec<String> = acked.live.keys().cloned().collect();
    let values = read_values(&mut client, &keys);
    let lost: Vec<&String> = keys
        .iter()
        .zip(&values)
        .filter(|(k, v)| v.as_deref() != Some(acked.live[*k].as_str()))
        .map(|(k, _)| k)
        .collect();
    assert!(
        lost.is_empty(),
        "{context}: {} of {} acknowledged SETs lost or wrong after restart, e.g. {:?}",
        lost.len(),
        keys.len(),
        &lost[..lost.len().min(5)]
    );
    let values = read_values(&mut client, &acked.deleted);
    let resurrected: Vec<&String> = acked
        .deleted
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect();
    assert!(
        resurrected.is_empty(),
        "{context}: {} acknowledged DELs came back after restart, e.g. {:?}",
        resurrected.len(),
        &resurrected[..resurrected.len().min(5)]
    );
}

/// `rounds` times: write with eight writers, `kill -9` at a random moment,
/// restart on the same directory and check every acknowledged write.
fn crash_rounds(fsync: &str, rounds: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut all = Acked::default();
    let mut rng = rand::rng();
    for round in 0..rounds {
        let mut node = NodeProcess::start(persistent("crash", &dir, fsync));
        // Everything acknowledged in earlier rounds must still be there.
        verify(
            &node,
            &all,
            &format!("{fsync} round {round} (before writing)"),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..WRITERS)
            .map(|id| {
                // Connected here, so no writer can still be connecting when
                // the node is killed.
                let client = node.client();
                let (stop, acks) = (stop.clone(), acks.clone());
                std::thread::spawn(move || writer(client, round, id, stop, acks))
            })
            .collect();
        // The random moment is counted from the first acknowledged write: on
        // a loaded machine the writers (and the first fsyncs) may need longer
        // than the shortest delay to get going.
        assert!(
            wait_until(Duration::from_secs(30), || acks.load(Ordering::Relaxed) > 0),
            "round {round}: no write was acknowledged within 30 s"
        );
        let kill_after = Duration::from_millis(rng.random_range(150..700));
        std::thread::sleep(kill_after);
        let killed_at = Instant::now();
        node.kill();
        stop.store(true, Ordering::Relaxed);
        let mut acked_this_round = 0;
        for h in handles {
            let acked = h.join().expect("writer thread");
            acked_this_round += acked.live.len() + acked.deleted.len();
            all.live.extend(acked.live);
            all.deleted.extend(acked.deleted);
        }
        assert!(
            acked_this_round > 0,
            "round {round}: no write was acknowledged before the kill"
        );
        eprintln!(
            "{fsync} round {round}: killed after {kill_after:?}, {acked_this_round} acked writes \
             (writers stopped {:?} after the kill)",
            killed_at.elapsed()
        );
        drop(node);
        let node = NodeProcess::start(persistent("crash", &dir, fsync));
        verify(&node, &all, &format!("{fsync} round {round}"));
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_with_fsync_always() {
    crash_rounds("always", 4);
}

#[test]
fn acknowledged_writes_survive_a_process_crash_with_fsync_everysec() {
    crash_rounds("everysec", 2);
}

#[test]
fn acknowledged_writes_survive_a_process_crash_with_fsync_never() {
    crash_rounds("never", 1);
}
