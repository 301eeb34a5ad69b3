//! Example scenario: "wrap any client". A minimal Redis client speaks RESP
//! over a TCP socket the run granted (`--allow-host 127.0.0.1:6379`), times
//! each command itself and reports it with `metrics::record` — the
//! equivalent of Locust's `events.request.fire`.
//!
//! Run: `horde run rust_redis.wasm --allow-host 127.0.0.1:6379 --var redis=127.0.0.1:6379 -u 10 -t 30s`

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use horde_sdk::prelude::*;

/// A reply from the server.
#[derive(Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
}

impl Reply {
    fn len(&self) -> u64 {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.len() as u64,
            Reply::Integer(n) => n.to_string().len() as u64,
            Reply::Bulk(b) => b.as_ref().map_or(0, |b| b.len() as u64),
        }
    }
}

struct Connection {
    reader: BufReader<TcpStream>,
}

fn protocol_error(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("protocol error: {message}"))
}

impl Connection {
    fn open(address: &str) -> io::Result<Connection> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        Ok(Connection { reader: BufReader::new(stream) })
    }

    fn command(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&request)?;
        self.read_reply()
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
        }
        let line = line.strip_suffix("\r\n").ok_or_else(|| protocol_error(format!("line without CRLF: {line:?}")))?;
        Ok(line.to_string())
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => rest.parse().map(Reply::Integer).map_err(|_| protocol_error(format!("bad integer {rest:?}"))),
            "$" => {
                let length: i64 = rest.parse().map_err(|_| protocol_error(format!("bad length {rest:?}")))?;
                if length < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut data = vec![0; length as usize + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(length as usize);
                Ok(Reply::Bulk(Some(data)))
            }
            _ => Err(protocol_error(format!("unexpected reply {line:?}"))),
        }
    }
}

#[derive(Default)]
struct RedisUser {
    connection: Option<Connection>,
}

impl Scenario for RedisUser {
    fn config() -> Config<Self> {
        Config::new()
            .task(3, "get", RedisUser::get)
            .task(1, "set", RedisUser::set)
            .task(1, "incr", RedisUser::incr)
            .wait(between(0.01, 0.05))
    }
}

impl RedisUser {
    /// Run one command, timed, and report it as a `redis` event.
    fn timed(&mut self, name: &str, args: &[&[u8]]) -> TaskResult {
        let started = Instant::now();
        let result = match self.connection.as_mut() {
            Some(connection) => connection.command(args),
            None => {
                let address = control::var("redis").unwrap_or_else(|| "127.0.0.1:6379".into());
                Connection::open(&address).and_then(|mut connection| {
                    let reply = connection.command(args);
                    self.connection = Some(connection);
                    reply
                })
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(Reply::Error(message)) => metrics::record("redis", name, ms, 0, Some(message))?,
            Ok(reply) => metrics::record("redis", name, ms, reply.len(), None)?,
            Err(error) => {
                // A broken connection is not reused.
                self.connection = None;
                metrics::record("redis", name, ms, 0, Some(error.to_string()))?;
            }
        }
        Ok(())
    }

    fn get(&mut self) -> TaskResult {
        let key = format!("key:{}", random_range(0, 100));
        self.timed("GET", &[b"GET", key.as_bytes()])
    }

    fn set(&mut self) -> TaskResult {
        let key = format!("key:{}", random_range(0, 100));
        let value = format!("value from VU {}", control::vu_id());
        self.timed("SET", &[b"SET", key.as_bytes(), value.as_bytes()])
    }

    fn incr(&mut self) -> TaskResult {
        self.timed("INCR", &[b"INCR", b"counter"])
    }
}

horde_sdk::export_scenario!(RedisUser);
