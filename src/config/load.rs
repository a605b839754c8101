//! Loading: TOML text + `MERKLE_KV_*` overrides, checked against a schema
//! derived from the default configuration, then deserialized and validated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use toml::{Table, Value};

use super::{Config, ConfigError, LoadedConfig};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "MERKLE_KV_";

/// `MERKLE_KV_*` variables that are not configuration keys (read by the
/// command line, not by [`Config::load`]) and are therefore not rejected.
pub const RESERVED_ENV_VARS: &[&str] = &["MERKLE_KV_CONFIG"];

/// Accepted old spellings: `(alias, canonical)` dotted paths.
const ALIASES: &[(&str, &str)] = &[("storage.persistence_enabled", "storage.persistence")];

/// Seed storage engines, accepted and replaced by fjall.
const SEED_ENGINES: &[&str] = &["rwlock", "kv", "sled"];

/// Used in messages about values not traced to a file or variable.
pub(super) const UNTRACED: &str = "the configuration";

/// The TOML type a key expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Int,
    Float,
    Bool,
    StrList,
    /// An array of tables (`[[security.users]]`); TOML only.
    TableList,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "an integer",
            Kind::Float => "a number with a decimal point (e.g. 0.1)",
            Kind::Bool => "a boolean (true or false)",
            Kind::StrList => "an array of strings",
            Kind::TableList => "an array of tables",
        }
    }
}

/// Every valid key path and its type, derived from the serialized defaults.
pub(super) struct Schema {
    /// Section names (`network`, `anti_entropy`, ...).
    pub(super) sections: BTreeSet<String>,
    /// Canonical dotted key paths.
    pub(super) keys: BTreeMap<String, Kind>,
    /// `MERKLE_KV_*` variable name → dotted path (canonical or alias).
    pub(super) env_names: BTreeMap<String, String>,
}

pub(super) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(build_schema)
}

fn build_schema() -> Schema {
    // Optional keys are omitted when `None`; fill them so they are listed.
    let mut sample = Config::default();
    sample.mqtt.enabled = Some(true);
    sample.mqtt.username = Some(String::new());
    sample.mqtt.password = Some(String::new());
    sample.security.users = vec![super::UserConfig::default()];
    let table = Table::try_from(&sample).expect("the default configuration serializes to TOML");

    let mut sections = BTreeSet::new();
    let mut keys = BTreeMap::new();
    for (name, value) in &table {
        match value {
            Value::Table(section) => {
                sections.insert(name.clone());
                for (key, value) in section {
                    keys.insert(format!("{name}.{key}"), kind_of(value));
                }
            }
            other => {
                keys.insert(name.clone(), kind_of(other));
            }
        }
    }
    let env_names = keys
        .keys()
        .map(String::as_str)
        .chain(ALIASES.iter().map(|(alias, _)| *alias))
        .map(|path| (env_name(path), path.to_owned()))
        .collect();
    Schema {
        sections,
        keys,
        env_names,
    }
}

fn kind_of(value: &Value) -> Kind {
    match value {
        Value::String(_) => Kind::Str,
        Value::Integer(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Boolean(_) => Kind::Bool,
        Value::Array(items) if items.first().is_some_and(Value::is_table) => Kind::TableList,
        Value::Array(_) => Kind::StrList,
        other => panic!(
            "configuration schema: unsupported type {}",
            other.type_str()
        ),
    }
}

/// `anti_entropy.peer_list` → `MERKLE_KV_ANTI_ENTROPY_PEER_LIST`.
pub(super) fn env_name(path: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        path.replace('.', "_").to_ascii_uppercase()
    )
}

fn split_path(path: &str) -> (Option<&str>, &str) {
    match path.split_once('.') {
        Some((section, key)) => (Some(section), key),
        None => (None, path),
    }
}

