//! Brakes on password guessing, counted across connections.
//!
//! Closing a connection after a few failures only slows a guesser down by a
//! reconnect, so failures are remembered here:
//!
//! - A known user failing [`Limits::lockout_failures`] times from one IP
//!   address (each within [`Limits::lockout`] of the previous one) locks that
//!   (user, address) pair until the lockout expires; other addresses keep
//!   logging in. An address tracks at most [`PAIRS_PER_ADDRESS`] pairs.
//! - Failures for unknown user names, and for known names beyond an
//!   address's pairs, are counted per address only (one entry however many
//!   names are tried) and lock the whole address the same way.
//! - Every user name (known or not) has a brake: after
//!   [`BRAKE_FREE_FAILURES`] failures from anywhere, each further attempt
//!   waits until a "next attempt allowed" time that grows with the failures
//!   (doubling from [`BRAKE_BASE`], at most [`BRAKE_MAX`]) and that parallel
//!   connections share, so guesses spread over many addresses are slowed
//!   down without anyone being able to lock the account. A success resets it.
//!
//! The tables are bounded ([`Limits::lockout_entries`] entries each). A full failure
//! table fails closed: an address or pair it cannot record is refused as
//! if locked, so filling the table never switches the protection off.
//! Brakes of names that are not in the users file are the only entries
//! dropped to make room (forgetting them does not help a guesser of a real
//! account). A locked login fails exactly like a wrong password.
//!
//! The locks in force are saved beside the users file and read back at
//! start ([`file`]); `ftp-server user unlock NAME` lifts a user's locks and
//! brake early ([`Lockouts::forgive`]).

pub mod file;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::Limits;

/// Known-user pairs one address may hold in the failure table.
pub const PAIRS_PER_ADDRESS: u32 = 16;
/// Failures of one name (from anywhere) before its brake engages.
pub const BRAKE_FREE_FAILURES: u32 = 3;
/// The brake's first delay; it doubles with each further failure.
pub const BRAKE_BASE: Duration = Duration::from_millis(250);
/// The brake's longest delay between two attempts on one name.
pub const BRAKE_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last: Instant,
    /// `last` on the wall clock (saved, and compared with unlocks).
    wall: SystemTime,
}

impl Count {
    fn fresh(now: Instant) -> Count {
        Count {
            failures: 0,
            last: now,
            wall: SystemTime::now(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Brake {
    failures: u32,
    last: Instant,
    next: Instant,
    known: bool,
    wall: SystemTime,
}

#[derive(Debug, Default)]
struct Tables {
    pairs: HashMap<(String, IpAddr), Count>,
    pairs_of: HashMap<IpAddr, u32>,
    addresses: HashMap<IpAddr, Count>,
    brakes: HashMap<String, Brake>,
}

/// What a failed login changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The login is now locked (pair or address).
    pub locked: bool,
    /// The name's brake delays the next attempt.
    pub braked: bool,
}

/// The failed-login tables of a server.
#[derive(Debug, Default)]
pub struct Lockouts {
    tables: Mutex<Tables>,
    /// Woken when a lock starts or is lifted, so that the saved locks follow.
    changes: Notify,
}

fn locked(c: &Count, limits: &Limits, now: Instant) -> bool {
    c.failures >= limits.lockout_failures && now.duration_since(c.last) < limits.lockout
}

/// Counts one failure in `c`: whether it is locked, and whether this
/// failure started the lock.
fn count(c: &mut Count, limits: &Limits, now: Instant) -> (bool, bool) {
    if locked(c, limits, now) {
        // Attempts while locked do not extend the lock.
        return (true, false);
    }
    if now.duration_since(c.last) >= limits.lockout {
        c.failures = 0;
    }
    c.failures += 1;
    c.last = now;
    c.wall = SystemTime::now();
    let now_locked = c.failures >= limits.lockout_failures;
    (now_locked, now_locked)
}

fn brake_delay(failures: u32) -> Duration {
    match failures.checked_sub(BRAKE_FREE_FAILURES + 1) {
        None => Duration::ZERO,
        Some(n) => BRAKE_BASE.saturating_mul(1 << n.min(16)).min(BRAKE_MAX),
    }
}

impl Tables {
    fn expire(&mut self, limits: &Limits, now: Instant) {
        let fresh = |c: &Count| now.duration_since(c.last) < limits.lockout;
        let mut dropped: Vec<IpAddr> = Vec::new();
        self.pairs.retain(|(_, ip), c| {
            let keep = fresh(c);
            if !keep {
                dropped.push(*ip);
            }
            keep
        });
        for ip in dropped {
            if let Some(n) = self.pairs_of.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.pairs_of.remove(&ip);
                }
            }
        }
        self.addresses.retain(|_, c| fresh(c));
    }

    fn remove_pair(&mut self, key: &(String, IpAddr)) -> Option<Count> {
        let removed = self.pairs.remove(key)?;
        if let Some(n) = self.pairs_of.get_mut(&key.1) {
            *n -= 1;
            if *n == 0 {
                self.pairs_of.remove(&key.1);
            }
        }
        Some(removed)
    }

    fn full(&self, limits: &Limits) -> bool {
        self.pairs.len() + self.addresses.len() >= limits.lockout_entries
    }
}

impl Lockouts {
    /// Whether `user` from `ip` is refused now: its pair or its address is
    /// locked, or the table is full and cannot record them (fail closed).
    ///
    /// The address's counter locks the names its failures were counted for:
    /// names not in the users file, and known names that found no room for a
    /// pair of their own. A known name that has (or would get) a pair is
    /// locked by its pair only, so guessing made-up names from an address
    /// does not lock out the real users behind it.
    pub fn is_locked(&self, user: &str, ip: IpAddr, known: bool, limits: &Limits) -> bool {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if t.full(limits) {
            t.expire(limits, now);
        }
        let pair = t.pairs.get(&(user.to_string(), ip));
        let address = t.addresses.get(&ip);
        let counted_by_address = !known
            || (pair.is_none() && t.pairs_of.get(&ip).copied().unwrap_or(0) >= PAIRS_PER_ADDRESS);
        pair.is_some_and(|c| locked(c, limits, now))
            || (counted_by_address && address.is_some_and(|c| locked(c, limits, now)))
            || (t.full(limits) && pair.is_none() && address.is_none())
    }

