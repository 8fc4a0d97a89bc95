//! SCRAM-SHA-256: known answers of RFC 7677 section 3, plus hostile inputs.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ftp_shared::scram::*;

const VECTORS: &str = include_str!("data/scram-sha-256.txt");
const SERVER_SUFFIX: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

fn vectors() -> HashMap<&'static str, &'static str> {
    VECTORS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key = value");
            (k.trim(), v.trim())
        })
        .collect()
}

fn v(key: &str) -> &'static str {
    vectors()
        .get(key)
        .copied()
        .unwrap_or_else(|| panic!("vector {key} missing"))
}

fn h32(key: &str) -> [u8; 32] {
    hex::decode(v(key)).unwrap().try_into().unwrap()
}

fn rfc_keys() -> ScramKeys {
    ScramKeys::derive(
        v("password").as_bytes(),
        &hex::decode(v("salt_hex")).unwrap(),
        4096,
    )
}

fn rfc_creds() -> StoredCredentials {
    StoredCredentials::from_keys(&rfc_keys(), hex::decode(v("salt_hex")).unwrap(), 4096)
}

/// Server side of the RFC exchange up to server-first, with the RFC nonces.
fn rfc_server(creds: StoredCredentials) -> ServerFirst {
    let parsed = parse_client_first(v("client_first"), None).unwrap();
    ServerFirst::with_nonce(&parsed, creds, SERVER_SUFFIX)
}

/// Runs a whole exchange: returns the server's verdict on the client-final.
fn login(password: &[u8], creds: StoredCredentials) -> Result<String, ScramError> {
    let client = ClientFirst::new("alice");
    let server = ServerFirst::new(&parse_client_first(&client.message(), None).unwrap(), creds);
    let challenge = client.handle_server_first(&server.message())?;
    let keys = ScramKeys::derive(password, challenge.salt(), challenge.iterations());
    let (_, client_final) = challenge.finish(&keys);
    server.verify_client_final(&client_final)
}

#[test]
fn vector_file_is_the_rfc_7677_example() {
    assert_eq!(v("username"), "user");
    assert_eq!(v("client_nonce"), "rOprNGfwEbeRWgbNEkqO");
    assert_eq!(
        v("server_nonce"),
        format!("{}{SERVER_SUFFIX}", v("client_nonce"))
    );
    assert_eq!(
        B64.decode(v("salt_base64")).unwrap(),
        hex::decode(v("salt_hex")).unwrap()
    );
    assert_eq!(v("iterations"), "4096");
}

#[test]
fn known_answer_key_derivation() {
    let salt = hex::decode(v("salt_hex")).unwrap();
    assert_eq!(
        salted_password(b"pencil", &salt, 4096),
        h32("salted_password")
    );
    let keys = rfc_keys();
    assert_eq!(keys.client_key, h32("client_key"));
    assert_eq!(keys.server_key, h32("server_key"));
    assert_eq!(keys.stored_key(), h32("stored_key"));
    let creds = rfc_creds();
    assert_eq!(
        (creds.stored_key, creds.server_key),
        (h32("stored_key"), h32("server_key"))
    );
}

#[test]
fn known_answer_signatures_and_proof() {
    let auth = v("auth_message");
    let sig = client_signature(&h32("stored_key"), auth);
    assert_eq!(sig, h32("client_signature"));
    let proof: Vec<u8> = sig
        .iter()
        .zip(h32("client_key"))
        .map(|(a, b)| a ^ b)
        .collect();
    assert_eq!(proof, h32("client_proof"));
    assert_eq!(B64.encode(&proof), v("client_proof_b64"));
    let server_sig = server_signature(&h32("server_key"), auth);
    assert_eq!(server_sig, h32("server_signature"));
    assert_eq!(B64.encode(server_sig), v("server_sig_b64"));
}

