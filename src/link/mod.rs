//! Links as users have them (`--link`): for every veth spec among a run's cases, a path of the run's own, a sender
//! namespace joined to a sink namespace through a router namespace that shapes both directions (`path`, `shape`),
//! made with iproute2 (`ip`) before anything is measured and removed after the run (`ns`; a run killed outright
//! leaves its namespaces to the next run that makes paths, which removes them). Loopback cases need none of it.
//!
//! The runner uses a path in two ways: its sink is spawned inside the path's sink namespace, and each repetition of
//! one of its cases moves the runner's thread into the sender namespace (`Paths::enter`), so that the sockets, the
//! threads it starts and the counters of /proc/self/net all belong to the sender's side of the path.
//!
//! Reaches down only (`base`); `commands::runner` uses it.

mod ip;
mod ns;
mod offload;
mod path;
mod shape;

pub use ns::Entered;
pub use path::Path;

use crate::base::error::UsageError;
use crate::base::model::Link;

/// The paths of a run, one per distinct veth spec, in the order the plan first names them.
pub struct Paths {
    paths: Vec<Path>,
    /// The namespace the run started in, where a thread goes back to after a repetition.
    home: std::fs::File,
}

impl Paths {
    /// Makes a path for every veth spec in `links`: root and iproute2 are checked first, then what runs that are
    /// gone left behind is removed, then the paths are made; a failure removes what was made.
    pub fn make(links: &[Link]) -> anyhow::Result<Paths> {
        let home = ns::here().map_err(|e| anyhow::anyhow!("cannot open this thread's network namespace: {e}"))?;
        let mut specs: Vec<Link> = Vec::new();
        for link in links.iter().filter(|l| !l.is_loopback()) {
            if !specs.contains(link) {
                specs.push(*link);
            }
        }
        let mut paths = Paths {
            paths: Vec::new(),
            home,
        };
        if specs.is_empty() {
            return Ok(paths);
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(UsageError::msg(format!(
                "--link {} makes network namespaces, veth pairs and qdiscs, which needs root (CAP_SYS_ADMIN, \
                 CAP_NET_ADMIN); --link loopback does not",
                specs[0]
            ))
            .into());
        }
        ip::check()?;
        let gone = ns::sweep();
        if !gone.is_empty() {
            eprintln!(
                "xferbench: removed {} network namespace(s) left by runs that were killed: {}",
                gone.len(),
                gone.join(", ")
            );
        }
        let owner = ns::Owner::me();
        for (index, link) in specs.into_iter().enumerate() {
            let Link::Veth(spec) = link else { continue };
            paths.paths.push(Path::make(owner, index, link, &spec)?);
        }
        Ok(paths)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.paths.iter()
    }

    /// Moves the calling thread into `path`'s sender namespace until the guard is dropped.
    pub fn enter<'a>(&'a self, path: &Path) -> std::io::Result<Entered<'a>> {
        path.sender.enter(&self.home)
    }
}
