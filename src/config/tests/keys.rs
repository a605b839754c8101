//! Unknown keys, wrong types and out-of-range values.

use super::*;

fn unknown(text: &str) -> (String, Option<String>, String) {
    match err(load_toml(text)) {
        ConfigError::UnknownKey {
            key,
            suggestion,
            source_name,
        } => (key, suggestion, source_name),
        other => panic!("expected UnknownKey, got {other:?}"),
    }
}

#[test]
fn unknown_key_in_file_names_key_and_suggests() {
    let e = err(load_toml("[network]\nbind_prot = 7000\n"));
    assert_eq!(
        e.to_string(),
        format!("unknown key 'network.bind_prot' in {NAME} (did you mean 'network.bind_port'?)")
    );

    assert_eq!(
        unknown("[storage]\npersistance = true\n").1.as_deref(),
        Some("storage.persistence")
    );
    assert_eq!(
        unknown("[netwrk]\nbind_port = 1\n"),
        ("netwrk".into(), Some("network".into()), NAME.into())
    );
    assert_eq!(
        unknown("bind_port = 1\n").1.as_deref(),
        Some("network.bind_port")
    );
    assert_eq!(
        unknown("[network]\npeer_list = []\n").1.as_deref(),
        Some("anti_entropy.peer_list")
    );
    assert_eq!(unknown("nodeid = \"x\"\n").1.as_deref(), Some("node_id"));
    assert_eq!(unknown("[mqtt]\nqos = 1\n").1, None);
    assert_eq!(unknown("[cluster]\nsize = 3\n").1, None);
}

#[test]
fn wrong_type_in_file_names_key_and_expected_form() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[network]\nbind_port = \"7379\"\n",
            "network.bind_port",
            "an integer",
        ),
        ("node_id = 5\n", "node_id", "a string"),
        (
            "[mqtt]\nclean_session = \"yes\"\n",
            "mqtt.clean_session",
            "a boolean",
        ),
        (
            "[anti_entropy]\npeer_list = \"a:1\"\n",
            "anti_entropy.peer_list",
            "an array of strings",
        ),
        (
            "[anti_entropy]\npeer_list = [\"a:1\", 2]\n",
            "anti_entropy.peer_list[1]",
            "a string",
        ),
        (
            "[storage]\nmemory_limit_mb = 1.5\n",
            "storage.memory_limit_mb",
            "an integer",
        ),
        ("network = 1\n", "network", "a table"),
        ("[network.sub]\nx = 1\n", "network.sub", ""),
    ];
    for (text, want_key, expected_form) in cases {
        let e = err(load_toml(text));
        if expected_form.is_empty() {
            // An unexpected sub-table is an unknown key.
            assert!(
                matches!(&e, ConfigError::UnknownKey { key, .. } if key == want_key),
                "{e:?}"
            );
            continue;
        }
        match &e {
            ConfigError::InvalidType {
                key,
                expected,
                source_name,
                ..
            } => {
                assert_eq!(key, want_key, "{text}");
                assert!(expected.contains(expected_form), "{e}");
                assert_eq!(source_name, NAME);
            }
            other => panic!("{text}: expected InvalidType, got {other:?}"),
        }
        assert!(e.to_string().contains(want_key), "{e}");
    }
}

#[test]
fn bad_enum_or_range_in_file_names_key_and_allowed_values() {
    let e = err(load_toml("[storage]\nfsync = \"sometimes\"\n"));
    assert_invalid(&e, "storage.fsync");
    let msg = e.to_string();
    assert!(msg.contains("everysec") && msg.contains(NAME), "{msg}");

    let e = err(load_toml("[anti_entropy]\nmode = \"delta\"\n"));
    assert_invalid(&e, "anti_entropy.mode");
    assert!(e.to_string().contains("merkle"), "{e}");

    let e = err(load_toml("[logging]\nformat = \"xml\"\n"));
    assert_invalid(&e, "logging.format");

    let e = err(load_toml("[network]\nsync_port = 65536\n"));
    assert_invalid(&e, "network.sync_port");

    let e = err(load_toml("[anti_entropy]\ntree_depth = -1\n"));
    assert_invalid(&e, "anti_entropy.tree_depth");
}
