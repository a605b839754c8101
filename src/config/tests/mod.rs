use std::path::PathBuf;

use super::load::{env_name, schema};
use super::*;

const NAME: &str = "/etc/merklekv/test.toml";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_toml(text: &str) -> Result<LoadedConfig, ConfigError> {
    Config::from_sources(Some((text, NAME)), Vec::new())
}

fn load_env(pairs: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
    Config::from_sources(None, env(pairs))
}

fn ok(result: Result<LoadedConfig, ConfigError>) -> LoadedConfig {
    match result {
        Ok(loaded) => loaded,
        Err(e) => panic!("expected success, got: {e}"),
    }
}

fn err(result: Result<LoadedConfig, ConfigError>) -> ConfigError {
    match result {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.config),
        Err(e) => e,
    }
}

/// Asserts an `InvalidValue` error for `key` whose message names the key.
fn assert_invalid(e: &ConfigError, want_key: &str) {
    match e {
        ConfigError::InvalidValue { key, .. } => assert_eq!(key, want_key, "{e}"),
        other => panic!("expected InvalidValue for {want_key}, got {other:?}"),
    }
    assert!(e.to_string().contains(want_key), "{e}");
}

fn invalid_after(change: impl FnOnce(&mut Config)) -> ConfigError {
    let mut c = Config::default();
    change(&mut c);
    match c.validate() {
        Ok(()) => panic!("expected a validation error for {c:?}"),
        Err(e) => e,
    }
}

fn valid_after(change: impl FnOnce(&mut Config)) {
    let mut c = Config::default();
    change(&mut c);
    if let Err(e) = c.validate() {
        panic!("expected valid, got: {e}");
    }
}

mod defaults;
mod env;
mod file;
mod keys;
mod security;
mod seed;
mod validation;
