//! Named network namespaces of the run's own, as `ip netns` makes them (a file under /run/netns that holds the
//! namespace while no process is in it), so that a user can look at a path while it runs (`ip netns list`,
//! `tc -n NAME -s qdisc`). Each is named `xferbench-<pid>-<start>-<path><role>` after the run that owns it: its
//! process id and the kernel's start time of that process (so that a reused pid does not pass for the owner). The
//! run removes its own when it ends however it ends short of SIGKILL; the next run that makes paths removes those
//! of owners that are gone (`sweep`).
//!
//! A thread joins a namespace with setns(2), which moves the calling thread alone: `inside` runs a closure on a
//! thread of its own that joined, and `Entered` moves the calling thread there and back.

use super::ip;
use std::fs::File;
use std::path::PathBuf;

/// The prefix of every namespace a run makes.
pub const PREFIX: &str = "xferbench-";

/// Where iproute2 keeps named namespaces (NETNS_RUN_DIR: /run/netns on Debian, /var/run/netns upstream).
const DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];

/// A run that owns namespaces: its pid and its start time in clock ticks since boot (/proc/PID/stat, field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Still running: the pid exists and started when the name says.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    /// The name of this owner's namespace `role` of path `index`.
    pub fn name(&self, index: usize, role: &str) -> String {
        format!("{PREFIX}{}-{}-{index}{role}", self.pid, self.start)
    }

    /// The owner a namespace's name gives, if it is one of ours.
    pub fn of(name: &str) -> Option<Owner> {
        let mut parts = name.strip_prefix(PREFIX)?.splitn(3, '-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        parts.next()?;
        Some(Owner { pid, start })
    }
}

/// A process's start time (field 22 of /proc/PID/stat; the command name before it may hold spaces and parentheses).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// A named namespace, deleted when dropped (the veth ends in it go with it).
#[derive(Debug)]
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// `ip netns add NAME`.
    pub fn add(name: String) -> anyhow::Result<Namespace> {
        ip::ip(&["netns", "add", &name])?;
        Ok(Namespace { name })
    }

    /// The file that holds it, for setns(2) and for a child to join.
    pub fn path(&self) -> PathBuf {
        file_of(&self.name)
    }

    fn open(&self) -> std::io::Result<File> {
        File::open(self.path())
    }

    /// Runs `f` on a thread that joined this namespace (sysctls and ioctls apply to the namespace of the thread
    /// that makes them).
    pub fn inside<R: Send>(&self, f: impl FnOnce() -> std::io::Result<R> + Send) -> std::io::Result<R> {
        let file = self.open()?;
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("a thread setting up the path panicked")))
        })
    }

    /// Moves the calling thread into this namespace until the guard is dropped, which moves it back to `home`.
    pub fn enter<'a>(&self, home: &'a File) -> std::io::Result<Entered<'a>> {
        let file = self.open()?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)?;
        Ok(Entered { home })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = ip::ip(&["netns", "delete", &self.name]) {
            eprintln!("xferbench: warning: cannot remove namespace {}: {e:#}", self.name);
        }
    }
}

/// The calling thread is in a namespace of a path; dropped, it is back where it was.
pub struct Entered<'a> {
    home: &'a File,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // Sockets keep the namespace they were made in: nothing made inside is moved by going back.
        if let Err(e) = nix::sched::setns(self.home, nix::sched::CloneFlags::CLONE_NEWNET) {
            eprintln!("xferbench: warning: cannot return to the run's own network namespace: {e}");
        }
    }
}

/// The namespace the calling thread is in now, to come back to.
pub fn here() -> std::io::Result<File> {
    File::open("/proc/thread-self/ns/net")
}

fn file_of(name: &str) -> PathBuf {
    DIRS.iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| std::path::Path::new(DIRS[0]).join(name))
}

/// Removes the namespaces of runs that are gone (killed outright: nothing of theirs ran its clean-up). Returns
/// the names removed; one that cannot be removed is named in a warning.
pub fn sweep() -> Vec<String> {
    let mut names: Vec<String> = DIRS
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| Owner::of(n).is_some_and(|o| !o.alive()))
        .collect();
    names.sort();
    names.dedup();
    names.retain(|name| match ip::ip(&["netns", "delete", name]) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("xferbench: warning: cannot remove namespace {name}, left by a run that is gone: {e:#}");
            false
        }
    });
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_owner_and_a_reused_pid_is_not_it() {
        let me = Owner::me();
        assert!(me.alive() && me.start > 0, "{me:?}");
        let name = me.name(2, "rtr");
        assert!(
            name.starts_with(&format!("xferbench-{}-", std::process::id())),
            "{name}"
        );
        assert_eq!(Owner::of(&name), Some(me));
        let other = Owner {
            start: me.start + 1,
            ..me
        };
        assert!(!other.alive(), "same pid, another start: not the owner");
        assert_eq!(Owner::of("xferbench-12-34"), None);
        assert_eq!(Owner::of("other-12-34-0snd"), None);
        assert_eq!(start_time(u32::MAX), None);
    }
}
