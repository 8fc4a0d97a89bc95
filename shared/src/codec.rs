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

use crate::message::{Request, Response};

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

/// Decodes one message from a complete frame body; trailing bytes are an error.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    let (msg, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
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

impl<In: DeserializeOwned, Out> Decoder for MessageCodec<In, Out> {
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
        decode_body(&body).map(Some)
    }
}

impl<In, Out: Serialize> Encoder<Out> for MessageCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, msg: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(&msg, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::message::{Digest, MAGIC, PROTOCOL_VERSION};
    use serde_bytes::ByteBuf;

    fn frame_of<T: Serialize>(msg: &T) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_frame(msg, &mut buf).unwrap();
        buf
    }

    #[test]
    fn hello_has_the_documented_bytes() {
        let buf = frame_of(&Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
        });
        // length 14 = variant u32 (0) + 8 magic bytes + u16 version.
        let expected: &[u8] = &[
            0, 0, 0, 14, 0, 0, 0, 0, b'M', b'I', b'N', b'I', b'F', b'T', b'P', 1, 1, 0,
        ];
        assert_eq!(&buf[..], expected);
    }

    #[test]
    fn strings_bools_and_error_codes_have_the_documented_layout() {
        let buf = frame_of(&Request::Mkdir {
            path: "ab".into(),
            parents: true,
        });
        let expected: &[u8] = &[
            0, 0, 0, 15, 8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', 1,
        ];
        assert_eq!(&buf[..], expected);
        let buf = frame_of(&Response::error(ErrorCode::NOT_FOUND, "x"));
        let expected: &[u8] = &[0, 0, 0, 15, 7, 0, 0, 0, 6, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'x'];
        assert_eq!(&buf[..], expected);
    }

    #[test]
    fn every_request_round_trips() {
        let msgs = vec![
            Request::Hello {
                magic: MAGIC,
                version: 7,
            },
            Request::AuthStart {
                client_first: "n,,n=a,r=x".into(),
            },
            Request::AuthFinish {
                client_final: "c=biws".into(),
            },
            Request::Put {
                path: "目录/报告.txt".into(),
                size: u64::MAX,
            },
            Request::Data(ByteBuf::from(vec![1, 2, 3])),
            Request::PutEnd {
                digest: Digest::Sha256([9; 32]),
            },
            Request::PutCancel,
            Request::Get { path: "a".into() },
            Request::Mkdir {
                path: "d".into(),
                parents: false,
            },
            Request::Quit,
        ];
        let mut codec = ServerCodec::new(MAX_FRAME);
        let mut buf = BytesMut::new();
        for m in &msgs {
            encode_frame(m, &mut buf).unwrap();
        }
        for m in msgs {
            assert_eq!(codec.decode(&mut buf).unwrap(), Some(m));
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut codec = ServerCodec::new(PRE_LOGIN_MAX_FRAME);
        let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xFF][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLarge { .. })
        ));
        assert!(
            buf.capacity() < 1024,
            "nothing was reserved for the claimed body"
        );
        let mut buf = BytesMut::from(&(PRE_LOGIN_MAX_FRAME as u32 + 1).to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn zero_length_trailing_bytes_and_unknown_variants_are_refused() {
        let mut codec = ServerCodec::new(MAX_FRAME);
        let mut buf = BytesMut::from(&[0, 0, 0, 0][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::EmptyFrame)
        ));

        let mut buf = frame_of(&Request::Quit);
        buf[3] += 1;
        buf.put_u8(0);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TrailingBytes(1))
        ));

        let mut buf = BytesMut::from(&[0, 0, 0, 4, 99, 0, 0, 0][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn a_string_claiming_a_huge_length_is_refused_without_allocating_it() {
        // Put { path: <claims 2^40 bytes>, ... } in a 17-byte frame.
        let mut body = vec![3, 0, 0, 0];
        body.extend_from_slice(&(1u64 << 40).to_le_bytes());
        body.extend_from_slice(b"abcde");
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.extend_from_slice(&body);
        let mut codec = ServerCodec::new(MAX_FRAME);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut body = vec![7, 0, 0, 0];
        body.extend_from_slice(&2u64.to_le_bytes());
        body.extend_from_slice(&[0xC0, 0xAE]);
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.extend_from_slice(&body);
        let mut codec = ServerCodec::new(MAX_FRAME);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn frames_split_into_single_bytes_reassemble() {
        let whole = frame_of(&Request::Get {
            path: "some/file".into(),
        });
        let mut codec = ServerCodec::new(MAX_FRAME);
        let mut buf = BytesMut::new();
        for (i, b) in whole.iter().enumerate() {
            buf.put_u8(*b);
            let got = codec.decode(&mut buf).unwrap();
            assert_eq!(got.is_some(), i == whole.len() - 1);
        }
    }
}
