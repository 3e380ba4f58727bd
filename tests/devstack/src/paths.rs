//! Where things are: the workspace, the cargo target dir, the tools bin/setup installs, and the
//! directory the parts write their logs to.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The workspace root (this crate lives at `tests/devstack`): `$CBS_ROOT` when it holds one
/// (bin/env.sh sets it to the checkout it belongs to), else the path compiled in, else a parent
/// of the current directory. `$CBS_ROOT` comes first because the path compiled in is wherever
/// the crate was built: a clone at another path that shares the build cache reuses the binary
/// (cargo's fingerprints do not hold the absolute path), and while the checkout that built it
/// still exists, the compiled-in path names that other checkout.
pub fn workspace_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("a current directory");
    find_workspace_root(
        std::env::var_os("CBS_ROOT").map(PathBuf::from),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        &cwd,
    )
}

/// [`workspace_root`] from its three sources, in that order.
fn find_workspace_root(cbs_root: Option<PathBuf>, built_at: &Path, cwd: &Path) -> PathBuf {
    if let Some(root) = cbs_root {
        if root.join("Cargo.toml").is_file() {
            return root;
        }
    }
    if let Ok(root) = built_at.canonicalize() {
        return root;
    }
    cwd.ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            panic!(
                "the workspace root: neither $CBS_ROOT nor {} (where this test was built) nor a \
                 parent of {} holds the workspace's Cargo.toml",
                built_at.display(),
                cwd.display()
            )
        })
}

/// The cache bin/env.sh uses for tools and builds.
fn cache_dir() -> PathBuf {
    std::env::var_os("CBS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/chargeback-platform"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// `$CARGO_TARGET_DIR`, else the one bin/env.sh sets, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let cached = cache_dir().join("target");
    if cached.is_dir() {
        return cached;
    }
    workspace_root().join("target")
}

/// A binary of this workspace from the debug build (`cargo build -p <crate>`).
pub fn debug_binary(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

/// A tool from the venv bin/setup creates (moto_server, cargo-lambda, python), else from PATH.
pub fn tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("CBS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("venv"));
    let candidate = venv.join("bin").join(name);
    if candidate.is_file() {
        return candidate;
    }
    PathBuf::from(name)
}

/// PATH with the venv and cargo's bin first, so children (cargo lambda -> zig, cargo) find them.
pub fn tool_path() -> std::ffi::OsString {
    let venv = std::env::var_os("CBS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("venv"));
    let mut dirs = vec![venv.join("bin"), home().join(".cargo/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH entries are valid")
}

/// One directory per process for every part's log files; kept after the run for debugging.
/// `DEVSTACK_LOG_DIR` overrides it.
pub fn log_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("DEVSTACK_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "devstack-{}-{}",
                    std::process::id(),
                    chrono::Utc::now().format("%H%M%S")
                ))
            });
        std::fs::create_dir_all(&dir).expect("create the devstack log dir");
        dir
    })
}

#[cfg(test)]
mod workspace_root_tests {
    use super::find_workspace_root;
    use std::path::Path;

    fn checkout(parent: &Path, name: &str) -> std::path::PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\n").unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn the_checkout_cbs_root_names_wins_over_the_one_the_binary_was_built_in() {
        let scratch = std::env::temp_dir().join(format!("cbs-root-{}", std::process::id()));
        let this = checkout(&scratch, "this-clone");
        let builder = checkout(&scratch, "the-clone-that-built-it");
        let found = find_workspace_root(Some(this.clone()), &builder, &scratch);
        // Both exist: the binary's compiled-in path must not take the tests to the other clone.
        assert_eq!(found, this);
        // Without $CBS_ROOT, the compiled-in path; with neither, a parent of the cwd.
        assert_eq!(find_workspace_root(None, &builder, &scratch), builder);
        let inside = this.join("tests/devstack");
        std::fs::create_dir_all(&inside).unwrap();
        assert_eq!(
            find_workspace_root(None, &scratch.join("gone"), &inside),
            this
        );
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}
