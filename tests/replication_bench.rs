//! Replication benchmark (ignored by default; numbers, not assertions).
//!
//! ```text
//! cargo test --release --test replication_bench -- --ignored --nocapture
//! ```
//!
//! Three `merklekv` nodes (the release binary) on one local mosquitto:
//! 1. mosquitto's own publish→deliver time (QoS 1, rumqttc, ~100-byte
//!    payloads) at 1,000 and 10,000 messages/s;
//! 2. replication lag from a write's acknowledgement on n1 to its
//!    visibility on n2 (`GET` polled about every 0.1 ms once the write
//!    was acknowledged), at 1,000 and 10,000 writes/s;
//! 3. sustained replicated writes: `merklekv bench` writes to all three
//!    nodes at once, and the clock stops when all three roots are equal.

mod common;
mod replication_support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::{Client, NodeProcess};
use replication_support::*;

/// Seconds each rate is measured for.
const RUN_SECS: u64 = 5;

/// p50 / p99 / max of microsecond samples.
fn percentiles(mut us: Vec<u64>) -> (f64, f64, f64) {
    us.sort_unstable();
    if us.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.50), at(0.99), at(1.0))
}

/// Sleeps (or spins, for short waits) until `at`.
fn pace(at: Instant) {
    loop {
        let now = Instant::now();
        if now >= at {
            return;
        }
        let left = at - now;
        if left > Duration::from_micros(300) {
            std::thread::sleep(left - Duration::from_micros(200));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// mosquitto alone: QoS 1 publish → delivery to a second client.
fn broker_round_trip(broker: &Broker, rate: u64) -> (f64, f64, f64, usize) {
    use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Packet, QoS};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let topic = format!("probe/{}", std::process::id());
        let connect = |id: &str| {
            let options = MqttOptions::new(id, "127.0.0.1", broker.port);
            let (client, mut eventloop) = AsyncClient::new(options, 1024);
            let mut network = NetworkOptions::new();
            network.set_tcp_nodelay(true);
            eventloop.set_network_options(network);
            (client, eventloop)
        };
        let (sub, mut sub_loop) = connect("probe-sub");
        let (publ, mut pub_loop) = connect("probe-pub");
        sub.subscribe(&topic, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        // Wait for the subscription before publishing.
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(_))) = sub_loop.poll().await {
                break;
            }
        }
        let total = (rate * RUN_SECS) as usize;
        let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total]));
        let receiver = {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut lags = Vec::with_capacity(total);
                let deadline = Instant::now() + Duration::from_secs(RUN_SECS + 10);
                while lags.len() < total && Instant::now() < deadline {
                    let Ok(Ok(event)) =
                        tokio::time::timeout(Duration::from_secs(1), sub_loop.poll()).await
                    else {
                        continue;
                    };
                    if let Event::Incoming(Packet::Publish(p)) = event {
                        let now = Instant::now();
                        let mut seq = [0u8; 8];
                        if let Some(head) = p.payload.get(..8) {
                            seq.copy_from_slice(head);
                        }
                        let seq = u64::from_le_bytes(seq) as usize;
                        if let Some(Some(at)) = sent.lock().expect("sent").get(seq) {
                            lags.push(now.duration_since(*at).as_micros() as u64);
                        }
                    }
                }
                lags
            })
        };
        let driver = tokio::spawn(async move {
            loop {
                if pub_loop.poll().await.is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let interval = Duration::from_nanos(1_000_000_000 / rate);
        for seq in 0..total {
            let at = start + interval * seq as u32;
            let now = Instant::now();
            if at > now {
                tokio::time::sleep(at - now).await;
            }
            let mut payload = vec![0u8; 100];
            payload[..8].copy_from_slice(&(seq as u64).to_le_bytes());
            sent.lock().expect("sent")[seq] = Some(Instant::now());
            publ.publish(&topic, QoS::AtLeastOnce, false, payload)
                .await
                .expect("publish");
        }
        let lags = receiver.await.expect("receiver");
        driver.abort();
        let n = lags.len();
        let (p50, p99, max) = percentiles(lags);
        (p50, p99, max, n)
    })
}

