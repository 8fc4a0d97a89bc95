//! Who may connect: caps on all connections, on connections from one
//! address, and on connections that have not logged in yet ("waiting").
//!
//! Waiting connections cannot hold their slots against everyone else: when
//! the waiting slots (or all slots) are full, a newcomer takes the place of
//! the least advanced waiting connection, the oldest first, which is closed.
//! Only connections that made no progress for [`STALLED`] are candidates
//! while there are any; otherwise (a churn of fresh connections) the one
//! whose last progress is the oldest goes, so that a client going through
//! its handshake is not replaced by the next connection of a flood.
//! An address over its share of waiting slots, or at its share of all slots,
//! only ever replaces its own, so one address cannot push out the others.
//! Logged-in sessions are never replaced: when every slot is taken by one,
//! the newcomer is refused, as it is when its address holds its share of all
//! slots with logged-in sessions only.
//!
//! This module is the one place that decides who gets a slot.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::Limits;

/// A waiting connection without progress for this long is stalled.
pub const STALLED: Duration = Duration::from_secs(1);

/// How far a waiting connection has come; the least advanced goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Progress {
    /// TCP connected, the TLS handshake not done.
    Connected = 0,
    /// The transport is ready (TLS done, or plaintext).
    Transport = 1,
    /// The client's `Hello` was answered.
    Hello = 2,
    /// A login is under way (`AuthStart` received).
    AuthStart = 3,
}

/// Why a newcomer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is held by a logged-in session.
    Full,
    /// The address holds its share of all slots.
    Address,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Full => "too many connections",
            Refusal::Address => "too many connections from this address",
        }
    }
}

/// The slot table shared by the accept loop and every connection.
#[derive(Debug)]
pub struct Admission {
    state: Mutex<State>,
    /// The origin of [`Ticket::since`].
    epoch: Instant,
    max_total: usize,
    max_per_address: usize,
    max_waiting: usize,
    max_waiting_per_address: usize,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    /// The waiting connections by id (ids grow: the first is the oldest).
    waiting: BTreeMap<u64, Arc<Ticket>>,
    waiting_per_address: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// What a waiting connection and the table share.
#[derive(Debug)]
struct Ticket {
    ip: IpAddr,
    progress: AtomicU8,
    /// Milliseconds from [`Admission::epoch`] to the last progress.
    since: AtomicU64,
    /// Set (under the table's lock) when the slot went to a newcomer; the
    /// connection's counts went with it.
    evicted: AtomicBool,
    cancel: CancellationToken,
}

/// The place one connection holds while it lives.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    id: u64,
    ticket: Arc<Ticket>,
}

impl Admission {
    pub fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            state: Mutex::default(),
            epoch: Instant::now(),
            max_total: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            max_waiting: limits.max_unauthenticated,
            max_waiting_per_address: limits.max_unauthenticated_per_address,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a new connection from `ip`, made free by closing a waiting
    /// connection if needed.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut state = self.lock();
        if state.per_address.get(&ip).copied().unwrap_or(0) >= self.max_per_address
            && !state.evict(self.now(), |t| t.ip == ip)
        {
            return Err(Refusal::Address);
        }
        // Over its share of waiting slots, an address only replaces its own.
        if state.waiting_per_address.get(&ip).copied().unwrap_or(0) >= self.max_waiting_per_address
        {
            state.evict(self.now(), |t| t.ip == ip);
        }
        let waiting = state.waiting.len();
        if (waiting >= self.max_waiting || state.total >= self.max_total)
            && !state.evict(self.now(), |_| true)
        {
            return Err(Refusal::Full);
        }
        let id = state.next_id;
        state.next_id += 1;
        let ticket = Arc::new(Ticket {
            ip,
            progress: AtomicU8::new(Progress::Connected as u8),
            since: AtomicU64::new(self.now()),
            evicted: AtomicBool::new(false),
            cancel: CancellationToken::new(),
        });
        state.total += 1;
        *state.per_address.entry(ip).or_insert(0) += 1;
        *state.waiting_per_address.entry(ip).or_insert(0) += 1;
        state.waiting.insert(id, ticket.clone());
        Ok(Slot {
            admission: self.clone(),
            id,
            ticket,
        })
    }

    /// Milliseconds since the epoch.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Connections counted now: (all, waiting).
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.total, state.waiting.len())
    }
}

impl State {
    /// Closes the waiting connection that `eligible` accepts and that has
    /// least to lose (see the module's documentation) and gives back its
    /// counts; false when there is none.
    fn evict(&mut self, now: u64, eligible: impl Fn(&Ticket) -> bool) -> bool {
        let stalled_ms = u64::try_from(STALLED.as_millis()).unwrap_or(u64::MAX);
        let candidates = || self.waiting.iter().filter(|(_, t)| eligible(t));
        let stalled = candidates()
            .filter(|(_, t)| now.saturating_sub(t.since.load(Ordering::Relaxed)) >= stalled_ms)
            .min_by_key(|(id, t)| (t.progress.load(Ordering::Relaxed), **id));
        let victim = stalled
            .or_else(|| candidates().min_by_key(|(id, t)| (t.since.load(Ordering::Relaxed), **id)))
            .map(|(id, _)| *id);
        let Some(ticket) = victim.and_then(|id| self.waiting.remove(&id)) else {
            return false;
        };
        ticket.evicted.store(true, Ordering::Relaxed);
        ticket.cancel.cancel();
        self.forget_waiting(ticket.ip);
        self.forget(ticket.ip);
        true
    }

    fn forget_waiting(&mut self, ip: IpAddr) {
        decrement(&mut self.waiting_per_address, ip);
    }

    fn forget(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        decrement(&mut self.per_address, ip);
    }
}

fn decrement(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&ip);
        }
    }
}

impl Slot {
    /// Records how far the connection has come (it never goes back).
    pub fn advance(&self, progress: Progress) {
        let before = self
            .ticket
            .progress
            .fetch_max(progress as u8, Ordering::Relaxed);
        if before < progress as u8 {
            self.ticket
                .since
                .store(self.admission.now(), Ordering::Relaxed);
        }
    }

    /// Completes when the slot went to a newcomer: the connection must close.
    pub fn evicted(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.ticket.cancel.cancelled()
    }

    /// The connection logged in: it leaves the waiting slots and can no
    /// longer be replaced. False when it was replaced first (it must close).
    pub fn logged_in(&self) -> bool {
        let mut state = self.admission.lock();
        if self.ticket.evicted.load(Ordering::Relaxed) {
            return false;
        }
        if state.waiting.remove(&self.id).is_some() {
            state.forget_waiting(self.ticket.ip);
        }
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        if self.ticket.evicted.load(Ordering::Relaxed) {
            return;
        }
        if state.waiting.remove(&self.id).is_some() {
            state.forget_waiting(self.ticket.ip);
        }
        state.forget(self.ticket.ip);
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
