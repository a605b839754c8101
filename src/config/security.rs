//! `[security]`: who may use the client port.
//!
//! Everything is off by default (no password, protected mode on: a node
//! that listens beyond loopback without a password serves only loopback
//! clients), so `cargo run --release` behaves as before.

use serde::{Deserialize, Serialize};

/// What a user may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only (GET, SCAN, TTL, INFO, …).
    Readonly,
    /// Reads and writes; not the admin commands.
    #[default]
    Readwrite,
    /// Everything, including FLUSH, SHUTDOWN, SYNC and REPLICATE.
    Admin,
}

impl Role {
    /// The name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Readonly => "readonly",
            Role::Readwrite => "readwrite",
            Role::Admin => "admin",
        }
    }
}

/// One named user of `security.users`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserConfig {
    /// The name clients give to `AUTH name password`.
    pub name: String,
    /// SHA-256 of the password, 64 hex digits (`printf %s 'pw' | sha256sum`).
    pub password_sha256: String,
    /// What the user may run (default `readwrite`).
    pub role: Role,
}

/// `[security]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Password of the `default` user (Redis' `requirepass`, an admin);
    /// empty (the default) = none. With a password or users, clients must
    /// `AUTH` before anything but `AUTH`, `HELLO … AUTH`, `PING` and `QUIT`.
    pub password: String,
    /// Named users, in the TOML file: `[[security.users]]` tables of
    /// `name`, `password_sha256` and `role`.
    pub users: Vec<UserConfig>,
    /// Refuse clients from other hosts while no password or user is
    /// configured and the client port listens beyond loopback (default
    /// `true`, as Redis' `protected-mode`).
    pub protected_mode: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            password: String::new(),
            users: Vec::new(),
            protected_mode: true,
        }
    }
}

impl SecurityConfig {
    /// Whether clients must authenticate.
    pub fn requires_auth(&self) -> bool {
        !self.password.is_empty() || !self.users.is_empty()
    }
}
