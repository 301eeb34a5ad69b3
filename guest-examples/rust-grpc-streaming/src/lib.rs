//! Example scenario: the three kinds of gRPC stream against the Numbers
//! service (numbers.proto). Each stream is recorded once, when it ends, with
//! its whole duration and how many messages went each way.

use horde_sdk::prelude::*;
use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
struct Number {
    #[prost(int64, tag = "1")]
    value: i64,
}

fn encode(value: i64) -> Vec<u8> {
    Number { value }.encode_to_vec()
}

fn decode(bytes: &[u8]) -> Result<i64, TaskError> {
    Number::decode(bytes).map(|n| n.value).map_err(|e| TaskError(format!("not a Number: {e}")))
}

#[derive(Default)]
struct Streamer;

impl Scenario for Streamer {
    fn config() -> Config<Self> {
        Config::new()
            .task(1, "count", Streamer::count)
            .task(1, "sum", Streamer::sum)
            .task(1, "echo", Streamer::echo)
            .wait(constant(0.01))
    }
}

impl Streamer {
    /// Server streaming: ask for 5 numbers, read until the end.
    fn count(&mut self) -> TaskResult {
        let stream = grpc::call("", "/horde.test.Numbers/Count").server_stream(&encode(5))?;
        let mut seen = Vec::new();
        while let Some(message) = stream.next()? {
            seen.push(decode(&message)?);
        }
        check("count streams 1..=5", seen == [1, 2, 3, 4, 5]);
        Ok(())
    }

    /// Client streaming: send 1..=4, get their sum.
    fn sum(&mut self) -> TaskResult {
        let stream = grpc::call("", "/horde.test.Numbers/Sum").client_stream()?;
        for value in 1..=4 {
            stream.send(&encode(value))?;
        }
        let reply = stream.finish()?;
        check("sum of 1..=4 is 10", decode(&reply.message)? == 10);
        Ok(())
    }

    /// Bidirectional: send a number, read its echo, three times.
    fn echo(&mut self) -> TaskResult {
        let stream = grpc::call("", "/horde.test.Numbers/Echo").bidi_stream()?;
        let mut echoed = Vec::new();
        for value in [7, 8, 9] {
            stream.send(&encode(value))?;
            if let Some(message) = stream.next()? {
                echoed.push(decode(&message)?);
            }
        }
        stream.close_send();
        let rest = stream.next()?;
        check("echo answers each message in turn", echoed == [7, 8, 9] && rest.is_none());
        Ok(())
    }
}

horde_sdk::export_scenario!(Streamer);
