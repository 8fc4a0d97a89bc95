//! Properties of the frame codec over arbitrary input: hostile bytes never
//! panic it, never make it buffer past its cap, and every message it can
//! encode comes back unchanged, however the bytes are split.

use bytes::{BufMut, Bytes, BytesMut};
use ftp_shared::codec::{ClientCodec, MAX_FRAME, PRE_LOGIN_MAX_FRAME, ServerCodec, encode_frame};
use ftp_shared::message::DigestAlgorithm;
use ftp_shared::{Digest, ErrorCode, Request, Response};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn algorithm() -> impl Strategy<Value = DigestAlgorithm> {
    prop_oneof![Just(DigestAlgorithm::Sha256), Just(DigestAlgorithm::Blake3)]
}

fn digest() -> impl Strategy<Value = Digest> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(Digest::Sha256),
        any::<[u8; 32]>().prop_map(Digest::Blake3)
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<[u8; 8]>(), any::<u16>())
            .prop_map(|(magic, version)| Request::Hello { magic, version }),
        ".{0,64}".prop_map(|client_first| Request::AuthStart { client_first }),
        ".{0,64}".prop_map(|client_final| Request::AuthFinish { client_final }),
        (".{0,64}", any::<u64>(), any::<u64>(), algorithm()).prop_map(
            |(path, size, offset, algorithm)| Request::Put {
                path,
                size,
                offset,
                algorithm
            }
        ),
        proptest::collection::vec(any::<u8>(), 0..2048).prop_map(|d| Request::Data(Bytes::from(d))),
        digest().prop_map(|digest| Request::PutEnd { digest }),
        Just(Request::PutCancel),
        (".{0,64}", any::<u64>(), algorithm()).prop_map(|(path, offset, algorithm)| Request::Get {
            path,
            offset,
            algorithm
        }),
        (".{0,64}", any::<bool>()).prop_map(|(path, parents)| Request::Mkdir { path, parents }),
        Just(Request::Quit),
        (".{0,64}", any::<u64>(), algorithm()).prop_map(|(path, size, algorithm)| {
            Request::Partial {
                path,
                size,
                algorithm,
            }
        }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (any::<u16>(), ".{0,32}").prop_map(|(version, server)| Response::Hello { version, server }),
        Just(Response::Ok),
        any::<u64>().prop_map(|size| Response::FileStart { size }),
        proptest::collection::vec(any::<u8>(), 0..2048)
            .prop_map(|d| Response::Data(Bytes::from(d))),
        digest().prop_map(|digest| Response::FileEnd { digest }),
        (any::<u16>(), ".{0,64}").prop_map(|(code, message)| Response::Error {
            code: ErrorCode(code),
            message
        }),
        (any::<u64>(), digest()).prop_map(|(offset, digest)| Response::Partial { offset, digest }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn requests_round_trip_in_any_split(msgs in proptest::collection::vec(request(), 1..8), cut in 1usize..64) {
        let mut wire = BytesMut::new();
        for m in &msgs {
            encode_frame(m, &mut wire).unwrap();
        }
        let mut codec = ServerCodec::new(MAX_FRAME);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(cut) {
            buf.put_slice(piece);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn responses_round_trip(msg in response()) {
        let mut wire = BytesMut::new();
        encode_frame(&msg, &mut wire).unwrap();
        let mut codec = ClientCodec::new(MAX_FRAME);
        prop_assert_eq!(codec.decode(&mut wire).unwrap(), Some(msg));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_overbuffer(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let mut codec = ServerCodec::new(PRE_LOGIN_MAX_FRAME);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        // Whatever was claimed, nothing beyond one capped frame is reserved.
        prop_assert!(buf.capacity() <= bytes.len().max(4 + PRE_LOGIN_MAX_FRAME) + 64);
    }

    #[test]
    fn valid_length_prefixes_with_garbage_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 1..512)) {
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.put_slice(&body);
        let mut codec = ServerCodec::new(MAX_FRAME);
        let _ = codec.decode(&mut buf);
    }
}
