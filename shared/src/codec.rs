//! Framing: every message is a 4-byte big-endian length, then that many bytes
//! of bincode (see [`config`]).
//!
//! The length is checked against the current cap before a single byte of the
//! body is buffered, so a peer that claims a 4 GiB frame costs four bytes of
//! memory and a closed connection. The cap is small until the peer has logged
//! in (`PRE_LOGIN_MAX_FRAME`) and about one data chunk after (`MAX_FRAME`).
//! bincode's own byte limit backs this up inside a frame: a string that claims
//! more bytes than the frame holds is refused before allocation.

use std::marker::PhantomData;

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bytes::{Buf, BufMut, BytesMut};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::codec::{Decoder, Encoder};

use crate::message::{Request, Response, WireMessage};

/// The largest frame either side accepts before the client has logged in.
pub const PRE_LOGIN_MAX_FRAME: usize = 4 * 1024;
/// The largest frame either side accepts after login (a data chunk plus headroom).
pub const MAX_FRAME: usize = 1024 * 1024;
/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// The bincode configuration of the wire: little-endian, fixed-width integers
/// (so the layout is simple to describe and to implement elsewhere), and a
/// byte limit equal to the largest frame.
pub type WireConfig = Configuration<LittleEndian, Fixint, Limit<MAX_FRAME>>;

/// The one bincode configuration used for every message.
pub const fn config() -> WireConfig {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_FRAME>()
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection error")]
    Io(#[from] std::io::Error),
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    #[error("empty frame")]
    EmptyFrame,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0} unexpected bytes after the message in a frame")]
    TrailingBytes(usize),
    #[error("message cannot be encoded: {0}")]
    Encode(String),
}

impl CodecError {
    /// True when the peer broke the protocol (as opposed to the connection failing).
    pub fn is_protocol_violation(&self) -> bool {
        !matches!(self, CodecError::Io(_))
    }
}

/// Encodes `Out` messages and decodes `In` messages as length-prefixed bincode frames.
#[derive(Debug)]
pub struct MessageCodec<In, Out> {
    max_frame: usize,
    _marker: PhantomData<fn(Out) -> In>,
}

/// The server's view: it reads requests and writes responses.
pub type ServerCodec = MessageCodec<Request, Response>;
/// The client's view: it reads responses and writes requests.
pub type ClientCodec = MessageCodec<Response, Request>;

impl<In, Out> MessageCodec<In, Out> {
    /// A codec whose incoming frames may be at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        MessageCodec {
            max_frame: max_frame.min(MAX_FRAME),
            _marker: PhantomData,
        }
    }

    /// Changes the cap on incoming frames (raised after login).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame.min(MAX_FRAME);
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

/// Bytes before the payload of a `Data` frame: the length prefix, the variant
/// index (`u32`) and the payload length (`u64`).
pub const DATA_HEADER: usize = LENGTH_PREFIX + 4 + 8;

/// The header of a `Data` frame carrying `len` bytes, for writers that send
/// the payload straight from its buffer instead of copying it into a frame.
pub fn data_header<M: WireMessage>(len: usize) -> [u8; DATA_HEADER] {
    let mut header = [0u8; DATA_HEADER];
    header[..4].copy_from_slice(&((len + 12) as u32).to_be_bytes());
    header[4..8].copy_from_slice(&M::DATA_TAG.to_le_bytes());
    header[8..].copy_from_slice(&(len as u64).to_le_bytes());
    header
}

/// Decodes one frame body. A `Data` body hands its payload over without a
/// copy; everything else goes through bincode. Trailing bytes are an error.
pub fn decode_frame<T: DeserializeOwned + WireMessage>(
    mut body: BytesMut,
) -> Result<T, CodecError> {
    if body.len() >= 12 && body[..4] == T::DATA_TAG.to_le_bytes() {
        let len = u64::from_le_bytes(body[4..12].try_into().expect("eight bytes"));
        let have = (body.len() - 12) as u64;
        if len > have {
            return Err(CodecError::Malformed(format!(
                "data of {len} bytes claimed in a frame holding {have}"
            )));
        }
        if len < have {
            return Err(CodecError::TrailingBytes((have - len) as usize));
        }
        body.advance(12);
        return Ok(T::from_data(body.freeze()));
    }
    decode_body(&body)
}

/// A short, stable description of why a body did not decode: never the
/// decoder's debug text, never bytes of the peer's message.
fn describe_decode_error(e: &bincode::error::DecodeError, body: &[u8]) -> String {
    use bincode::error::DecodeError as E;
    let tag = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    let variant = |found: u64| {
        if tag.map(u64::from) == Some(found) {
            format!("unknown message type {found}")
        } else {
            format!("unknown variant {found} in a field")
        }
    };
    match e {
        E::UnexpectedEnd { .. } => "message ends early".into(),
        E::LimitExceeded => "message exceeds the size limit".into(),
        E::UnexpectedVariant { found, .. } => variant(u64::from(*found)),
        E::Utf8 { .. } | E::InvalidCharEncoding(_) => "text is not valid UTF-8".into(),
        E::InvalidBooleanValue(_) => "invalid boolean value".into(),
        E::OtherString(text) if text.contains("variant index") => text
            .split('`')
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .map_or_else(|| "unknown variant".into(), variant),
        _ => "invalid field value".into(),
    }
}

/// Decodes one message from a complete frame body; trailing bytes are an error.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    let (msg, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Malformed(describe_decode_error(&e, body)))?;
    if used != body.len() {
        return Err(CodecError::TrailingBytes(body.len() - used));
    }
    Ok(msg)
}

/// Appends one frame (length prefix and body) holding `msg` to `dst`.
pub fn encode_frame<T: Serialize>(msg: &T, dst: &mut BytesMut) -> Result<(), CodecError> {
    let start = dst.len();
    dst.put_u32(0);
    let written = bincode::serde::encode_into_std_write(msg, &mut dst.writer(), config());
    let len = match written {
        Ok(len) => len,
        Err(e) => {
            dst.truncate(start);
            return Err(CodecError::Encode(e.to_string()));
        }
    };
    if len > MAX_FRAME {
        dst.truncate(start);
        return Err(CodecError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    dst[start..start + LENGTH_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

impl<In: DeserializeOwned + WireMessage, Out> Decoder for MessageCodec<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        let Some(prefix) = src.get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix.try_into().expect("four bytes")) as usize;
        if len > self.max_frame {
            return Err(CodecError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        if len == 0 {
            return Err(CodecError::EmptyFrame);
        }
        if src.len() < LENGTH_PREFIX + len {
            src.reserve(LENGTH_PREFIX + len - src.len());
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX);
        let body = src.split_to(len);
        decode_frame(body).map(Some)
    }
}

impl<In, Out: Serialize> Encoder<Out> for MessageCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, msg: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(&msg, dst)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
