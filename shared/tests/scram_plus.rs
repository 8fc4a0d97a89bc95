//! SCRAM-SHA-256-PLUS with the `tls-exporter` channel binding (RFC 5802
//! section 6, RFC 9266): known answers computed independently
//! (`data/scram-sha-256-plus.txt`), the downgrade rules, and hostile
//! channel binding input.

use std::collections::HashMap;

use ftp_shared::scram::*;

const VECTORS: &str = include_str!("data/scram-sha-256-plus.txt");
const SERVER_SUFFIX: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

fn v(key: &str) -> &'static str {
    let map: HashMap<&str, &str> = VECTORS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key = value");
            (k.trim(), v.trim())
        })
        .collect();
    map.get(key)
        .copied()
        .unwrap_or_else(|| panic!("vector {key} missing"))
}

fn cb_data() -> [u8; 32] {
    hex::decode(v("cb_data_hex")).unwrap().try_into().unwrap()
}

fn creds() -> StoredCredentials {
    let salt = hex::decode(v("salt_hex")).unwrap();
    let keys = ScramKeys::derive(v("password").as_bytes(), &salt, 4096);
    StoredCredentials::from_keys(&keys, salt, 4096)
}

fn bound_client() -> ClientFirst {
    ClientFirst::with_nonce_and_binding(
        v("username"),
        v("client_nonce"),
        ChannelBinding::TlsExporter(cb_data()),
    )
}

#[test]
fn exporter_constants_are_those_of_rfc_9266() {
    // "the channel binding type 'tls-exporter' ... uses the TLS Exporter with
    // the label "EXPORTER-Channel-Binding" and an empty context, 32 bytes long"
    assert_eq!(TLS_EXPORTER, "tls-exporter");
    assert_eq!(TLS_EXPORTER_LABEL, b"EXPORTER-Channel-Binding");
    assert_eq!(TLS_EXPORTER_LEN, 32);
}

#[test]
fn gs2_headers_and_c_values_are_known_answers() {
    let bound = ChannelBinding::TlsExporter(cb_data());
    assert_eq!(bound.gs2_header(), v("gs2_header"));
    assert_eq!(bound.c_value(), v("c_value"));
    assert_eq!(ChannelBinding::None.c_value(), v("c_value_n"));
    assert_eq!(ChannelBinding::Unoffered.c_value(), v("c_value_y"));
    assert_eq!(ChannelBinding::None.gs2_header(), "n,,");
    assert_eq!(ChannelBinding::Unoffered.gs2_header(), "y,,");
}

#[test]
fn bound_exchange_byte_for_byte() {
    let client = bound_client();
    assert_eq!(client.message(), v("client_first"));
    let parsed = parse_client_first(&client.message(), Some(&cb_data())).unwrap();
    assert!(parsed.bound);
    let server = ServerFirst::with_nonce(&parsed, creds(), SERVER_SUFFIX);
    assert_eq!(server.message(), v("server_first"));
    let challenge = client.handle_server_first(&server.message()).unwrap();
    assert_eq!(challenge.auth_message(), v("auth_message"));
    let keys = ScramKeys::derive(v("password").as_bytes(), challenge.salt(), 4096);
    let (last, client_final) = challenge.finish(&keys);
    assert_eq!(client_final, v("client_final"));
    let server_final = server.verify_client_final(&client_final).unwrap();
    assert_eq!(server_final, v("server_final"));
    last.verify_server_final(&server_final).unwrap();
}

/// The exchange of a man in the middle: the client's TLS connection ends at
/// the attacker (exporter `client_side`), the server's at the attacker too
/// (exporter `server_side`). The attacker relays the SCRAM messages
/// unchanged; even knowing nothing of the password it cannot fix them.
fn relayed(client_side: [u8; 32], server_side: [u8; 32]) -> Result<String, ScramError> {
    let client = ClientFirst::bound("user", ChannelBinding::TlsExporter(client_side));
    let parsed = parse_client_first(&client.message(), Some(&server_side))?;
    let server = ServerFirst::new(&parsed, creds());
    let challenge = client.handle_server_first(&server.message())?;
    let keys = ScramKeys::derive(b"pencil", challenge.salt(), challenge.iterations());
    let (_, client_final) = challenge.finish(&keys);
    server.verify_client_final(&client_final)
}

#[test]
fn a_login_relayed_between_two_channels_fails_with_the_binding_error() {
    let mut other = cb_data();
    assert!(
        relayed(other, other).is_ok(),
        "same channel: the login passes"
    );
    other[31] ^= 1;
    assert_eq!(
        relayed(cb_data(), other).unwrap_err(),
        ScramError::ChannelBindingMismatch
    );
}