impl Schema {
    /// Canonical path and type of `path` (which may be an alias).
    fn resolve<'a>(&'a self, path: &'a str) -> Option<(&'a str, Kind)> {
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| *alias == path)
            .map_or(path, |(_, canonical)| *canonical);
        self.keys
            .get_key_value(canonical)
            .map(|(k, kind)| (k.as_str(), *kind))
    }

    /// The nearest valid dotted path to an unknown `section.name` (or
    /// top-level `name`): a similar name in the same place, else the same
    /// name in exactly one other section.
    fn suggest(&self, section: Option<&str>, name: &str, with_sections: bool) -> Option<String> {
        let in_scope = self
            .keys
            .keys()
            .map(String::as_str)
            .chain(ALIASES.iter().map(|(alias, _)| *alias))
            .filter(|path| split_path(path).0 == section)
            .map(str::to_owned)
            .chain(
                self.sections
                    .iter()
                    .filter(|_| with_sections && section.is_none())
                    .cloned(),
            );
        let best = in_scope
            .map(|path| (strsim::jaro_winkler(name, split_path(&path).1), path))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, path)) = best {
            return Some(path);
        }
        let mut elsewhere = self
            .keys
            .keys()
            .filter(|path| split_path(path).1 == name && split_path(path).0 != section);
        match (elsewhere.next(), elsewhere.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    }

    /// The nearest valid variable name to an unknown `MERKLE_KV_*` variable.
    fn suggest_env(&self, var: &str) -> Option<String> {
        let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        let section = self
            .sections
            .iter()
            .filter(|s| rest.starts_with(&format!("{s}_")))
            .max_by_key(|s| s.len());
        let by_path = match section {
            Some(s) => self.suggest(Some(s), &rest[s.len() + 1..], false),
            None => self.suggest(None, &rest, false),
        };
        if let Some(path) = by_path {
            return Some(env_name(&path));
        }
        let upper = var.to_ascii_uppercase();
        self.env_names
            .keys()
            .map(|name| (strsim::jaro_winkler(&upper, name), name))
            .filter(|(score, _)| *score >= 0.9)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, name)| name.clone())
    }
}

/// A value set explicitly, and where it came from.
struct Setting {
    value: Value,
    origin: String,
}

/// The `MERKLE_KV_*` variables of this process.
pub(super) fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        match value.into_string() {
            Ok(value) => vars.push((name.to_owned(), value)),
            Err(_) => {
                return Err(ConfigError::InvalidValue {
                    key: name.to_owned(),
                    reason: "the value is not valid UTF-8".to_owned(),
                    source_name: "the environment".to_owned(),
                })
            }
        }
    }
    Ok(vars)
}

