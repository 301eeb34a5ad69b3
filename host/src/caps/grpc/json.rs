//! JSON messages for gRPC calls (`call-json`): the `--proto` file compiled
//! at run time, requests encoded from JSON and replies decoded to JSON.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

use crate::bindings::grpc::{Error, Options};
use crate::vu::VuState;

/// The `.proto` definitions given with `--proto`, for JSON messages.
#[derive(Debug)]
pub struct ProtoSchema {
    pool: DescriptorPool,
}

impl ProtoSchema {
    /// Compile `file` (imports resolved against `includes` and the file's folder).
    pub fn load(file: &Path, includes: &[std::path::PathBuf]) -> anyhow::Result<ProtoSchema> {
        let mut dirs: Vec<std::path::PathBuf> = includes.to_vec();
        if let Some(parent) = file.parent() {
            dirs.push(if parent.as_os_str().is_empty() {
                ".".into()
            } else {
                parent.to_path_buf()
            });
        }
        let descriptors = protox::compile([file], dirs)
            .map_err(|e| anyhow::anyhow!("compiling {}: {e}", file.display()))?;
        let pool = DescriptorPool::from_file_descriptor_set(descriptors)
            .map_err(|e| anyhow::anyhow!("reading the descriptors of {}: {e}", file.display()))?;
        if pool.services().next().is_none() {
            anyhow::bail!(
                "{} declares no service; --proto needs the file with the service",
                file.display()
            );
        }
        Ok(ProtoSchema { pool })
    }

    pub(super) fn method(&self, path: &str) -> Result<MethodDescriptor, Error> {
        let (service, method) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "method {path:?} is not of the form /package.Service/Method"
                ))
            })?;
        let service = self.pool.get_service_by_name(service).ok_or_else(|| {
            Error::Invalid(format!("the --proto file has no service {service:?}"))
        })?;
        service
            .methods()
            .find(|m| m.name() == method)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "service {} has no method {method:?}",
                    service.full_name()
                ))
            })
    }
}

impl VuState {
    /// A unary call with JSON messages: the reply's JSON and its size on the wire.
    pub(super) async fn json_unary(
        &mut self,
        target: &str,
        method: &str,
        request_json: &str,
        opts: &Options,
    ) -> Result<(String, usize), Error> {
        let Some(schema) = self.run.proto.clone() else {
            let message = format!(
                "the scenario calls {method} with JSON messages (call-json), which needs the \
                 service's .proto file: run it with --proto FILE"
            );
            self.run.misuse(message.clone());
            return Err(Error::Invalid(message));
        };
        let descriptor = schema.method(method).inspect_err(|error| {
            if let Error::Invalid(message) = error {
                self.run
                    .misuse(format!("{message} (in the --proto file given to the run)"));
            }
        })?;
        let mut deserializer = serde_json::Deserializer::from_str(request_json);
        let request = DynamicMessage::deserialize(descriptor.input(), &mut deserializer)
            .map_err(|e| {
                Error::Invalid(format!(
                    "the request is not a JSON {}: {e}",
                    descriptor.input().full_name()
                ))
            })?
            .encode_to_vec();
        let reply = self
            .unary(target, method, Bytes::from(request), opts)
            .await?;
        let message = DynamicMessage::decode(descriptor.output(), reply.message.as_slice())
            .map_err(|e| {
                Error::Malformed(format!("not a {}: {e}", descriptor.output().full_name()))
            })?;
        let json = serde_json::to_string(&message).map_err(|e| Error::Malformed(e.to_string()))?;
        Ok((json, reply.message.len()))
    }
}

/// Load `--proto` once for the run.
pub fn load_schema(
    file: Option<&Path>,
    includes: &[std::path::PathBuf],
) -> anyhow::Result<Option<Arc<ProtoSchema>>> {
    file.map(|f| ProtoSchema::load(f, includes).map(Arc::new))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_maps_methods_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let proto = dir.path().join("hello.proto");
        std::fs::write(
            &proto,
            r#"syntax = "proto3";
            package hello;
            message HelloRequest { string name = 1; }
            message HelloResponse { string message = 1; }
            service HelloService { rpc SayHello(HelloRequest) returns (HelloResponse); }"#,
        )
        .unwrap();
        let schema = ProtoSchema::load(&proto, &[]).unwrap();
        let method = schema.method("/hello.HelloService/SayHello").unwrap();
        let mut de = serde_json::Deserializer::from_str(r#"{"name":"horde"}"#);
        let bytes = DynamicMessage::deserialize(method.input(), &mut de)
            .unwrap()
            .encode_to_vec();
        assert_eq!(bytes, b"\x0a\x05horde");
        assert!(matches!(
            schema.method("/hello.HelloService/Nope"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            schema.method("/nope.Svc/SayHello"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(schema.method("SayHello"), Err(Error::Invalid(_))));
    }
}
