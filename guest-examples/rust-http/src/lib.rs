//! Example scenario: a shopper who logs in, browses items and adds to a cart.

use horde_sdk::prelude::*;
use serde::Deserialize;

#[derive(Default)]
struct Shopper {
    token: String,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

impl Scenario for Shopper {
    fn config() -> Config<Self> {
        let wait = match control::var("wait").as_deref() {
            Some("none") => no_wait(),
            _ => between(0.05, 0.2),
        };
        Config::new()
            .task(5, "view_item", Shopper::view_item)
            .task(2, "index", Shopper::index)
            .task(1, "add_to_cart", Shopper::add_to_cart)
            .wait(wait)
            .default_host("http://127.0.0.1:8089")
    }

    fn on_start(&mut self) -> TaskResult {
        let user = format!("user{}", control::vu_id());
        let login: Login = http::post("/login")
            .json(&json!({ "username": user, "password": "secret" }))
            .send()?
            .ensure_status(200)?
            .json()?;
        self.token = login.token;
        Ok(())
    }
}

impl Shopper {
    fn index(&mut self) -> TaskResult {
        http::get("/").send()?;
        Ok(())
    }

    fn view_item(&mut self) -> TaskResult {
        let id = random_range(1, 1000);
        let response = http::get(format!("/item/{id}")).name("/item/[id]").send()?;
        check("item has a body", !response.bytes().is_empty());
        Ok(())
    }

    fn add_to_cart(&mut self) -> TaskResult {
        let id = random_range(1, 1000);
        http::post("/cart")
            .bearer(&self.token)
            .json(&json!({ "item": id, "quantity": 1 }))
            .send()?;
        Ok(())
    }
}

horde_sdk::export_scenario!(Shopper);
