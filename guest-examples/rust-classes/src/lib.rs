//! Example scenario: two user classes in one run, as Locust's several `User`
//! classes. Shoppers (weight 3) log in as `user<VU id>` and browse; exactly
//! one admin (fixed count 1) logs in as `admin` and checks the orders page.
//! Every event carries the tag `user_class`, so the summary and JSON report
//! each class; `--user-class Admin` runs the admin alone.

use horde_sdk::prelude::*;

/// Log in as `username` and return the bearer token.
fn log_in(username: &str) -> Result<String, TaskError> {
    let response = http::post("/login")
        .json(&json!({ "username": username, "password": "secret" }))
        .send()?
        .ensure_status(200)?;
    let body: horde_sdk::serde_json::Value = response.json()?;
    body["token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| TaskError("login answered without a token".into()))
}

#[derive(Default)]
struct Shopper {
    token: String,
}

impl Scenario for Shopper {
    fn config() -> Config<Self> {
        Config::new()
            .task(3, "view_item", Shopper::view_item)
            .task(1, "add_to_cart", Shopper::add_to_cart)
            .wait(between(0.05, 0.2))
            .weight(3)
            .default_host("http://127.0.0.1:8089")
    }

    fn on_start(&mut self) -> TaskResult {
        self.token = log_in(&format!("user{}", control::vu_id()))?;
        Ok(())
    }
}

impl Shopper {
    fn view_item(&mut self) -> TaskResult {
        let id = random_range(1, 1000);
        http::get(format!("/item/{id}")).name("/item/[id]").send()?;
        Ok(())
    }

    fn add_to_cart(&mut self) -> TaskResult {
        http::post("/cart")
            .bearer(&self.token)
            .json(&json!({ "item": random_range(1, 1000), "quantity": 1 }))
            .send()?
            .ensure_status(200)?;
        Ok(())
    }
}

#[derive(Default)]
struct Admin {
    token: String,
}

impl Scenario for Admin {
    fn config() -> Config<Self> {
        Config::new()
            .task(1, "orders", Admin::orders)
            .wait(constant(0.1))
            .fixed_count(1)
    }

    fn on_start(&mut self) -> TaskResult {
        self.token = log_in("admin")?;
        Ok(())
    }
}

impl Admin {
    fn orders(&mut self) -> TaskResult {
        http::get("/admin/orders").bearer(&self.token).send()?.ensure_status(200)?;
        Ok(())
    }
}

horde_sdk::export_scenario!(Shopper, Admin);
