//! Tests of the codec (a module of `codec.rs`).

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
