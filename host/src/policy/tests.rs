//! Unit tests of the network policy: grants, denials and their hints, socket grants.

use super::*;

fn policy(grants: &[&str]) -> NetworkPolicy {
    NetworkPolicy::new(grants.iter().map(|g| Grant::parse(g).unwrap()).collect())
}

#[test]
fn grants_parse_and_match() {
    let p = policy(&[
        "127.0.0.1:8080",
        "*.example.com:443",
        "api.local:*",
        "http://[::1]",
        "Svc:1234",
    ]);
    assert!(p.check_name("127.0.0.1", 8080).is_ok());
    assert!(p.check_name("127.0.0.1", 8081).is_err());
    assert!(p.check_name("a.example.com", 443).is_ok());
    assert!(p.check_name("example.com", 443).is_err());
    assert!(p.check_name("badexample.com", 443).is_err());
    assert!(p.check_name("api.local", 9).is_ok());
    assert!(p.check_name("[::1]", 80).is_ok());
    assert!(p.check_name("::1", 81).is_err());
    assert!(p.check_name("svc", 1234).is_ok());
    assert!(p.check_name("svc", 1235).is_err());
    assert!(p.check_name("a.example.com", 80).is_err());
}

#[test]
fn a_host_without_a_port_grants_the_web_ports_only() {
    // (grant, its host as written, a destination it matches, that as hinted)
    for (bare, host, probe, hinted) in [
        ("localhost", "localhost", "localhost", "localhost"),
        ("redis-box.", "redis-box", "redis-box", "redis-box"),
        ("10.0.0.7", "10.0.0.7", "10.0.0.7", "10.0.0.7"),
        ("::1", "[::1]", "[::1]", "[::1]"),
        ("[::1]", "[::1]", "::1", "[::1]"),
        ("*.svc.local", "*.svc.local", "a.svc.local", "a.svc.local"),
    ] {
        let p = policy(&[bare]);
        assert!(p.check_name(probe, 80).is_ok(), "{bare}");
        assert!(p.check_name(probe, 443).is_ok(), "{bare}");
        // Another service of the host is denied, and the denial says
        // what the bare grant covers and the flags that reach it.
        let err = p.check_name(probe, 18218).unwrap_err().to_string();
        for said in [
            format!("add `--allow-host {hinted}:18218`"),
            format!("`--allow-host {host}` names no port, so it grants ports 80 and 443 only"),
            format!("`--allow-host {host}:*` grants every port"),
        ] {
            assert!(err.contains(&said), "{bare}: {err}");
        }
        // Every port, when said so.
        assert!(
            policy(&[&format!("{host}:*")])
                .check_name(probe, 18218)
                .is_ok()
        );
    }
    // A denial with no bare grant of the host carries no note.
    let err = policy(&["other:80"])
        .check_name("localhost", 80)
        .unwrap_err();
    assert!(!err.to_string().contains("names no port"), "{err}");
    assert_eq!(
        Grant::parse("localhost").unwrap().to_string(),
        "localhost (ports 80 and 443)"
    );
}

#[tokio::test]
async fn a_socket_grant_without_a_port_covers_the_web_ports_only() {
    let grants = SocketGrants::resolve(&policy(&["127.0.0.1", "localhost"])).await;
    assert!(grants.allows("127.0.0.1:80".parse().unwrap()));
    assert!(grants.allows("127.0.0.1:443".parse().unwrap()));
    assert!(!grants.allows("127.0.0.1:18218".parse().unwrap()));
    assert!(!grants.allows("127.0.0.1:6379".parse().unwrap()));
    let every = SocketGrants::resolve(&policy(&["127.0.0.1:*"])).await;
    assert!(every.allows("127.0.0.1:18218".parse().unwrap()));
}

#[test]
fn an_ipv6_denial_hint_grants_what_was_denied() {
    let err = policy(&["127.0.0.1:1"])
        .check_name("[::1]", 8080)
        .unwrap_err();
    assert!(err.to_string().contains("--allow-host [::1]:8080"), "{err}");
    let hinted = policy(&["[::1]:8080"]);
    assert!(hinted.check_name("[::1]", 8080).is_ok());
    assert!(hinted.check_name("::1", 8081).is_err());
}

#[test]
fn denial_names_the_flag() {
    let err = policy(&["127.0.0.1:1"])
        .check_name("10.0.0.1", 80)
        .unwrap_err();
    assert!(
        err.to_string().contains("--allow-host 10.0.0.1:80"),
        "{err}"
    );
}