#[test]
fn full_rfc_exchange_byte_for_byte() {
    let client = ClientFirst::with_nonce("user", "rOprNGfwEbeRWgbNEkqO");
    assert_eq!(client.message(), v("client_first"));

    let parsed = parse_client_first(&client.message(), None).unwrap();
    assert_eq!(parsed.user, "user");
    let server = ServerFirst::with_nonce(&parsed, rfc_creds(), SERVER_SUFFIX);
    assert_eq!(server.message(), v("server_first"));

    let challenge = client.handle_server_first(&server.message()).unwrap();
    assert_eq!(challenge.salt(), hex::decode(v("salt_hex")).unwrap());
    assert_eq!(challenge.iterations(), 4096);
    assert_eq!(challenge.auth_message(), v("auth_message"));
    let keys = ScramKeys::derive(b"pencil", challenge.salt(), challenge.iterations());
    let (client_final_state, client_final) = challenge.finish(&keys);
    assert_eq!(client_final, v("client_final"));

    let server_final = server.verify_client_final(&client_final).unwrap();
    assert_eq!(server_final, v("server_final"));
    client_final_state
        .verify_server_final(&server_final)
        .unwrap();
}

#[test]
fn random_exchange_succeeds_and_nonces_are_fresh() {
    let creds = StoredCredentials::new(b"s3cret", MIN_ITERATIONS);
    assert_eq!(creds.salt.len(), SALT_LEN);
    assert_ne!(
        creds.salt,
        StoredCredentials::new(b"s3cret", MIN_ITERATIONS).salt
    );
    assert!(login(b"s3cret", creds).unwrap().starts_with("v="));
    let (a, b) = (new_nonce(), new_nonce());
    assert_ne!(a, b);
    assert_eq!(a.len(), 24);
    assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b','));
}

#[test]
fn wrong_password_fails() {
    let creds = StoredCredentials::new(b"s3cret", MIN_ITERATIONS);
    assert_eq!(login(b"S3cret", creds), Err(ScramError::AuthFailed));
}

#[test]
fn unknown_user_fails_exactly_like_a_wrong_password() {
    let fake = fake_credentials(b"server secret", "alice", MIN_ITERATIONS);
    let wrong = login(b"pencil", StoredCredentials::new(b"other", MIN_ITERATIONS));
    assert_eq!(login(b"pencil", fake), wrong);
    assert_eq!(wrong, Err(ScramError::AuthFailed));
}

#[test]
fn fake_credentials_are_deterministic_per_user() {
    let a = fake_credentials(b"secret", "alice", 600_000);
    assert_eq!(a, fake_credentials(b"secret", "alice", 600_000));
    assert_eq!((a.salt.len(), a.iterations), (SALT_LEN, 600_000));
    assert_ne!(a, fake_credentials(b"secret", "bob", 600_000));
    assert_ne!(a.salt, fake_credentials(b"secret", "bob", 600_000).salt);
    assert_ne!(a, fake_credentials(b"other secret", "alice", 600_000));
    assert_ne!(a.stored_key, a.server_key);
}

#[test]
fn tampered_proof_fails() {
    let (_, original) = rfc_client_final();
    let p = original.rsplit_once(",p=").unwrap();
    let mut proof = B64.decode(p.1).unwrap();
    for i in [0, 31] {
        proof[i] ^= 1;
        let forged = format!("{},p={}", p.0, B64.encode(&proof));
        let server = rfc_server(rfc_creds());
        assert_eq!(
            server.verify_client_final(&forged),
            Err(ScramError::AuthFailed)
        );
        proof[i] ^= 1;
    }
}

fn rfc_client_final() -> (ClientFinal, String) {
    let client = ClientFirst::with_nonce("user", "rOprNGfwEbeRWgbNEkqO");
    client
        .handle_server_first(v("server_first"))
        .unwrap()
        .finish(&rfc_keys())
}

#[test]
fn replayed_client_final_fails_against_a_fresh_server_nonce() {
    let parsed = parse_client_first(v("client_first"), None).unwrap();
    let fresh = ServerFirst::with_nonce(&parsed, rfc_creds(), "anotherServerNonce");
    assert_eq!(
        fresh.verify_client_final(v("client_final")),
        Err(ScramError::AuthFailed)
    );
    // Same for a random server nonce, and with the nonce rewritten to the fresh one (the proof
    // then no longer matches the AuthMessage).
    let fresh = ServerFirst::new(&parsed, rfc_creds());
    let nonce = fresh.message()[2..].split(',').next().unwrap().to_owned();
    let spliced = v("client_final").replace(v("server_nonce"), &nonce);
    assert_eq!(
        fresh.verify_client_final(&spliced),
        Err(ScramError::AuthFailed)
    );
}