pub(super) fn from_sources(
    toml_text: Option<(&str, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LoadedConfig, ConfigError> {
    let schema = schema();
    let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
    if let Some((text, name)) = toml_text {
        let table: Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: name.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        read_file(schema, &table, name, &mut settings)?;
    }
    for (var, raw) in env {
        read_env(schema, &var, &raw, &mut settings)?;
    }

    let mut config = deserialize(&settings)?;
    let warnings = warnings(&mut config, &settings);
    config.validate().map_err(|e| attribute(e, &settings))?;
    Ok(LoadedConfig { config, warnings })
}

fn read_file(
    schema: &Schema,
    table: &Table,
    source: &str,
    settings: &mut BTreeMap<String, Setting>,
) -> Result<(), ConfigError> {
    let mut check_leaf = |path: &str, value: &Value| -> Result<(), ConfigError> {
        let Some((canonical, kind)) = schema.resolve(path) else {
            let (section, name) = split_path(path);
            return Err(ConfigError::UnknownKey {
                key: path.to_owned(),
                suggestion: schema.suggest(section, name, true),
                source_name: source.to_owned(),
            });
        };
        check_kind(path, value, kind, source)?;
        if canonical != path && table_has(table, canonical) {
            return Err(ConfigError::InvalidValue {
                key: path.to_owned(),
                reason: format!("'{path}' is an alias of '{canonical}'; set only one of them"),
                source_name: source.to_owned(),
            });
        }
        settings.insert(
            canonical.to_owned(),
            Setting {
                value: value.clone(),
                origin: source.to_owned(),
            },
        );
        Ok(())
    };

    for (name, value) in table {
        if schema.sections.contains(name) {
            let Value::Table(section) = value else {
                return Err(ConfigError::InvalidType {
                    key: name.clone(),
                    expected: format!("a table ([{name}])"),
                    found: describe(value),
                    source_name: source.to_owned(),
                });
            };
            for (key, value) in section {
                check_leaf(&format!("{name}.{key}"), value)?;
            }
        } else {
            check_leaf(name, value)?;
        }
    }
    Ok(())
}

fn table_has(table: &Table, path: &str) -> bool {
    match split_path(path) {
        (Some(section), key) => table
            .get(section)
            .and_then(Value::as_table)
            .is_some_and(|t| t.contains_key(key)),
        (None, key) => table.contains_key(key),
    }
}

fn check_kind(path: &str, value: &Value, kind: Kind, source: &str) -> Result<(), ConfigError> {
    let ok = match (kind, value) {
        (Kind::Str, Value::String(_))
        | (Kind::Int, Value::Integer(_))
        | (Kind::Float, Value::Float(_))
        | (Kind::Bool, Value::Boolean(_)) => true,
        (Kind::StrList, Value::Array(items)) => {
            if let Some((i, item)) = items.iter().enumerate().find(|(_, v)| !v.is_str()) {
                return Err(ConfigError::InvalidType {
                    key: format!("{path}[{i}]"),
                    expected: "a string".to_owned(),
                    found: describe(item),
                    source_name: source.to_owned(),
                });
            }
            true
        }
        (Kind::TableList, Value::Array(items)) => {
            if let Some((i, item)) = items.iter().enumerate().find(|(_, v)| !v.is_table()) {
                return Err(ConfigError::InvalidType {
                    key: format!("{path}[{i}]"),
                    expected: "a table".to_owned(),
                    found: describe(item),
                    source_name: source.to_owned(),
                });
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidType {
            key: path.to_owned(),
            expected: kind.expected().to_owned(),
            found: describe(value),
            source_name: source.to_owned(),
        })
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the datetime {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

fn read_env(
    schema: &Schema,
    var: &str,
    raw: &str,
    settings: &mut BTreeMap<String, Setting>,
) -> Result<(), ConfigError> {
    if !var.starts_with(ENV_PREFIX) || RESERVED_ENV_VARS.contains(&var) {
        return Ok(());
    }
    let source = format!("environment variable {var}");
    let Some((canonical, kind)) = schema
        .env_names
        .get(&var.to_ascii_uppercase())
        .and_then(|path| schema.resolve(path))
    else {
        return Err(ConfigError::UnknownKey {
            key: var.to_owned(),
            suggestion: schema.suggest_env(var),
            source_name: "the environment".to_owned(),
        });
    };
    let wrong = || ConfigError::InvalidType {
        key: canonical.to_owned(),
        expected: match kind {
            Kind::StrList => "a comma-separated list".to_owned(),
            Kind::TableList => "nothing: set it in the configuration file".to_owned(),
            Kind::Bool => "true or false".to_owned(),
            other => other.expected().to_owned(),
        },
        found: format!("{raw:?}"),
        source_name: source.clone(),
    };
    let value = match kind {
        Kind::Str => Value::String(raw.to_owned()),
        Kind::Int => Value::Integer(raw.trim().parse().map_err(|_| wrong())?),
        Kind::Float => Value::Float(raw.trim().parse().map_err(|_| wrong())?),
        Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(wrong()),
        },
        Kind::TableList => return Err(wrong()),
        Kind::StrList => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ),
    };
    settings.insert(
        canonical.to_owned(),
        Setting {
            value,
            origin: source,
        },
    );
    Ok(())
}

/// Builds the nested table for a set of canonical `(path, value)` pairs.
fn to_table<'a>(entries: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Table {
    let mut table = Table::new();
    for (path, value) in entries {
        match split_path(path) {
            (Some(section), key) => {
                if let Value::Table(t) = table
                    .entry(section)
                    .or_insert_with(|| Value::Table(Table::new()))
                {
                    t.insert(key.to_owned(), value.clone());
                }
            }
            (None, key) => {
                table.insert(key.to_owned(), value.clone());
            }
        }
    }
    table
}

/// Deserializes the settings over the defaults. Types were checked already,
/// so a failure is a number out of range or an unknown enum value: find the
/// key responsible by trying each setting alone.
fn deserialize(settings: &BTreeMap<String, Setting>) -> Result<Config, ConfigError> {
    let table = to_table(settings.iter().map(|(k, s)| (k.as_str(), &s.value)));
    let whole_error = match table.try_into::<Config>() {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    for (path, setting) in settings {
        if let Err(e) = to_table([(path.as_str(), &setting.value)]).try_into::<Config>() {
            return Err(ConfigError::InvalidValue {
                key: path.clone(),
                reason: humanize(e.message(), path),
                source_name: setting.origin.clone(),
            });
        }
    }
    Err(ConfigError::InvalidValue {
        key: "(configuration)".to_owned(),
        reason: humanize(whole_error.message(), ""),
        source_name: UNTRACED.to_owned(),
    })
}

/// Rewrites serde's Rust type names into the expected form; for `key`,
/// the range validation accepts (a port that may not be 0 says so).
fn humanize(message: &str, key: &str) -> String {
    let u16_range = match key {
        "network.bind_port" | "network.sync_port" => "expected a port from 1 to 65535",
        "network.metrics_port" => "expected a port from 1 to 65535, or 0 to disable metrics",
        _ => "expected an integer from 0 to 65535",
    };
    message
        .trim_end()
        .trim_start_matches("invalid value: ")
        .replace("expected u16", u16_range)
        .replace("expected u32", "expected an integer from 0 to 4294967295")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected usize", "expected a non-negative integer")
}

/// Sets the validation error's source to where the offending key was set.
fn attribute(error: ConfigError, settings: &BTreeMap<String, Setting>) -> ConfigError {
    match error {
        ConfigError::InvalidValue {
            key,
            reason,
            source_name,
        } => {
            let base = key.split('[').next().unwrap_or(&key);
            let source_name = settings.get(base).map_or(source_name, |s| s.origin.clone());
            ConfigError::InvalidValue {
                key,
                reason,
                source_name,
            }
        }
        other => other,
    }
}

/// Warnings for accepted-but-ineffective keys; maps seed engines to fjall.
fn warnings(config: &mut Config, settings: &BTreeMap<String, Setting>) -> Vec<String> {
    let mut out = Vec::new();
    let origin = |key: &str| {
        settings
            .get(key)
            .map_or_else(String::new, |s| format!(" (set in {})", s.origin))
    };
    if settings.contains_key("network.connection_timeout") {
        out.push(format!(
            "network.connection_timeout{} has no effect; idle client connections are closed \
             after network.idle_timeout_seconds",
            origin("network.connection_timeout")
        ));
    }
    if config.storage.backup_interval_hours != 0 {
        out.push(format!(
            "storage.backup_interval_hours{} has no effect yet; no backups are taken",
            origin("storage.backup_interval_hours")
        ));
    }
    if SEED_ENGINES.contains(&config.storage.engine.as_str()) {
        out.push(format!(
            "storage.engine = \"{}\"{} is a seed engine; fjall is used",
            config.storage.engine,
            origin("storage.engine")
        ));
        config.storage.engine = "fjall".to_owned();
    }
    let rf = config.cluster.replication_factor;
    let named = config.anti_entropy.peer_list.len() + 1;
    if rf > named && config.mqtt.broker_address.is_empty() {
        out.push(format!(
            "cluster.replication_factor = {rf}{} is more than the nodes this node knows of \
             ({named}: itself and anti_entropy.peer_list) and no MQTT broker is set to discover \
             more; keys have fewer replicas until enough members join",
            origin("cluster.replication_factor")
        ));
    }
    let wildcard = matches!(config.network.bind_address.as_str(), "0.0.0.0" | "::");
    if wildcard && config.network.advertise_address.is_empty() {
        out.push(format!(
            "network.bind_address is the wildcard {} and network.advertise_address is empty; \
             peers learning this node's address will be told to dial {}; set \
             network.advertise_address",
            config.network.bind_address, config.network.bind_address
        ));
    }
    out
}
