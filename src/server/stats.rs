//! Command and connection counters (STATS, INFO and /metrics read them).

use std::sync::atomic::{AtomicU64, Ordering};

use super::striped::StripedCounter;

/// Server-wide counters. Those bumped per command are striped across
/// threads; the per-connection ones are plain relaxed atomics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections open now.
    pub active_connections: AtomicU64,
    /// Connections refused by `max_connections`.
    pub rejected_connections: AtomicU64,
    /// Commands executed (including failed ones).
    pub total_commands: StripedCounter,
    /// GET-like reads.
    pub get_commands: StripedCounter,
    /// SET-like writes.
    pub set_commands: StripedCounter,
    /// DEL commands.
    pub delete_commands: StripedCounter,
    /// INC/DEC commands.
    pub numeric_commands: StripedCounter,
    /// APPEND/PREPEND commands.
    pub string_commands: StripedCounter,
    /// MGET/MSET commands.
    pub bulk_commands: StripedCounter,
    /// Replies that were errors.
    pub error_replies: StripedCounter,
    /// `AUTH` / `HELLO … AUTH` attempts with a wrong user or password.
    pub auth_failures: AtomicU64,
    /// Clients closed because they stopped taking their replies.
    pub stalled_clients_closed: AtomicU64,
    /// Remote clients turned away by protected mode.
    pub protected_mode_refusals: AtomicU64,
    /// The last on-demand `SYNC` round (INFO shows it).
    pub last_sync: parking_lot::Mutex<Option<LastSync>>,
}

/// What the last `SYNC host port` did.
#[derive(Debug, Clone)]
pub struct LastSync {
    /// `host:port` as the client gave it.
    pub peer: String,
    /// When it ended, unix seconds.
    pub ended_unix_secs: u64,
    /// The round's figures, or why it failed.
    pub outcome: Result<String, String>,
}

/// Which counter a command bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// GET.
    Get,
    /// SET.
    Set,
    /// DEL.
    Delete,
    /// INC/DEC.
    Numeric,
    /// APPEND/PREPEND.
    String,
    /// MGET/MSET.
    Bulk,
    /// Everything else.
    Other,
}

impl Stats {
    /// Counts one executed command.
    #[inline]
    pub fn count(&self, kind: CommandKind) {
        self.total_commands.incr();
        let c = match kind {
            CommandKind::Get => &self.get_commands,
            CommandKind::Set => &self.set_commands,
            CommandKind::Delete => &self.delete_commands,
            CommandKind::Numeric => &self.numeric_commands,
            CommandKind::String => &self.string_commands,
            CommandKind::Bulk => &self.bulk_commands,
            CommandKind::Other => return,
        };
        c.incr();
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
