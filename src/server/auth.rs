//! Client authentication and permissions (`[security]`): who a connection
//! is (`AUTH`, `HELLO … AUTH`) and whether it may run a command. Replies
//! use Redis' wording (`-NOAUTH`, `-WRONGPASS`, `-NOPERM`) so client
//! libraries map them to their usual exceptions.

use sha2::{Digest, Sha256};

use super::stats::Stats;
use crate::config::{Role, SecurityConfig};
use crate::protocol::{Command, ReplyBuf};

/// The name of the user `AUTH password` (one argument) logs in as.
pub const DEFAULT_USER: &str = "default";

/// Who a connection is once it authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's name.
    pub user: String,
    /// What it may run.
    pub role: Role,
}

/// One configured user: its name, the SHA-256 of its password and role.
struct Credential {
    name: String,
    password_sha256: [u8; 32],
    role: Role,
}

/// The configured credentials.
pub struct Authenticator {
    credentials: Vec<Credential>,
    protected_mode: bool,
}

impl Authenticator {
    /// Credentials from a validated `[security]` section (the default
    /// user's password, an admin, first).
    pub fn new(config: &SecurityConfig) -> Self {
        let mut credentials = Vec::new();
        if !config.password.is_empty() {
            credentials.push(Credential {
                name: DEFAULT_USER.to_owned(),
                password_sha256: sha256(config.password.as_bytes()),
                role: Role::Admin,
            });
        }
        for user in &config.users {
            // Validation checked the 64 hex digits.
            if let Some(digest) = from_hex(&user.password_sha256) {
                credentials.push(Credential {
                    name: user.name.clone(),
                    password_sha256: digest,
                    role: user.role,
                });
            }
        }
        Self {
            credentials,
            protected_mode: config.protected_mode,
        }
    }

    /// Whether clients must authenticate.
    pub fn required(&self) -> bool {
        !self.credentials.is_empty()
    }

    /// Whether a client from a non-loopback address must be turned away:
    /// protected mode is on, nobody must authenticate, and the client port
    /// listens beyond loopback (Redis' `protected-mode`).
    pub fn refuses_remote(&self, listening_beyond_loopback: bool) -> bool {
        self.protected_mode && !self.required() && listening_beyond_loopback
    }

    /// Who a new connection is: everyone is an admin when nobody must
    /// authenticate; otherwise nobody until `AUTH`.
    pub fn initial_identity(&self) -> Option<Identity> {
        (!self.required()).then(|| Identity {
            user: DEFAULT_USER.to_owned(),
            role: Role::Admin,
        })
    }

