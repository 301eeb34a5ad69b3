//! The `control` capability: sleep, VU identity, run variables, logging, stopping.

use std::time::Duration;

use crate::bindings::control::{self as wit, LogLevel};
use crate::vu::VuState;

impl wit::Host for VuState {
    async fn sleep(&mut self, ms: u64) -> wasmtime::Result<()> {
        // Bounded by the run: a guest cannot sleep past a stop.
        let mut stop = self.run.stop.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = stop.wait_for(|stopping| *stopping) => {}
        }
        Ok(())
    }

    async fn vu_id(&mut self) -> wasmtime::Result<u32> {
        Ok(self.vu_id)
    }

    async fn user_class(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.user_class.as_deref().map(String::from))
    }

    async fn iteration(&mut self) -> wasmtime::Result<u64> {
        Ok(self.iteration)
    }

    async fn get_var(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.run.vars.get(&key).cloned())
    }

    async fn base_url(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.run.base_url.as_ref().map(|url| url.to_string()))
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        self.run.logger.log(self.vu_id, level, message.as_bytes());
        Ok(())
    }

    async fn stop_user(&mut self) -> wasmtime::Result<()> {
        self.stop_requested = true;
        Ok(())
    }

    async fn stop_test(&mut self, reason: String) -> wasmtime::Result<()> {
        let reason = crate::stats::truncate(&reason, crate::stats::MAX_MESSAGE_LEN);
        self.run
            .request_stop(format!("VU {} stopped the test: {reason}", self.vu_id));
        Ok(())
    }
}
