//! `USER@HOST[:PORT]`: who logs in where.

use std::fmt;
use std::str::FromStr;

use ftp_shared::message::DEFAULT_PORT;

/// A user at a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl Target {
    /// The address to connect to, `host:port` (IPv6 hosts in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.addr())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let usage = || format!("{s:?} is not USER@HOST[:PORT]");
        let (user, rest) = s.split_once('@').ok_or_else(usage)?;
        if user.is_empty() || rest.is_empty() {
            return Err(usage());
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(usage)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(usage)?)),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => return Err(format!("{s:?}: put an IPv6 address in brackets")),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(usage());
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse()
                .map_err(|_| format!("{p:?} is not a port number"))?,
        };
        Ok(Target {
            user: user.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_type() {
        let t: Target = "alice@example.org".parse().unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("alice", "example.org", 2121)
        );
        let t: Target = "bob@127.0.0.1:40000".parse().unwrap();
        assert_eq!(t.addr(), "127.0.0.1:40000");
        let t: Target = "carol@[::1]:22".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 22));
        assert_eq!(t.to_string(), "carol@[::1]:22");
        for bad in [
            "alice",
            "@host",
            "alice@",
            "a@h:x",
            "a@h:99999",
            "a@::1",
            "a@[::1",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
