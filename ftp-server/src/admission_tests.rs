use super::*;

/// A table whose clock reads 10 s, so that connections can be made stalled.
fn table(limits: &Limits) -> Arc<Admission> {
    let mut admission = Admission::new(limits);
    let earlier = Instant::now().checked_sub(Duration::from_secs(10));
    Arc::get_mut(&mut admission).unwrap().epoch = earlier.unwrap();
    admission
}

/// Makes `slot` look stalled (no progress for 10 s).
fn stall(slot: &Slot) {
    slot.ticket.since.store(0, Ordering::Relaxed);
}

fn limits(total: usize, per_address: usize, waiting: usize, waiting_per_address: usize) -> Limits {
    Limits {
        max_connections: total,
        max_connections_per_address: per_address,
        max_unauthenticated: waiting,
        max_unauthenticated_per_address: waiting_per_address,
        ..Limits::default()
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn is_evicted(slot: &Slot) -> bool {
    slot.ticket.evicted.load(Ordering::Relaxed)
}

#[test]
fn a_full_waiting_table_replaces_the_least_advanced_oldest() {
    let admission = table(&limits(10, 10, 3, 3));
    let a = admission.admit(ip(1)).unwrap();
    let b = admission.admit(ip(2)).unwrap();
    let c = admission.admit(ip(3)).unwrap();
    a.advance(Progress::Hello);
    c.advance(Progress::Transport);
    [&a, &b, &c].into_iter().for_each(stall);
    // b is the least advanced.
    let d = admission.admit(ip(4)).unwrap();
    stall(&d);
    assert!(is_evicted(&b) && !is_evicted(&a) && !is_evicted(&c));
    assert_eq!(admission.counts(), (3, 3));
    // Among equals, the oldest goes: d and c... d is least advanced now.
    let e = admission.admit(ip(5)).unwrap();
    assert!(is_evicted(&d));
    e.advance(Progress::AuthStart);
    stall(&e);
    let _f = admission.admit(ip(6)).unwrap();
    assert!(is_evicted(&c), "c (transport) before a (hello)");
    assert!(!is_evicted(&a) && !is_evicted(&e));
    drop((a, b, c, d));
    assert_eq!(admission.counts(), (2, 2));
}

#[test]
fn an_address_over_its_share_replaces_only_its_own() {
    let admission = table(&limits(10, 10, 10, 2));
    let other = admission.admit(ip(9)).unwrap();
    let first = admission.admit(ip(1)).unwrap();
    let second = admission.admit(ip(1)).unwrap();
    second.advance(Progress::AuthStart);
    [&other, &first, &second].into_iter().for_each(stall);
    let third = admission.admit(ip(1)).unwrap();
    stall(&third);
    assert!(is_evicted(&first) && !is_evicted(&second) && !is_evicted(&other));
    let _fourth = admission.admit(ip(1)).unwrap();
    assert!(is_evicted(&third), "the least advanced of its own goes");
    assert!(!is_evicted(&second) && !is_evicted(&other));
    assert_eq!(admission.counts(), (3, 3));
}

#[test]
fn logged_in_sessions_are_never_replaced() {
    let admission = table(&limits(2, 10, 10, 10));
    let a = admission.admit(ip(1)).unwrap();
    assert!(a.logged_in());
    let b = admission.admit(ip(2)).unwrap();
    // The total is full: the waiting one makes room, the logged-in one stays.
    let c = admission.admit(ip(3)).unwrap();
    assert!(is_evicted(&b) && !is_evicted(&a));
    assert!(c.logged_in());
    assert_eq!(admission.admit(ip(4)).unwrap_err(), Refusal::Full);
    // An evicted connection cannot log in afterwards.
    assert!(!b.logged_in());
    drop(b);
    assert_eq!(admission.counts(), (2, 0));
    drop(a);
    let _d = admission.admit(ip(4)).unwrap();
    assert_eq!(admission.counts(), (2, 1));
}

#[test]
fn the_per_address_cap_replaces_its_own_waiting_then_refuses() {
    let admission = table(&limits(10, 2, 10, 10));
    let a = admission.admit(ip(1)).unwrap();
    let b = admission.admit(ip(1)).unwrap();
    let _other = admission.admit(ip(2)).unwrap();
    // At the cap, a newcomer replaces its address's oldest waiting one.
    let c = admission.admit(ip(1)).unwrap();
    assert!(is_evicted(&a) && !is_evicted(&b) && !is_evicted(&_other));
    assert!(!a.logged_in(), "a replaced connection cannot log in");
    assert!(b.logged_in() && c.logged_in());
    // Logged-in sessions are never replaced: now the address is refused.
    assert_eq!(admission.admit(ip(1)).unwrap_err(), Refusal::Address);
    drop(a);
    assert_eq!(admission.admit(ip(1)).unwrap_err(), Refusal::Address);
    drop(b);
    let _d = admission.admit(ip(1)).unwrap();
    assert_eq!(admission.counts(), (3, 2));
}

#[test]
fn stalled_connections_go_first_and_among_fresh_ones_the_least_recently_advanced() {
    let admission = table(&limits(10, 10, 3, 3));
    let idle = admission.admit(ip(1)).unwrap();
    idle.advance(Progress::AuthStart);
    stall(&idle);
    let client = admission.admit(ip(2)).unwrap();
    let flood = admission.admit(ip(3)).unwrap();
    flood.advance(Progress::Hello);
    // The stalled one goes, however advanced.
    let next = admission.admit(ip(4)).unwrap();
    assert!(is_evicted(&idle) && !is_evicted(&client));
    // None stalled: the one whose last progress is the oldest goes, here
    // the fresh client went through a step after the flood's connection.
    client.ticket.since.store(9_900, Ordering::Relaxed);
    flood.ticket.since.store(9_800, Ordering::Relaxed);
    next.ticket.since.store(9_950, Ordering::Relaxed);
    let _last = admission.admit(ip(5)).unwrap();
    assert!(is_evicted(&flood) && !is_evicted(&client) && !is_evicted(&next));
}
