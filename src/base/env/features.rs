//! Kernel features some methods depend on (io_uring for `io-uring`, the TLS ULP for kernel TLS), and the build
//! of xferbench that recorded the run. A method that falls back records so in its rows; these items say why
//! before anything runs.

use super::kernel::sysctl_path;
use super::read::{self, UNKNOWN};
use super::record::{Build, Features};

pub fn features(release: &str) -> Features {
    Features {
        io_uring_disabled: read::value("/proc/sys/kernel/io_uring_disabled"),
        io_uring_setup: match io_uring::IoUring::new(2) {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {}", e.raw_os_error().map_or_else(|| e.to_string(), errno_name)),
        },
        tls_ulp: tls_ulp(release),
    }
}

fn errno_name(code: i32) -> String {
    format!("{:?}", nix::errno::Errno::from_raw(code))
}

/// "available" when the kernel lists `tls` among its ULPs, "loadable" when the module is installed for this
/// release, else "not available"; "unknown" when the ULP list cannot be read.
fn tls_ulp(release: &str) -> String {
    let Some(ulps) = read::text(sysctl_path("net.ipv4.tcp_available_ulp")) else {
        return UNKNOWN.to_string();
    };
    if ulps.split_whitespace().any(|u| u == "tls") {
        "available"
    } else if tls_module_installed(release) {
        "loadable"
    } else {
        "not available"
    }
    .to_string()
}

/// Whether modules.dep of this release lists a `tls.ko` (compressed or not), wherever the distribution put it.
fn tls_module_installed(release: &str) -> bool {
    std::fs::read_to_string(format!("/lib/modules/{release}/modules.dep")).is_ok_and(|dep| lists_tls_module(&dep))
}

/// Whether a modules.dep text has an entry for the tls module (`kernel/net/tls/tls.ko.zst: ...`).
pub fn lists_tls_module(modules_dep: &str) -> bool {
    modules_dep.lines().filter_map(|l| l.split(':').next()).any(|module| {
        let file = module.rsplit('/').next().unwrap_or(module);
        file == "tls.ko" || file.starts_with("tls.ko.")
    })
}

pub fn build() -> Build {
    Build {
        xferbench_version: env!("CARGO_PKG_VERSION").to_string(),
        // Set by build.rs; empty when the build was not from a git checkout (a crate tarball, no git).
        git_commit: match env!("XFERBENCH_GIT_COMMIT") {
            "" => UNKNOWN.to_string(),
            commit => commit.to_string(),
        },
    }
}
