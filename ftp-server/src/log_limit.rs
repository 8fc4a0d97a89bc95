//! Rate limit of repeated log events per peer address.
//!
//! A peer that fails logins or breaks the protocol in a loop must not make
//! the log grow at the speed of its requests. Per address and kind of event,
//! the first [`BURST`] events of each [`INTERVAL`] are logged; the rest are
//! counted, and the next event after the interval logs one summary line
//! ("N more ... from ADDR suppressed") before carrying on. The table is
//! bounded: when full, old entries are dropped, and if it is still full all
//! addresses share one entry (still rate-limited).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Events of one kind from one address logged per interval.
pub const BURST: u32 = 5;
/// The interval of [`BURST`].
pub const INTERVAL: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 10_000;

/// Kinds of rate-limited events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    FailedLogin,
    ProtocolError,
}

impl Event {
    fn plural(self) -> &'static str {
        match self {
            Event::FailedLogin => "failed logins",
            Event::ProtocolError => "protocol errors",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// The per-address log rate limiter of a server.
#[derive(Debug, Default)]
pub struct LogLimit {
    table: Mutex<HashMap<(Event, IpAddr), Window>>,
}

impl LogLimit {
    /// Whether this event from `ip` may be logged. When events were
    /// suppressed in the interval before, logs their summary first.
    pub fn allow(&self, event: Event, ip: IpAddr) -> bool {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut key = (event, ip);
        if !table.contains_key(&key) && table.len() >= MAX_ENTRIES {
            table.retain(|_, w| now.duration_since(w.start) < INTERVAL);
            if table.len() >= MAX_ENTRIES {
                key = (event, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            }
        }
        let w = table.entry(key).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        if now.duration_since(w.start) >= INTERVAL {
            if w.suppressed > 0 {
                tracing::warn!(
                    "{} more {} from {} suppressed",
                    w.suppressed,
                    event.plural(),
                    key.1
                );
            }
            *w = Window {
                start: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < BURST {
            w.logged += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_a_burst_per_address_then_counts() {
        let limit = LogLimit::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let allowed = (0..100)
            .filter(|_| limit.allow(Event::FailedLogin, a))
            .count();
        assert_eq!(allowed, BURST as usize);
        assert!(limit.allow(Event::FailedLogin, b));
        assert!(limit.allow(Event::ProtocolError, a));
        let t = limit.table.lock().unwrap();
        assert_eq!(
            t[&(Event::FailedLogin, a)].suppressed,
            100 - u64::from(BURST)
        );
    }
}
