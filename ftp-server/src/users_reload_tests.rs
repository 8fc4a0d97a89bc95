use super::*;
use std::fs::File;

fn write_users(path: &Path, names: &[&str]) {
    let mut file = UsersFile::new();
    for name in names {
        file.set(name, &StoredCredentials::new(b"pw", 4096))
            .unwrap();
    }
    file.save(path).unwrap();
}

fn age(path: &Path, by: Duration) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

#[test]
fn a_file_written_in_place_loads_only_once_settled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    write_users(&path, &["alice"]);
    let users = Users::load(&path).unwrap();
    assert!(users.lookup("alice").1);

    // Half of a rewrite in place: only the first line, which parses as
    // "no users".
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().find(|l| l.starts_with("secret")).unwrap();
    std::fs::write(&path, format!("{first}\n")).unwrap();
    assert!(matches!(users.reload(), Reload::Refused(why) if why.contains("being written")));
    assert!(users.lookup("alice").1, "the previous users are kept");

    age(&path, SETTLE * 2);
    assert_eq!(
        users.reload(),
        Reload::Reloaded {
            users: 0,
            added: 0,
            removed: 1,
            changed: 0,
            unlocked: 0
        }
    );
    assert!(!users.lookup("alice").1);
}

#[test]
fn a_file_replaced_by_rename_loads_at_once_and_changes_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    write_users(&path, &["alice", "bob"]);
    let users = Users::load(&path).unwrap();
    assert_eq!(users.reload(), Reload::Unchanged);
    let mut file = UsersFile::load(&path).unwrap();
    file.set("alice", &StoredCredentials::new(b"new", 4096))
        .unwrap();
    file.set("carol", &StoredCredentials::new(b"pw", 4096))
        .unwrap();
    file.save(&path).unwrap();
    assert_eq!(
        users.reload(),
        Reload::Reloaded {
            users: 3,
            added: 1,
            removed: 0,
            changed: 1,
            unlocked: 0
        }
    );
    assert!(users.recently_changed("alice"));
    assert!(!users.recently_changed("bob"));
}

#[test]
fn an_invalid_file_keeps_the_previous_users() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    write_users(&path, &["alice"]);
    let users = Users::load(&path).unwrap();
    let tmp = dir.path().join("new");
    std::fs::write(&tmp, "secret = 12\n[users").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(matches!(users.reload(), Reload::Refused(_)));
    assert!(
        matches!(users.reload(), Reload::Unchanged),
        "refused once per version"
    );
    assert!(users.lookup("alice").1);
}

#[test]
fn known_and_unknown_names_get_the_same_kind_of_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    write_users(&path, &["alice"]);
    let users = Users::load(&path).unwrap();
    let (known, k) = users.lookup("alice");
    let (fake, f) = users.lookup("mallory");
    assert!(k && !f);
    assert_eq!(known.iterations, fake.iterations);
    assert_eq!(known.salt.len(), fake.salt.len());
}