    /// How long an attempt on `user` must wait for the name's brake; the
    /// attempt takes its turn, so parallel attempts queue one after another.
    pub fn brake(&self, user: &str) -> Duration {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let Some(b) = t.brakes.get_mut(user) else {
            return Duration::ZERO;
        };
        let delay = brake_delay(b.failures);
        if delay.is_zero() {
            return Duration::ZERO;
        }
        let turn = b.next.max(now);
        b.next = turn + delay;
        turn - now
    }

    /// Counts a failed login of `user` (`known`: in the users file) from `ip`.
    pub fn failed(&self, user: &str, ip: IpAddr, known: bool, limits: &Limits) -> Failure {
        let mut guard = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let t = &mut *guard;
        let now = Instant::now();
        let braked = self.count_brake(t, user, known, limits, now);
        if t.full(limits) {
            t.expire(limits, now);
        }
        let key = (user.to_string(), ip);
        let has_pair = t.pairs.contains_key(&key);
        let pairs_here = t.pairs_of.get(&ip).copied().unwrap_or(0);
        let (locked, started) = if known && (has_pair || pairs_here < PAIRS_PER_ADDRESS) {
            if !has_pair && t.full(limits) {
                (true, false)
            } else {
                if !has_pair {
                    *t.pairs_of.entry(ip).or_default() += 1;
                }
                let c = t.pairs.entry(key).or_insert_with(|| Count::fresh(now));
                count(c, limits, now)
            }
        } else if !t.addresses.contains_key(&ip) && t.full(limits) {
            (true, false)
        } else {
            let c = t.addresses.entry(ip).or_insert_with(|| Count::fresh(now));
            count(c, limits, now)
        };
        if started {
            self.changes.notify_one();
        }
        Failure { locked, braked }
    }

    fn count_brake(
        &self,
        t: &mut Tables,
        user: &str,
        known: bool,
        limits: &Limits,
        now: Instant,
    ) -> bool {
        let idle = limits.lockout.max(BRAKE_MAX);
        if !t.brakes.contains_key(user) && t.brakes.len() >= limits.lockout_entries {
            t.brakes
                .retain(|_, b| b.known && now.duration_since(b.last) < idle);
            if t.brakes.len() >= limits.lockout_entries {
                return false;
            }
        }
        let b = t.brakes.entry(user.to_string()).or_insert(Brake {
            failures: 0,
            last: now,
            next: now,
            known,
            wall: SystemTime::now(),
        });
        if now.duration_since(b.last) >= idle {
            b.failures = 0;
        }
        b.failures = b.failures.saturating_add(1);
        b.last = now;
        b.wall = SystemTime::now();
        b.known = known;
        !brake_delay(b.failures).is_zero()
    }

    /// Forgets the failures of a pair, and the name's brake, after a
    /// successful login.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        t.remove_pair(&(user.to_string(), ip));
        t.brakes.remove(user);
    }

    /// Lifts the lock of `user` from `ip` and the name's brake when their
    /// last failure came no later than `unlocked` (the time of the user's
    /// last `ftp-server user unlock`); true when a lock in force was lifted.
    pub fn forgive(&self, user: &str, ip: IpAddr, unlocked: SystemTime, limits: &Limits) -> bool {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if t.brakes.get(user).is_some_and(|b| b.wall <= unlocked) {
            t.brakes.remove(user);
        }
        let key = (user.to_string(), ip);
        if t.pairs.get(&key).is_none_or(|c| c.wall > unlocked) {
            return false;
        }
        let lifted = t
            .remove_pair(&key)
            .is_some_and(|c| locked(&c, limits, Instant::now()));
        if lifted {
            self.changes.notify_one();
        }
        lifted
    }
}

#[cfg(test)]
mod tests;