#[test]
fn a_relay_that_rewrites_c_breaks_the_proof() {
    // The attacker swaps the client's c= for the server-side value: the
    // proof covers the AuthMessage, which holds c=, so it no longer matches.
    let (client_side, server_side) = (cb_data(), [7u8; 32]);
    let client = ClientFirst::bound("user", ChannelBinding::TlsExporter(client_side));
    let parsed = parse_client_first(&client.message(), Some(&server_side)).unwrap();
    let server = ServerFirst::new(&parsed, creds());
    let challenge = client.handle_server_first(&server.message()).unwrap();
    let keys = ScramKeys::derive(b"pencil", challenge.salt(), challenge.iterations());
    let (_, client_final) = challenge.finish(&keys);
    let forged = client_final.replacen(
        &ChannelBinding::TlsExporter(client_side).c_value(),
        &ChannelBinding::TlsExporter(server_side).c_value(),
        1,
    );
    assert_ne!(forged, client_final);
    assert_eq!(
        server.verify_client_final(&forged).unwrap_err(),
        ScramError::AuthFailed
    );
}

#[test]
fn downgrade_rules_of_rfc_5802_section_6() {
    let channel = cb_data();
    // "If the flag is set to "y" and the server supports channel binding, the
    // server MUST fail authentication."
    assert_eq!(
        parse_client_first("y,,n=user,r=abc", Some(&channel)).unwrap_err(),
        ScramError::Downgrade
    );
    // Without a channel (plaintext mode) "y" is what it says: fine.
    assert!(parse_client_first("y,,n=user,r=abc", None).is_ok());
    // A client that cannot bind ("n") may log in over TLS unbound.
    let unbound = parse_client_first("n,,n=user,r=abc", Some(&channel)).unwrap();
    assert!(!unbound.bound);
    // A bound login where the server has no channel: refused, not unbound.
    assert_eq!(
        parse_client_first("p=tls-exporter,,n=user,r=abc", None).unwrap_err(),
        ScramError::UnsupportedChannelBinding
    );
    // Other types are refused by name.
    for other in ["tls-unique", "tls-server-end-point", "x-custom.1"] {
        assert_eq!(
            parse_client_first(&format!("p={other},,n=user,r=abc"), Some(&channel)).unwrap_err(),
            ScramError::UnsupportedChannelBindingType,
            "{other}"
        );
    }
}

#[test]
fn hostile_channel_binding_input_is_refused() {
    let channel = cb_data();
    for bad in [
        "p=,,n=user,r=abc",
        "p,,n=user,r=abc",
        "p=tls exporter,,n=user,r=abc",
        "p=tls-exporter,n=user,r=abc",
        "p=tls-exporter,a=admin,n=user,r=abc",
        "P=tls-exporter,,n=user,r=abc",
        "p=tls-exporter\u{0},,n=user,r=abc",
    ] {
        assert!(
            matches!(
                parse_client_first(bad, Some(&channel)),
                Err(ScramError::Malformed(_) | ScramError::UnsupportedChannelBindingType)
            ),
            "{bad:?}"
        );
    }
    // A bound client-first followed by a client-final with an unbound, a
    // truncated or a garbage c=.
    let c = ChannelBinding::TlsExporter(channel).c_value();
    for wrong_c in [
        "biws".to_string(),
        "eSws".into(),
        c[..c.len() - 4].to_string(),
        "!!".into(),
    ] {
        let parsed = parse_client_first("p=tls-exporter,,n=user,r=abc", Some(&channel)).unwrap();
        let server = ServerFirst::with_nonce(&parsed, creds(), "xyz");
        let msg = format!("c={wrong_c},r=abcxyz,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert_eq!(
            server.verify_client_final(&msg).unwrap_err(),
            ScramError::ChannelBindingMismatch,
            "{wrong_c}"
        );
    }
}

#[test]
fn the_client_reads_the_binding_error_of_a_server_final() {
    let (last, _) = {
        let client = bound_client();
        let challenge = client.handle_server_first(v("server_first")).unwrap();
        let keys = ScramKeys::derive(b"pencil", challenge.salt(), 4096);
        challenge.finish(&keys)
    };
    assert_eq!(
        last.verify_server_final("e=channel-bindings-dont-match")
            .unwrap_err(),
        ScramError::ChannelBindingMismatch
    );
}

#[test]
fn debug_output_hides_the_binding_data() {
    let shown = format!("{:?}", ChannelBinding::TlsExporter(cb_data()));
    assert_eq!(shown, "TlsExporter(..)");
}
