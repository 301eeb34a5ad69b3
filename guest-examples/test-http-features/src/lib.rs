//! Test guest: one task that exercises the HTTP capability against the demo
//! target and records what it observed as checks. `--var denied=URL` names a
//! URL that must be refused by the grants.

use horde_sdk::http::Error;
use horde_sdk::prelude::*;

#[derive(Default)]
struct Features;

impl Scenario for Features {
    fn config() -> Config<Self> {
        Config::new().task(1, "features", Features::features)
    }
}

impl Features {
    fn features(&mut self) -> TaskResult {
        let user = format!("u{}", control::vu_id());
        // Cookies: the login sets session=<user>; the jar sends it back.
        http::post("/login").json(&json!({ "username": user })).send()?;
        let echoed = http::get("/cookie").send()?.text();
        check("cookie jar sends the session cookie", echoed == format!("session={user}"));

        // Redirects are followed and the final URL is reported.
        let redirected = http::get("/redirect").send()?;
        check("redirect followed to /", redirected.status() == 200 && redirected.0.url.ends_with('/'));
        let unfollowed = http::get("/redirect").no_redirects().send()?;
        check(
            "redirect not followed when asked",
            unfollowed.status() == 302 && unfollowed.header("Location") == Some("/"),
        );

        // A timeout is a typed error.
        let slow = http::get("/slow?ms=3000").timeout_ms(100).send();
        check("timeout is reported", matches!(slow, Err(Error::Timeout)));

        // Statuses: 404 is returned (and recorded as a failure) unless expected.
        let missing = http::get("/item/5000").name("/item/missing").send()?;
        check("404 is returned to the guest", missing.status() == 404);
        let expected = http::get("/item/6000").name("/item/expected-404").expect_status(&[404]).send()?;
        check("expected 404 is a response", expected.status() == 404);

        // Hosts outside the grants are refused with a hint at --allow-host.
        if let Some(url) = control::var("denied") {
            let denied = http::get(url).send();
            let named_flag = matches!(&denied, Err(Error::Denied(m)) if m.contains("--allow-host"));
            check("ungranted host is denied naming --allow-host", named_flag);
        }

        // A relative URL that cannot be parsed is a typed error.
        let invalid = http::get("http://[::1").send();
        check("invalid URL is reported", matches!(invalid, Err(Error::InvalidUrl(_))));
        Ok(())
    }
}

horde_sdk::export_scenario!(Features);