#[test]
fn client_checks_the_server_nonce() {
    let first = || ClientFirst::with_nonce("user", "clientnonce");
    for bad in [
        "r=clientnonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // not extended
        "r=otherclientnonceXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // different prefix
        "r=clientnoncX1234,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // prefix altered
        "r=clientnonce\u{7f}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // not printable
    ] {
        assert_eq!(
            first().handle_server_first(bad).unwrap_err(),
            ScramError::NonceMismatch,
            "{bad}"
        );
    }
}

#[test]
fn client_refuses_out_of_range_iterations() {
    let server_first = |i: &str| format!("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}");
    let try_i = |i: &str| ClientFirst::with_nonce("u", "abc").handle_server_first(&server_first(i));
    assert_eq!(
        try_i("4095").unwrap_err(),
        ScramError::IterationsOutOfRange(4095)
    );
    assert_eq!(
        try_i("10000001").unwrap_err(),
        ScramError::IterationsOutOfRange(10_000_001)
    );
    assert_eq!(
        try_i("99999999999").unwrap_err(),
        ScramError::IterationsOutOfRange(u32::MAX)
    );
    assert!(try_i("4096").is_ok());
    assert!(try_i("10000000").is_ok());
    for bad in ["", "0", "-1", "04096", "4096x", "+4096"] {
        assert!(matches!(try_i(bad), Err(ScramError::Malformed(_))), "{bad}");
    }
}

#[test]
fn client_rejects_malformed_server_first() {
    let try_sf = |m: &str| {
        ClientFirst::with_nonce("u", "abc")
            .handle_server_first(m)
            .unwrap_err()
    };
    assert_eq!(try_sf("r=abcd,s=,i=4096"), ScramError::SaltInvalid);
    assert_eq!(
        try_sf("r=abcd,s=!!notbase64,i=4096"),
        ScramError::SaltInvalid
    );
    for bad in [
        "",
        "r=abcd",
        "r=abcd,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "m=ext,r=abcd,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=abcd,i=4096",
        "r=abcd,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,garbage",
        "e=other-error",
    ] {
        assert!(matches!(try_sf(bad), ScramError::Malformed(_)), "{bad:?}");
    }
}

#[test]
fn client_detects_server_signature_mismatch() {
    let (state, _) = rfc_client_final();
    let mut sig = B64.decode(&v("server_final")[2..]).unwrap();
    sig[5] ^= 0x80;
    let forged = format!("v={}", B64.encode(&sig));
    assert_eq!(
        state.verify_server_final(&forged),
        Err(ScramError::ServerSignatureMismatch)
    );
    // A server that only knows StoredKey (not ServerKey) cannot produce the signature.
    let (state, _) = rfc_client_final();
    let guess = format!(
        "v={}",
        B64.encode(server_signature(&h32("stored_key"), v("auth_message")))
    );
    assert_eq!(
        state.verify_server_final(&guess),
        Err(ScramError::ServerSignatureMismatch)
    );
    let (state, _) = rfc_client_final();
    assert_eq!(
        state.verify_server_final("v="),
        Err(ScramError::ServerSignatureMismatch)
    );
    let (state, _) = rfc_client_final();
    assert_eq!(
        state.verify_server_final("e=invalid-proof"),
        Err(ScramError::AuthFailed)
    );
    let (state, _) = rfc_client_final();
    assert!(matches!(
        state.verify_server_final(""),
        Err(ScramError::Malformed(_))
    ));
    let (state, _) = rfc_client_final();
    assert!(matches!(
        state.verify_server_final("v=@@@"),
        Err(ScramError::Malformed(_))
    ));
}

