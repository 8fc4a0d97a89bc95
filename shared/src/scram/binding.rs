//! Channel binding (RFC 5802 section 6) with the `tls-exporter` type of
//! RFC 9266: the GS2 header a client sends, and the `c=` value both ends
//! compute from it.
//!
//! "The client MUST include the channel binding data ... in the
//! client-final-message. ... c: This REQUIRED attribute specifies the base64-
//! encoded GS2 header and channel binding data." (RFC 5802 section 5.1)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The only channel binding type this protocol offers.
pub const TLS_EXPORTER: &str = "tls-exporter";
/// The exporter label of RFC 9266 section 2; the exporter is called with no
/// context.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// Bytes of exporter output used as channel binding data (RFC 9266 section 2).
pub const TLS_EXPORTER_LEN: usize = 32;

/// What a client says about channel binding in its GS2 header.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// `n`: the client does not support channel binding (or has no channel
    /// to bind to, as in plaintext mode).
    None,
    /// `y`: the client supports channel binding but thinks the server does
    /// not. A server that does support it MUST then fail the login.
    Unoffered,
    /// `p=tls-exporter`: bound to the exporter value of the client's TLS
    /// connection.
    TlsExporter([u8; TLS_EXPORTER_LEN]),
}

impl std::fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelBinding::None => "None",
            ChannelBinding::Unoffered => "Unoffered",
            ChannelBinding::TlsExporter(_) => "TlsExporter(..)",
        })
    }
}

impl ChannelBinding {
    /// The GS2 header: `n,,`, `y,,` or `p=tls-exporter,,` (never an authzid).
    pub fn gs2_header(&self) -> String {
        match self {
            ChannelBinding::None => "n,,".into(),
            ChannelBinding::Unoffered => "y,,".into(),
            ChannelBinding::TlsExporter(_) => format!("p={TLS_EXPORTER},,"),
        }
    }

    /// The value of `c=` in the client-final-message: base64 of the GS2
    /// header followed by the channel binding data ("cbind-input = gs2-header
    /// [ cbind-data ]", RFC 5802 section 7).
    pub fn c_value(&self) -> String {
        let mut input = self.gs2_header().into_bytes();
        if let ChannelBinding::TlsExporter(data) = self {
            input.extend_from_slice(data);
        }
        B64.encode(input)
    }
}
