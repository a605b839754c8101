//! `[security]`: users as TOML tables, the password from the environment,
//! and the rules a user entry must satisfy.

use super::*;

const DIGEST: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

#[test]
fn users_are_tables_and_the_password_may_come_from_the_environment() {
    let text = format!(
        "[security]\nprotected_mode = false\n\n[[security.users]]\nname = \"app\"\n\
         password_sha256 = \"{DIGEST}\"\nrole = \"readonly\"\n"
    );
    let loaded = ok(Config::from_sources(
        Some((&text, NAME)),
        env(&[("MERKLE_KV_SECURITY_PASSWORD", "pw")]),
    ));
    let s = &loaded.config.security;
    assert_eq!(s.password, "pw");
    assert!(!s.protected_mode);
    assert_eq!(
        s.users,
        vec![UserConfig {
            name: "app".into(),
            password_sha256: DIGEST.into(),
            role: Role::Readonly,
        }]
    );
    assert!(s.requires_auth());
    assert!(!Config::default().security.requires_auth());
}

#[test]
fn a_bad_user_entry_is_refused_with_its_key() {
    let bad_users = [
        ("users = \"app\"", "security.users"),
        ("users = [\"app\"]", "security.users[0]"),
    ];
    for (line, key) in bad_users {
        let e = err(load_toml(&format!("[security]\n{line}\n")));
        assert!(e.to_string().contains(key), "{line}: {e}");
    }
    let e = err(load_toml(
        "[[security.users]]\nname = \"app\"\npassword_sha256 = \"x\"\nrole = \"boss\"\n",
    ));
    assert!(e.to_string().contains("boss"), "{e}");
    let e = err(load_env(&[("MERKLE_KV_SECURITY_USERS", "app")]));
    assert!(e.to_string().contains("configuration file"), "{e}");
    let user = |name: &str, digest: &str| UserConfig {
        name: name.into(),
        password_sha256: digest.into(),
        role: Role::Readwrite,
    };
    assert_invalid(
        &invalid_after(|c| c.security.users = vec![user("a b", DIGEST)]),
        "security.users[0].name",
    );
    assert_invalid(
        &invalid_after(|c| c.security.users = vec![user("app", "abc")]),
        "security.users[0].password_sha256",
    );
    assert_invalid(
        &invalid_after(|c| c.security.users = vec![user("app", DIGEST), user("app", DIGEST)]),
        "security.users[1].name",
    );
    assert_invalid(
        &invalid_after(|c| {
            c.security.password = "pw".into();
            c.security.users = vec![user("default", DIGEST)];
        }),
        "security.users[0].name",
    );
    valid_after(|c| c.security.users = vec![user("default", DIGEST)]);
}
