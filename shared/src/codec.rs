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
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::message::DigestAlgorithm;
    use crate::message::{Digest, MAGIC, PROTOCOL_VERSION};
    use bytes::Bytes;

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
                offset: 7,
                algorithm: DigestAlgorithm::Sha256,
            },
            Request::Data(Bytes::from_static(&[1, 2, 3])),
            Request::Data(Bytes::new()),
            Request::PutEnd {
                digest: Digest::Sha256([9; 32]),
            },
            Request::PutEnd {
                digest: Digest::Blake3([8; 32]),
            },
            Request::PutCancel,
            Request::Get {
                path: "a".into(),
                offset: 0,
                algorithm: DigestAlgorithm::Blake3,
            },
            Request::Partial {
                path: "p".into(),
                size: 9,
                algorithm: DigestAlgorithm::Blake3,
            },
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
        let err = codec.decode(&mut buf).map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed message: unknown message type 99"
        );

        let mut buf = BytesMut::from(&[0, 0, 0, 2, 0, 0][..]);
        let err = codec.decode(&mut buf).map(|_| ()).unwrap_err();
        assert_eq!(err.to_string(), "malformed message: message ends early");
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
    fn data_frames_have_the_bincode_layout_both_ways() {
        let payload = Bytes::from_static(b"hello");
        let encoded = frame_of(&Response::Data(payload.clone()));
        let mut header = data_header::<Response>(payload.len()).to_vec();
        header.extend_from_slice(&payload);
        assert_eq!(&encoded[..], &header[..]);
        let mut codec = ClientCodec::new(MAX_FRAME);
        let mut buf = BytesMut::from(&header[..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Response::Data(payload))
        );
    }

    #[test]
    fn data_frames_with_a_wrong_payload_length_are_refused() {
        let mut codec = ServerCodec::new(MAX_FRAME);
        let mut frame = data_header::<Request>(4).to_vec();
        frame.extend_from_slice(b"abc"); // one byte short
        frame[3] -= 1;
        let mut buf = BytesMut::from(&frame[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Malformed(_))
        ));
        let mut frame = data_header::<Request>(2).to_vec();
        frame.extend_from_slice(b"abc"); // one byte too many
        frame[3] += 1;
        let mut buf = BytesMut::from(&frame[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TrailingBytes(1))
        ));
    }

    #[test]
    fn frames_split_into_single_bytes_reassemble() {
        let whole = frame_of(&Request::Get {
            path: "some/file".into(),
            offset: 0,
            algorithm: DigestAlgorithm::Blake3,
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
