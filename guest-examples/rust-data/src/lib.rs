//! Example scenario: a login flow over test data. Each iteration takes the
//! next row of the `users` feed (`horde run --data users=users.csv`; each
//! row once by default), logs in as that user and buys the row's item in a
//! `checkout` group.

use horde_sdk::prelude::*;
use serde::Deserialize;

#[derive(Default)]
struct Customer;

/// One row of users.csv: `username,password,item`.
#[derive(Deserialize)]
struct Account {
    username: String,
    password: String,
    item: String,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

impl Scenario for Customer {
    fn config() -> Config<Self> {
        Config::new()
            .task(1, "login_and_buy", Customer::login_and_buy)
            .wait(no_wait())
            .default_host("http://127.0.0.1:8089")
            // The scenario names the feed it reads and how; the operator
            // grants the file (and may choose another strategy).
            .data("users;strategy=unique")
    }
}

impl Customer {
    fn login_and_buy(&mut self) -> TaskResult {
        let account: Account = data::feed("users").next()?.parse()?;
        let login: Login = http::post("/login")
            .tag("flow", "login")
            .json(&json!({ "username": account.username, "password": account.password }))
            .send()?
            .ensure_status(200)?
            .json()?;
        // The purchase is timed as one entry, `group checkout`, and its
        // requests are filed under it: `checkout::/cart`. Everything in it
        // is tagged flow=checkout (`--breakdown flow`, thresholds).
        tags::with(&[("flow", "checkout")], || group("checkout", || {
            http::get(format!("/item/{}", account.item))
                .name("/item/[id]")
                .send()?;
            http::post("/cart")
                .bearer(&login.token)
                .json(&json!({ "item": account.item, "quantity": 1 }))
                .send()?
                .ensure_status(200)?;
            Ok::<_, TaskError>(())
        }))?;
        Ok(())
    }
}

horde_sdk::export_scenario!(Customer);