#[test]
fn bad_grants_are_explained() {
    for bad in ["", "host:port", "a*.b", "*.", "[::1", "http://"] {
        let err = Grant::parse(bad).unwrap_err();
        assert!(!err.reason.is_empty(), "{bad}");
    }
}

#[tokio::test]
async fn socket_grants_resolve_names_and_match_addresses() {
    let grants = SocketGrants::resolve(&policy(&[
        "127.0.0.1:6379",
        "localhost:7000",
        "*.example.com:443",
    ]))
    .await;
    assert!(grants.allows("127.0.0.1:6379".parse().unwrap()));
    assert!(!grants.allows("127.0.0.1:6380".parse().unwrap()));
    assert!(
        grants.allows("127.0.0.1:7000".parse().unwrap()),
        "localhost resolves to 127.0.0.1"
    );
    assert!(grants.allows("[::ffff:127.0.0.1]:6379".parse().unwrap()));
    assert!(!grants.allows("10.1.2.3:6379".parse().unwrap()));
}

#[test]
fn special_addresses_need_a_literal_grant() {
    let p = policy(&["meta.local:80"]);
    let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
    assert!(p.check_resolved("meta.local", metadata).is_err());
    assert!(
        p.check_resolved("meta.local", "127.0.0.1:80".parse().unwrap())
            .is_ok()
    );
    // The hint names the port too, and following it allows exactly that.
    let err = p.check_resolved("meta.local", metadata).unwrap_err();
    assert!(
        err.to_string()
            .contains("`--allow-host 169.254.169.254:80`"),
        "{err}"
    );
    let p = policy(&["169.254.169.254:80"]);
    assert!(p.check_resolved("169.254.169.254", metadata).is_ok());
    assert!(p.check_name("169.254.169.254", 80).is_ok());
    assert!(p.check_name("169.254.169.254", 81).is_err());
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    proptest! {
        #[test]
        fn no_grant_text_panics(text in "\\PC{0,60}", host in "\\PC{0,30}", port in any::<u16>()) {
            if let Ok(grant) = Grant::parse(&text) {
                let _ = grant.to_string();
                let _ = NetworkPolicy::new(vec![grant]).check_name(&host, port);
            }
        }

        #[test]
        fn a_granted_destination_is_allowed_and_its_neighbours_are_not(
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
            port in 1u16..65535,
        ) {
            let policy = NetworkPolicy::new(vec![Grant::parse(&format!("{host}:{port}")).unwrap()]);
            prop_assert!(policy.check_name(&host, port).is_ok());
            prop_assert!(policy.check_name(&host.to_uppercase(), port).is_ok());
            prop_assert!(policy.check_name(&host, port + 1).is_err());
            let longer = format!("{host}x");
            let subdomain = format!("a.{host}");
            prop_assert!(policy.check_name(&longer, port).is_err());
            prop_assert!(policy.check_name(&subdomain, port).is_err());
            // The hint of a denial grants exactly what was denied.
            let denied = NetworkPolicy::default().check_name(&host, port).unwrap_err().to_string();
            let hint = denied.split('`').nth(1).unwrap().trim_start_matches("--allow-host ");
            prop_assert!(NetworkPolicy::new(vec![Grant::parse(hint).unwrap()]).check_name(&host, port).is_ok());
        }

        #[test]
        fn a_host_without_a_port_grants_no_other_port(
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
            port in 1u16..65535,
        ) {
            let policy = NetworkPolicy::new(vec![Grant::parse(&host).unwrap()]);
            prop_assert_eq!(policy.check_name(&host, port).is_ok(), port == 80 || port == 443);
            if let Err(denied) = policy.check_name(&host, port) {
                // The hint grants what was denied.
                let denied = denied.to_string();
                let hint = denied.split('`').nth(1).unwrap().trim_start_matches("--allow-host ");
                prop_assert!(NetworkPolicy::new(vec![Grant::parse(hint).unwrap()]).check_name(&host, port).is_ok());
            }
        }

        #[test]
        fn ipv6_hints_grant_what_was_denied(segments in prop::array::uniform8(any::<u16>()), port in any::<u16>()) {
            let ip = std::net::Ipv6Addr::from(segments).to_string();
            let bracketed = format!("[{ip}]");
            let denied = NetworkPolicy::default().check_name(&bracketed, port).unwrap_err().to_string();
            let hint = denied.split('`').nth(1).unwrap().trim_start_matches("--allow-host ");
            let policy = NetworkPolicy::new(vec![Grant::parse(hint).unwrap()]);
            prop_assert!(policy.check_name(&bracketed, port).is_ok());
        }
    }
}