/// Write on `a`, watch for it on `b`: lag from the write's reply to the
/// first `GET` on `b` that sees it.
fn replication_lag(
    a: &NodeProcess,
    b: &NodeProcess,
    rate: u64,
    run: &str,
) -> (f64, f64, f64, usize) {
    let total = (rate * RUN_SECS) as usize;
    let acks: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total]));
    let writer = {
        let acks = acks.clone();
        let port = a.port;
        let run = run.to_owned();
        std::thread::spawn(move || {
            let mut c = Client::connect(port);
            let start = Instant::now();
            let interval = Duration::from_nanos(1_000_000_000 / rate);
            for i in 0..total {
                pace(start + interval * i as u32);
                assert_eq!(c.cmd(&format!("SET lag:{run}:{i} {i}")), "OK\r\n");
                acks.lock().expect("acks")[i] = Some(Instant::now());
            }
        })
    };
    let mut reader = b.client();
    let mut visible: Vec<Option<Instant>> = vec![None; total];
    for (i, slot) in visible.iter_mut().enumerate() {
        let key = format!("lag:{run}:{i}");
        // Poll only once the write was acknowledged, so the reader does not
        // load n2 (and the 2-core machine) while there is nothing to see.
        let deadline = Instant::now() + Duration::from_secs(10);
        while acks.lock().expect("acks")[i].is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(20));
        }
        // Poll about every 0.1 ms: a tight loop would load n2 most when it
        // is behind, and make it fall further behind.
        while Instant::now() < deadline {
            if reader.cmd(&format!("GET {key}")).starts_with("VALUE ") {
                *slot = Some(Instant::now());
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    writer.join().expect("writer");
    let acks = acks.lock().expect("acks");
    let lags: Vec<u64> = acks
        .iter()
        .zip(&visible)
        .filter_map(|(ack, seen)| {
            let (ack, seen) = ((*ack)?, (*seen)?);
            Some(seen.saturating_duration_since(ack).as_micros() as u64)
        })
        .collect();
    let n = lags.len();
    let (p50, p99, max) = percentiles(lags);
    (p50, p99, max, n)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn replication_lag_and_throughput() {
    let broker = Broker::start();
    assert_eq!(
        broker.kind(),
        "mosquitto",
        "benchmark figures need mosquitto"
    );
    let nodes = three_nodes(&broker, &unique_prefix("bench"));
    wait_connected(&nodes, 3);
    println!("binary: {}", env!("CARGO_BIN_EXE_merklekv"));

    println!("\n| rate (/s) | mosquitto pub→deliver p50 / p99 / max (ms) | replication lag n1→n2 p50 / p99 / max (ms) | samples |");
    println!("|---|---|---|---|");
    for rate in [1_000u64, 10_000] {
        let (bp50, bp99, bmax, bn) = broker_round_trip(&broker, rate);
        let (p50, p99, max, n) = replication_lag(&nodes[0], &nodes[1], rate, &rate.to_string());
        println!(
            "| {rate} | {bp50:.3} / {bp99:.3} / {bmax:.3} | {p50:.3} / {p99:.3} / {max:.3} | {bn} / {n} |"
        );
    }

    // Sustained replicated writes: all three nodes written at once.
    let before: Vec<f64> = nodes
        .iter()
        .map(|n| metric(n, "merklekv_replication_changes_applied_total"))
        .collect();
    let start = Instant::now();
    let benches: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Command::new(env!("CARGO_BIN_EXE_merklekv"))
                .args(["bench", "--port", &n.port.to_string()])
                .args(["--workload", "set", "--clients", "4", "--pipeline", "64"])
                .args(["--requests", "300000", "--keyspace", "100000000"])
                .args(["--value-size", "32", "--json"])
                .args(["--key-prefix", &format!("t{i}:")])
                .output()
        })
        .collect::<Vec<_>>();
    let mut written = 0.0;
    for (i, out) in benches.into_iter().enumerate() {
        let out = out.expect("run merklekv bench");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default();
        let report: serde_json::Value = serde_json::from_str(line).expect("bench json");
        let requests = report["requests"].as_f64().unwrap_or(0.0);
        let errors = report["errors"].as_f64().unwrap_or(0.0);
        assert_eq!(errors, 0.0, "bench on n{} saw errors", i + 1);
        written += requests;
        println!(
            "n{}: {} writes, {:.0} writes/s acknowledged, p99 {:.2} ms",
            i + 1,
            requests,
            report["ops_per_sec"].as_f64().unwrap_or(0.0),
            report["p99_ms"].as_f64().unwrap_or(0.0)
        );
    }
    let load_done = start.elapsed();
    assert_converges(&nodes, Duration::from_secs(120));
    let converged = start.elapsed();
    let mut applied = 0.0;
    for (n, b) in nodes.iter().zip(before) {
        applied += metric(n, "merklekv_replication_changes_applied_total") - b;
        let dropped = metric(
            n,
            "merklekv_replication_changes_dropped_total{reason=\"queue_full\"}",
        );
        let batches = metric(n, "merklekv_replication_batches_published_total");
        let changes = metric(n, "merklekv_replication_changes_published_total");
        println!(
            "{}: dropped {dropped}, {batches} batches published, {:.1} changes per batch",
            n.spec.node_id,
            changes / batches
        );
    }
    println!(
        "\n{written} writes acknowledged in {:.2} s ({:.0}/s); all three roots equal after {:.2} s: \
         {:.0} replicated writes/s across the cluster ({applied} remote applies, {:.0}/s)",
        load_done.as_secs_f64(),
        written / load_done.as_secs_f64(),
        converged.as_secs_f64(),
        written / converged.as_secs_f64(),
        applied / converged.as_secs_f64(),
    );
}
