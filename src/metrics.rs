//! Prometheus metrics on `http://<bind_address>:<metrics_port>/metrics`.
//!
//! Subsystems register their own metrics in [`StartUp::registry`] while
//! they attach; this module adds the server and store figures (read from
//! their counters at scrape time) and serves the registry.

use std::sync::Arc;

use anyhow::Context as _;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::server::idle_poll::IdlePoller;
use crate::server::stats::Stats;
use crate::store::Store;
use crate::subsystem::{Attached, StartUp};

/// Server and store figures, read at scrape time.
#[derive(Debug)]
struct CoreCollector {
    stats: Arc<Stats>,
    store: Arc<Store>,
    idle_poll: Option<Arc<IdlePoller>>,
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

impl Collector for CoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let g = Stats::get;
        counter(
            &mut enc,
            "connections",
            "Client connections accepted",
            g(&s.total_connections),
        )?;
        counter(
            &mut enc,
            "rejected_connections",
            "Connections refused by max_connections",
            g(&s.rejected_connections),
        )?;
        counter(
            &mut enc,
            "auth_failures",
            "AUTH attempts with a wrong user name or password",
            g(&s.auth_failures),
        )?;
        counter(
            &mut enc,
            "clients_closed_stalled",
            "Clients closed because their replies made no progress for network.reply_timeout_seconds",
            g(&s.stalled_clients_closed),
        )?;
        counter(
            &mut enc,
            "protected_mode_refusals",
            "Remote clients refused by protected mode (no password set, listening beyond loopback)",
            g(&s.protected_mode_refusals),
        )?;
        gauge(
            &mut enc,
            "active_connections",
            "Client connections open now",
            g(&s.active_connections) as i64,
        )?;
        counter(
            &mut enc,
            "commands",
            "Commands executed",
            s.total_commands.get(),
        )?;
        counter(
            &mut enc,
            "get_commands",
            "GET commands",
            s.get_commands.get(),
        )?;
        counter(
            &mut enc,
            "set_commands",
            "SET commands",
            s.set_commands.get(),
        )?;
        counter(
            &mut enc,
            "delete_commands",
            "DEL commands",
            s.delete_commands.get(),
        )?;
        counter(
            &mut enc,
            "numeric_commands",
            "INC/DEC commands",
            s.numeric_commands.get(),
        )?;
        counter(
            &mut enc,
            "string_commands",
            "APPEND/PREPEND commands",
            s.string_commands.get(),
        )?;
        counter(
            &mut enc,
            "bulk_commands",
            "MGET/MSET commands",
            s.bulk_commands.get(),
        )?;
        counter(
            &mut enc,
            "error_replies",
            "Replies that were errors",
            s.error_replies.get(),
        )?;
        let st = &self.store;
        gauge(&mut enc, "keys", "Live keys", st.len() as i64)?;
        gauge(
            &mut enc,
            "entries",
            "Entries including tombstones",
            st.entry_count() as i64,
        )?;
        gauge(
            &mut enc,
            "memory_used_bytes",
            "Approximate bytes held by entries",
            st.memory_used() as i64,
        )?;
        counter(
            &mut enc,
            "clock_skew_rejections",
            "Versions from replicas refused for lying beyond the clock's bound",
            st.clock().skew_rejections(),
        )?;
        counter(
            &mut enc,
            "clock_restores_bounded",
            "Restored timestamps (high-water marks, recovered versions) beyond the clock's bound",
            st.clock().restores_bounded(),
        )?;
        counter(
            &mut enc,
            "refused_future_versions",
            "Entries from replicas or disk refused for a version beyond the clock's bound",
            st.refusals().future_versions(),
        )?;
        counter(
            &mut enc,
            "refused_oversized_entries",
            "Entries from replicas refused for a key or value longer than a client may send",
            st.refusals().oversized(),
        )?;
        counter(
            &mut enc,
            "writes_refused_clock_ahead",
            "Client writes refused because the key's version lies beyond the clock's bound",
            st.refusals().clock_ahead_writes(),
        )?;
        if let Some(rss) = crate::process::resident_set_bytes() {
            gauge(
                &mut enc,
                "resident_memory_bytes",
                "Resident set size of the process",
                rss as i64,
            )?;
        }
        if let Some(poller) = &self.idle_poll {
            let c = ConstCounter::new(poller.polled().as_secs_f64());
            let m = enc.encode_descriptor(
                "idle_poll",
                "Time a worker spent polling for client requests instead of sleeping \
                 (network.idle_poll_us)",
                Some(&prometheus_client::registry::Unit::Seconds),
                c.metric_type(),
            )?;
            c.encode(m)?;
        }
        Ok(())
    }
}

/// The client server's figures the metrics endpoint reports.
pub struct ServerFigures {
    /// Server counters.
    pub stats: Arc<Stats>,
    /// The idle poller, when `network.idle_poll_us > 0`.
    pub idle_poll: Option<Arc<IdlePoller>>,
}

/// Registers the core collector and, unless `metrics_port = 0`, serves
/// the registry. Call last, after every other subsystem registered.
pub async fn attach(start: StartUp<'_>, server: ServerFigures) -> anyhow::Result<Attached> {
    let mut registry = std::mem::take(start.registry);
    registry.register_collector(Box::new(CoreCollector {
        stats: server.stats,
        store: start.store.clone(),
        idle_poll: server.idle_poll,
    }));
    let Some(addr) = start.config.metrics_listen_addr() else {
        return Ok(Attached::default());
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (network.metrics_port)"))?;
    let registry = Arc::new(registry);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move { render(&registry) }
        }),
    );
    let mut shutdown = start.shutdown.subscribe();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    });
    tracing::info!(%addr, "metrics on /metrics");
    Ok(Attached {
        tasks: vec![task],
        ..Attached::default()
    })
}

fn render(registry: &Registry) -> impl axum::response::IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            axum::http::StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            [(axum::http::header::CONTENT_TYPE, "text/plain")],
            "metrics encoding failed".to_string(),
        ),
    }
}
