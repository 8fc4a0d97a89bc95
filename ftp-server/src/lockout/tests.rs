use super::*;

fn limits(ms: u64) -> Limits {
    Limits {
        lockout_failures: 3,
        lockout: Duration::from_millis(ms),
        ..Limits::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn locks_the_pair_only_and_expires() {
    let limits = limits(200);
    let table = Lockouts::default();
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    assert!(!table.failed("alice", a, true, &limits).locked);
    assert!(!table.failed("alice", a, true, &limits).locked);
    assert!(table.failed("alice", a, true, &limits).locked);
    assert!(table.is_locked("alice", a, true, &limits));
    assert!(!table.is_locked("alice", b, true, &limits));
    assert!(!table.is_locked("bob", a, true, &limits));
    std::thread::sleep(Duration::from_millis(250));
    assert!(
        !table.is_locked("alice", a, true, &limits),
        "the lock expires"
    );
    assert!(!table.failed("alice", a, true, &limits).locked);
    table.succeeded("alice", a);
    assert!(!table.is_locked("alice", a, true, &limits));
}

#[test]
fn unknown_names_take_one_entry_per_address_and_lock_it() {
    let limits = limits(60_000);
    let table = Lockouts::default();
    let a = ip("10.0.0.1");
    for i in 0..1000 {
        table.failed(&format!("made-up-{i}"), a, false, &limits);
    }
    let t = table.tables.lock().unwrap();
    assert_eq!(t.pairs.len() + t.addresses.len(), 1);
    drop(t);
    assert!(
        table.is_locked("made-up-5000", a, false, &limits),
        "the address is locked for names not in the users file"
    );
    assert!(
        !table.is_locked("alice", a, true, &limits),
        "a real user behind the address is not"
    );
    assert!(!table.is_locked("made-up-1", ip("10.0.0.2"), false, &limits));
}

#[test]
fn a_full_table_fails_closed() {
    let limits = limits(60_000);
    let table = Lockouts::default();
    {
        let mut t = table.tables.lock().unwrap();
        let now = Instant::now();
        for i in 0..Limits::default().lockout_entries as u32 {
            let fresh = Count {
                failures: 1,
                ..Count::fresh(now)
            };
            t.addresses.insert(IpAddr::from(i.to_be_bytes()), fresh);
        }
    }
    let newcomer = ip("192.168.7.7");
    assert!(table.is_locked("alice", newcomer, true, &limits));
    assert!(table.failed("alice", newcomer, true, &limits).locked);
}

#[test]
fn the_brake_grows_is_shared_and_resets_on_success() {
    let limits = limits(60_000);
    let table = Lockouts::default();
    for i in 0..BRAKE_FREE_FAILURES {
        let from = IpAddr::from([10, 0, 1, i as u8]);
        assert!(!table.failed("alice", from, true, &limits).braked);
        assert_eq!(table.brake("alice"), Duration::ZERO);
    }
    assert!(table.failed("alice", ip("10.0.2.1"), true, &limits).braked);
    let first = table.brake("alice");
    let second = table.brake("alice");
    assert!(first <= BRAKE_BASE, "{first:?}");
    assert!(
        second > BRAKE_BASE / 2,
        "parallel attempts queue: {second:?}"
    );
    for _ in 0..40 {
        table.failed("alice", ip("10.0.3.1"), true, &limits);
    }
    assert_eq!(brake_delay(40 + BRAKE_FREE_FAILURES), BRAKE_MAX);
    table.succeeded("alice", ip("10.0.3.1"));
    assert_eq!(table.brake("alice"), Duration::ZERO);
}

#[test]
fn an_unlock_lifts_only_what_came_before_it() {
    let limits = limits(60_000);
    let table = Lockouts::default();
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    for _ in 0..5 {
        table.failed("alice", a, true, &limits);
    }
    assert!(table.is_locked("alice", a, true, &limits));
    let braked = |t: &Lockouts| t.tables.lock().unwrap().brakes.contains_key("alice");
    assert!(braked(&table), "the brake is on");
    let before = SystemTime::now() - Duration::from_secs(60);
    assert!(
        !table.forgive("alice", a, before, &limits),
        "an older unlock"
    );
    assert!(table.is_locked("alice", a, true, &limits));
    let unlocked = SystemTime::now();
    assert!(
        !table.forgive("alice", b, unlocked, &limits),
        "no lock there"
    );
    assert!(table.forgive("alice", a, unlocked, &limits));
    assert!(!table.is_locked("alice", a, true, &limits));
    assert!(!braked(&table), "the brake is lifted");
    assert!(!table.forgive("alice", a, unlocked, &limits), "once");
    // Failures after the unlock count again.
    std::thread::sleep(Duration::from_millis(5));
    for _ in 0..3 {
        table.failed("alice", a, true, &limits);
    }
    assert!(!table.forgive("alice", a, unlocked, &limits));
    assert!(table.is_locked("alice", a, true, &limits));
}

#[test]
fn saved_locks_come_back_and_expired_or_unlocked_ones_do_not() {
    let limits = limits(60_000);
    let table = Lockouts::default();
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    for _ in 0..3 {
        table.failed("alice", a, true, &limits);
        table.failed("bob", a, true, &limits);
        table.failed("made-up", b, false, &limits);
    }
    table.failed("carol", a, true, &limits);
    let saved = table.snapshot(&limits, |_| None);
    assert_eq!(saved.len(), 3, "{saved:?}");
    assert!(saved.iter().all(|l| l.failures == 3));
    assert!(saved.iter().any(|l| l.user.is_none() && l.address == b));
    let unlocked = table.snapshot(&limits, |u| (u == "bob").then(SystemTime::now));
    assert_eq!(unlocked.len(), 2, "bob's lock is not saved once unlocked");

    let restarted = Lockouts::default();
    assert_eq!(restarted.restore(saved.clone(), &limits), 3);
    assert!(restarted.is_locked("alice", a, true, &limits));
    assert!(restarted.is_locked("bob", a, true, &limits));
    assert!(restarted.is_locked("made-up", b, false, &limits));
    assert!(!restarted.is_locked("carol", a, true, &limits));
    assert_eq!(restarted.snapshot(&limits, |_| None).len(), 3);

    let shorter = Limits {
        lockout: Duration::ZERO,
        ..limits.clone()
    };
    assert_eq!(Lockouts::default().restore(saved, &shorter), 0, "expired");
}