#[test]
fn server_rejects_malformed_client_first() {
    assert_eq!(
        parse_client_first("p=tls-unique,,n=user,r=abc", None).unwrap_err(),
        ScramError::UnsupportedChannelBindingType
    );
    assert_eq!(
        parse_client_first("n,,n=,r=abc", None).unwrap_err(),
        ScramError::InvalidUserName
    );
    for bad in [
        "",
        "n",
        "n,",
        "n,,",
        "x,,n=user,r=abc",
        "n,a=admin,n=user,r=abc",
        "n,,m=ext,n=user,r=abc",
        "n,,n=user",
        "n,,n=user,r=",
        "n,,r=abc,n=user",
        "n,,n=user,r=ab\u{7f}c",
        "n,,n=user,r=abc,junk",
        "n,,n=us=ZZer,r=abc",
        "n,,n=user=,r=abc",
        "n,,n=user=2,r=abc",
        "n,,n=user=2c,r=abc",
    ] {
        assert!(
            matches!(parse_client_first(bad, None), Err(ScramError::Malformed(_))),
            "{bad:?}"
        );
    }
    // "y,," is acceptable (client supports channel binding, thinks we don't); extensions ignored.
    assert_eq!(
        parse_client_first("y,,n=user,r=abc,x=ext", None)
            .unwrap()
            .user,
        "user"
    );
}

#[test]
fn usernames_with_escapes_round_trip() {
    for name in ["a,b", "a=b", "=2C", ",,==", "élodie=,x"] {
        let msg = ClientFirst::with_nonce(name, "nonce").message();
        assert!(!msg[3..].split(',').next().unwrap()[2..].contains(','));
        assert_eq!(parse_client_first(&msg, None).unwrap().user, name);
    }
    assert_eq!(
        ClientFirst::with_nonce("a,b=c", "x").message(),
        "n,,n=a=2Cb=3Dc,r=x"
    );
    assert_eq!(
        parse_client_first("n,,n=a=2Cb=3Dc,r=x", None).unwrap().user,
        "a,b=c"
    );
}

#[test]
fn server_rejects_malformed_client_final() {
    let nonce = v("server_nonce");
    let proof = v("client_proof_b64");
    let try_cf = |m: &str| rfc_server(rfc_creds()).verify_client_final(m).unwrap_err();
    for bad in [
        String::new(),
        "c=biws".into(),
        format!("c=biws,r={nonce}"),
        format!("c=biws,r={nonce},p=not*base64"),
        format!("c=biws,r={nonce},p={}", B64.encode([0u8; 31])),
        format!("c=biws,r={nonce},p={}", B64.encode([0u8; 33])),
        format!("c=biws,r={nonce},p="),
        format!("r={nonce},c=biws,p={proof}"),
        format!("c=biws,p={proof},r={nonce}"),
        format!("m=ext,c=biws,r={nonce},p={proof}"),
    ] {
        assert!(matches!(try_cf(&bad), ScramError::Malformed(_)), "{bad:?}");
    }
    // Well-formed but wrong: channel binding other than "n,,", or the "y,," flag for a "n,," client.
    for cbind in ["eSws", "cD10bHMtdW5pcXVlLCw=", ""] {
        let m = format!("c={cbind},r={nonce},p={proof}");
        assert_eq!(try_cf(&m), ScramError::AuthFailed, "{m}");
    }
}

#[test]
fn debug_output_redacts_keys() {
    let keys = rfc_keys();
    let creds = rfc_creds();
    let debug = format!("{keys:?} {creds:?} {:?}", rfc_client_final().0);
    assert_eq!(format!("{keys:?}"), "ScramKeys { .. }");
    for secret in [
        "client_key",
        "server_key",
        "stored_key",
        "salted_password",
        "server_signature",
    ] {
        let hex = v(secret);
        assert!(!debug.contains(hex), "{secret} leaked");
        assert!(
            !debug.contains(&format!("{:?}", hex::decode(hex).unwrap())),
            "{secret} leaked"
        );
    }
    assert!(format!("{:?}", fake_credentials(b"s", "u", 4096)).contains("iterations: 4096"));
}

#[test]
fn constants() {
    assert_eq!(
        (MIN_ITERATIONS, MAX_ITERATIONS, DEFAULT_ITERATIONS),
        (4096, 10_000_000, 600_000)
    );
    assert!((MIN_ITERATIONS..=MAX_ITERATIONS).contains(&DEFAULT_ITERATIONS));
    assert_eq!(SALT_LEN, 16);
}
