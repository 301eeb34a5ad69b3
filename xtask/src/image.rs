//! `cargo xtask image`: a minimal container image of the `horde` binary,
//! `FROM scratch` (see guest_build::image for what is in it), built with
//! Docker when an engine answers; the build context stays in target/image/
//! for any other OCI builder (podman, buildah, kaniko).

use std::path::Path;
use std::process::Command;

use anyhow::Result;

/// Assemble target/image/ and build the image `--tag NAME` when Docker runs here.
pub fn image(args: &[String], target_dir: &Path) -> Result<()> {
    let tag = args
        .iter()
        .position(|a| a == "--tag")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| format!("horde:{}", env!("CARGO_PKG_VERSION")));
    let context = target_dir.join("image");
    guest_build::image::assemble(&target_dir.join("release/horde"), &context, &[])
        .map_err(anyhow::Error::msg)?;
    if !guest_build::image::docker_engine() {
        eprintln!(
            "xtask: the build context is in {} (no Docker engine answers here); build it with \
             `docker build -t {tag} {}` or any OCI builder",
            context.display(),
            context.display()
        );
        return Ok(());
    }
    super::run(
        Command::new("docker")
            .args(["build", "--quiet", "-t", &tag])
            .arg(&context),
    )?;
    eprintln!("xtask: built image {tag}");
    Ok(())
}
