//! Arbitrary bytes as they would arrive from a peer, fed to both directions'
//! decoders in pieces: no panic, no allocation beyond the frame cap, and any
//! message decoded re-encodes to a frame that decodes to the same message.
#![no_main]

use bytes::BytesMut;
use ftp_shared::codec::{ClientCodec, MAX_FRAME, PRE_LOGIN_MAX_FRAME, ServerCodec, encode_frame};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(1, |b| (*b as usize % 64) + 1);
    for cap in [PRE_LOGIN_MAX_FRAME, MAX_FRAME] {
        let mut codec = ServerCodec::new(cap);
        let mut buf = BytesMut::new();
        'requests: for piece in data.chunks(split) {
            buf.extend_from_slice(piece);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(msg)) => {
                        let mut again = BytesMut::new();
                        encode_frame(&msg, &mut again).expect("a decoded message encodes");
                        let back = ServerCodec::new(MAX_FRAME).decode(&mut again);
                        assert_eq!(back.expect("re-decodes").as_ref(), Some(&msg));
                    }
                    Ok(None) => break,
                    Err(_) => break 'requests,
                }
            }
            assert!(buf.capacity() <= 4 + cap + data.len() + 64);
        }
    }
    let mut codec = ClientCodec::new(MAX_FRAME);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
});
