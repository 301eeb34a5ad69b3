//! The build context of Horde's container image: the `horde` binary and
//! the shared libraries it links (found with `ldd`) in a root file system
//! with nothing else (no shell, no package manager), `/tmp` for the
//! compiled-component cache, an unprivileged user (65532), and a
//! Dockerfile `FROM scratch`. `cargo xtask image` builds it; the Swarm
//! test builds one with a scenario inside.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("running ldd (Debian's libc-bin): {e}"))?;
    if !output.status.success() {
        return Err(format!("ldd {} failed", binary.display()));
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

/// Copy `from` to `to`, making its folder; errors name the file.
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    let parent = to.parent().expect("a file has a parent");
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    std::fs::copy(from, to).map_err(|e| format!("copying {}: {e}", from.display()))?;
    Ok(())
}

/// Write the build context into `context` (emptied first): `binary` as
/// `/horde`, its libraries, and each `(file, path in the image)` of `extra`
/// (a scenario, its data), readable by the image's user.
pub fn assemble(binary: &Path, context: &Path, extra: &[(&Path, &str)]) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    if context.exists() {
        std::fs::remove_dir_all(context).map_err(|e| io("emptying the context", e))?;
    }
    let rootfs = context.join("rootfs");
    std::fs::create_dir_all(rootfs.join("tmp")).map_err(|e| io("creating /tmp", e))?;
    // The cache lives in /tmp: writable by the unprivileged user.
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| io("/tmp's mode", e))?;
    copy(binary, &rootfs.join("horde"))?;
    for library in linked_libraries(binary)? {
        copy(
            &library,
            &rootfs.join(library.strip_prefix("/").unwrap_or(&library)),
        )?;
    }
    for (file, path) in extra {
        copy(file, &rootfs.join(path.trim_start_matches('/')))?;
    }
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc).map_err(|e| io("creating /etc", e))?;
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/:/horde\nhorde:x:65532:65532:horde:/tmp:/horde\n",
    )
    .map_err(|e| io("writing /etc/passwd", e))?;
    std::fs::write(etc.join("group"), "root:x:0:\nhorde:x:65532:\n")
        .map_err(|e| io("writing /etc/group", e))?;
    std::fs::write(context.join("Dockerfile"), DOCKERFILE)
        .map_err(|e| io("writing the Dockerfile", e))?;
    Ok(())
}

/// True when a Docker engine answers (`docker info`).
pub fn docker_engine() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}