    /// The identity `user` (`None`: the default user) gets with
    /// `password`, or `None`. Every credential is compared, in
    /// constant time, whatever matches: the time taken says nothing about
    /// which names exist or how much of a password was right.
    pub fn verify(&self, user: Option<&[u8]>, password: &[u8]) -> Option<Identity> {
        let name = user.unwrap_or(DEFAULT_USER.as_bytes());
        let given = sha256(password);
        let mut found = None;
        for credential in &self.credentials {
            let same_name = credential.name.as_bytes() == name;
            let same_password = constant_time_eq(&credential.password_sha256, &given);
            if same_name & same_password {
                found = Some(Identity {
                    user: credential.name.clone(),
                    role: credential.role,
                });
            }
        }
        found
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Equal digests, compared without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 64 hex digits → 32 bytes.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

/// What a command needs of the connection's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Allowed before authenticating: `AUTH`, `HELLO`, `PING`, `QUIT`.
    Open,
    /// Any authenticated user.
    Read,
    /// `readwrite` and `admin` users.
    Write,
    /// `admin` users only.
    Admin,
}

/// What `cmd` needs, and for a write or admin command its name as Redis
/// gives it in `-NOPERM` (one name per command form: every kind of SET is
/// `set`).
pub fn access(cmd: &Command<'_>) -> (Access, &'static str) {
    match cmd {
        Command::Auth { .. } | Command::Hello { .. } | Command::Ping(_) | Command::Quit => {
            (Access::Open, "")
        }
        Command::Set(..) => (Access::Write, "set"),
        Command::SetWith(_) => (Access::Write, "set"),
        Command::Delete(_) => (Access::Write, "del"),
        Command::Increment(..) => (Access::Write, "incrby"),
        Command::IncrementFloat(..) => (Access::Write, "incrbyfloat"),
        Command::Append(..) => (Access::Write, "append"),
        Command::Prepend(..) => (Access::Write, "prepend"),
        Command::MSet(_) => (Access::Write, "mset"),
        Command::MSetNx(_) => (Access::Write, "msetnx"),
        Command::GetDel(_) => (Access::Write, "getdel"),
        Command::SetRange(..) => (Access::Write, "setrange"),
        Command::Expire { .. } => (Access::Write, "expire"),
        Command::Persist(_) => (Access::Write, "persist"),
        Command::GetEx { ttl: Some(_), .. } => (Access::Write, "getex"),
        Command::Rename { .. } => (Access::Write, "rename"),
        Command::Flush => (Access::Admin, "flushdb"),
        Command::Shutdown => (Access::Admin, "shutdown"),
        Command::Sync { .. } => (Access::Admin, "sync"),
        Command::Replicate(_) => (Access::Admin, "replicate"),
        _ => (Access::Read, ""),
    }
}

/// Whether `identity` may run what needs `access`.
fn permits(identity: &Identity, access: Access) -> bool {
    matches!(
        (identity.role, access),
        (Role::Admin, _) | (_, Access::Open | Access::Read) | (Role::Readwrite, Access::Write)
    )
}

/// Answers and counts a command the connection may not run; `true` when
/// it was refused. `identity` is the connection's (`None`: not
/// authenticated yet). The caller skips it for an admin (every connection
/// when no password is configured): `Session::is_admin`.
pub fn refuse(
    stats: &Stats,
    identity: Option<&Identity>,
    cmd: &Command<'_>,
    out: &mut ReplyBuf,
) -> bool {
    let (needs, name) = access(cmd);
    match identity {
        _ if needs == Access::Open => false,
        None => {
            stats.error_replies.incr();
            out.error_with_code("NOAUTH", "Authentication required.");
            true
        }
        Some(identity) if permits(identity, needs) => false,
        Some(_) => {
            stats.error_replies.incr();
            out.error_with_code(
                "NOPERM",
                &format!("this user has no permissions to run the '{name}' command"),
            );
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UserConfig;

    fn hex(bytes: [u8; 32]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn authenticator() -> Authenticator {
        Authenticator::new(&SecurityConfig {
            password: "secret".into(),
            users: vec![
                UserConfig {
                    name: "app".into(),
                    password_sha256: hex(sha256(b"apppass")),
                    role: Role::Readwrite,
                },
                UserConfig {
                    name: "viewer".into(),
                    password_sha256: hex(sha256(b"look")),
                    role: Role::Readonly,
                },
            ],
            protected_mode: true,
        })
    }

    #[test]
    fn passwords_name_their_user_and_role() {
        let a = authenticator();
        assert!(a.required());
        assert_eq!(a.initial_identity(), None);
        let default = a.verify(None, b"secret").expect("default");
        assert_eq!(
            (default.user.as_str(), default.role),
            ("default", Role::Admin)
        );
        assert_eq!(a.verify(Some(b"default"), b"secret"), Some(default));
        assert_eq!(
            a.verify(Some(b"app"), b"apppass").map(|i| i.role),
            Some(Role::Readwrite)
        );
        assert_eq!(
            a.verify(Some(b"viewer"), b"look").map(|i| i.role),
            Some(Role::Readonly)
        );
        assert_eq!(a.verify(Some(b"app"), b"secret"), None);
        assert_eq!(a.verify(Some(b"nobody"), b"secret"), None);
        assert_eq!(a.verify(None, b"apppass"), None);
    }

    #[test]
    fn roles_limit_what_runs() {
        let viewer = Identity {
            user: "viewer".into(),
            role: Role::Readonly,
        };
        let app = Identity {
            user: "app".into(),
            role: Role::Readwrite,
        };
        let get = access(&Command::Get(b"k")).0;
        let set = access(&Command::Set(b"k", b"v")).0;
        let flush = access(&Command::Flush).0;
        assert!(permits(&viewer, get) && !permits(&viewer, set) && !permits(&viewer, flush));
        assert!(permits(&app, get) && permits(&app, set) && !permits(&app, flush));
    }

    #[test]
    fn protected_mode_needs_no_password_and_a_wide_bind() {
        let open = Authenticator::new(&SecurityConfig::default());
        assert!(!open.required());
        assert!(open.initial_identity().is_some());
        assert!(open.refuses_remote(true));
        assert!(!open.refuses_remote(false));
        assert!(!authenticator().refuses_remote(true));
    }

    #[test]
    fn hex_digests_are_64_digits() {
        assert!(from_hex(&"ab".repeat(32)).is_some());
        assert!(from_hex(&"ab".repeat(31)).is_none());
        assert!(from_hex(&"zz".repeat(32)).is_none());
    }
}
