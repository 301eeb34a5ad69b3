//! `cargo xtask image`: a minimal container image of the `horde` binary.
//! The release binary and the few shared libraries it links (found with
//! `ldd`) go into a root file system with nothing else: no shell, no
//! package manager; `/tmp` for the compiled-component cache, and an
//! unprivileged user (65532). The image is built `FROM scratch` with
//! Docker when an engine answers; the build context stays in
//! target/image/ for any other builder (podman, buildah, kaniko).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const DOCKERFILE: &str = "\
# Built by `cargo xtask image` from the release binary: no shell, no
# package manager, only horde and the libraries it links.
FROM scratch
COPY rootfs/ /
ENV HORDE_CACHE_DIR=/tmp/horde-cache
USER 65532:65532
ENTRYPOINT [\"/horde\"]
CMD [\"--help\"]
";

/// The shared libraries `binary` loads, as absolute paths (`ldd`).
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd (Debian's libc-bin)")?;
    if !output.status.success() {
        bail!("ldd {} failed", binary.display());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut libraries = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// Copy `from` to `rootfs` + its absolute path, following links.
fn copy_into(rootfs: &Path, from: &Path) -> Result<()> {
    let to = rootfs.join(from.strip_prefix("/").unwrap_or(from));
    std::fs::create_dir_all(to.parent().expect("a file has a parent"))?;
    std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
    Ok(())
}

/// Assemble target/image/ and build the image `tag` when Docker runs here.
pub fn image(args: &[String], target_dir: &Path) -> Result<()> {
    let tag = args
        .iter()
        .position(|a| a == "--tag")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| format!("horde:{}", env!("CARGO_PKG_VERSION")));
    let binary = target_dir.join("release/horde");
    let context = target_dir.join("image");
    let rootfs = context.join("rootfs");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(rootfs.join("tmp"))?;
    // The cache lives in /tmp: writable by the unprivileged user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::copy(&binary, rootfs.join("horde"))
        .with_context(|| format!("copying {}", binary.display()))?;
    for library in linked_libraries(&binary)? {
        copy_into(&rootfs, &library)?;
    }
    std::fs::create_dir_all(rootfs.join("etc"))?;
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/:/horde\nhorde:x:65532:65532:horde:/tmp:/horde\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nhorde:x:65532:\n")?;
    std::fs::write(context.join("Dockerfile"), DOCKERFILE)?;
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine {
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
