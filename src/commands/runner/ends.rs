//! The far ends of a run's `--link` paths: one sink per path, spawned inside the path's sink namespace and
//! listening on its address there, and the choice, for each repetition, of where its streams go. A case over a path
//! runs with the runner's thread moved into the path's sender namespace (`link::Paths::enter`): the sockets it
//! connects, the threads it starts and the counters it reads from /proc/self/net are then the sender's side of the
//! path; the thread moves back when the repetition ends.

use super::context::Target;
use crate::base::model::Transport;
use crate::commands::sink::spawn::SpawnedSink;
use crate::experiment::config::Plan;
use crate::link::{Path, Paths};

/// The sink at the far end of one path.
pub struct End<'p> {
    pub path: &'p Path,
    pub sink: SpawnedSink,
    pub target: Target,
}

impl<'p> End<'p> {
    fn start(plan: &Plan, path: &'p Path) -> anyhow::Result<End<'p>> {
        let listen = format!("{}:0", path.sink_ip());
        let sink = super::start_sink(plan, &listen, Some(path.sink.path()))?;
        Ok(End {
            path,
            target: Target::spawned(sink.addr, Transport::Veth),
            sink,
        })
    }

    /// A sink that died is started again (its namespace is still there), as the loopback one is.
    pub fn restart_if_exited(&mut self, plan: &Plan) -> anyhow::Result<()> {
        if self.sink.has_exited() {
            eprintln!(
                "xferbench: the sink of --link {} had exited; starting a new one",
                self.path.link
            );
            *self = End::start(plan, self.path)?;
        }
        Ok(())
    }
}

/// A sink at the end of every path, and a line for each saying what the path is.
pub fn start<'p>(plan: &Plan, paths: &'p Paths) -> anyhow::Result<Vec<End<'p>>> {
    let ends = paths
        .iter()
        .map(|p| End::start(plan, p))
        .collect::<anyhow::Result<Vec<End>>>()?;
    if !plan.quiet {
        for e in &ends {
            eprintln!(
                "xferbench: --link {}: {}; sink {}",
                e.path.link,
                e.path.describe(),
                e.target.label
            );
        }
    }
    Ok(ends)
}

/// Where a plan whose every case goes over a path sends, in the run's words: every path's sink.
pub fn target(ends: &[End]) -> Target {
    Target {
        addrs: ends.iter().flat_map(|e| e.target.addrs.clone()).collect(),
        label: ends
            .iter()
            .map(|e| e.target.label.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        transport: Transport::Veth,
    }
}
