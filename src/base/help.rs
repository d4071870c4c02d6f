//! The words `--help` shows beyond each flag's own line: every strategy with what it does (from the method's doc
//! comment, so a new method is listed unasked), and an example or two under each subcommand, written as a new
//! user would type them.

use crate::base::model::{Method, Named};

/// `run --help`'s text for `--strategies`: one line per method, naming its serial, parallel and (where it has one)
/// broker strategy.
pub fn strategies() -> String {
    let names: Vec<String> = Method::all()
        .iter()
        .map(|m| match m.serves_consumers() {
            true => format!("{0}, parallel-{0}, broker-{0}", m.name()),
            false => format!("{0}, parallel-{0}", m.name()),
        })
        .collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let mut out = String::from(
        "Strategies to run, comma-separated; `parallel-X` runs X on --threads connections, one thread each; \
         `broker-X` serves the whole file to each of --consumers consumers from --network-threads epoll loops, as a \
         Kafka broker does. The known strategies:\n",
    );
    for (m, name) in Method::all().iter().zip(&names) {
        out.push_str(&format!("  {name:width$}  {}\n", m.about()));
    }
    out.push_str(
        "Every ratio (`vs sf`) is to serial sendfile with the same chunk, cache, receiver and congestion control \
         (a broker case's to broker-sendfile with the same consumers, network threads and fetch size).",
    );
    out
}

/// Examples under `run --help`.
pub const RUN: &str = "\
Examples:
  xferbench run                                   the main job: the article's four paths, warm, on loopback
  xferbench run --cc cubic,bbr                    the same under both congestion controls, side by side
  xferbench run --size 1.2GB --strategies sendfile,parallel-sendfile,read-send --cache cold,warm --repeat 8 --cc cubic
                                                  the article's experiment (8 rounds: 95% intervals)
  xferbench run --strategies sendfile,parallel-sendfile --threads 1,2,4,8,16 --out results/sweep
                                                  a thread sweep into a folder of your naming
  xferbench run --preset kafka --strategies broker-sendfile,broker-tls-read-send --consumers 1,16,64 --cc cubic
                                                  a Kafka broker's shape: one hot file to many consumers
  xferbench run --format json > summary.json      the summary as JSON on stdout, the table on stderr";

/// Examples under `sink --help`.
pub const SINK: &str = "\
Examples:
  xferbench sink --listen 0.0.0.0:7700 --token s3cret          on the receiving host
  xferbench run --connect receiver:7700 --token s3cret         on the sending host";

/// Examples under `fixture --help`.
pub const FIXTURE: &str = "\
Examples:
  xferbench fixture --size 1.2GB             make fixtures/xferbench-1200000000-seed1.bin (what `run` uses)
  xferbench fixture --path /data/t.bin --size 16GB    on the disk you mean to measure (then `run --file /data/t.bin`)
  xferbench fixture --path /data/t.bin --check         read it back and check every byte";

/// Examples under `plot --help`.
pub const PLOT: &str = "\
Examples:
  xferbench plot results/2026-12-01T101500.123Z-box-4242     ratio, throughput (or a broker's consumers), CPU,
                                                              switches, latency and timeline charts (PNG and SVG)
                                                              and report.html, into the folder";

/// Examples under `table --help`.
pub const TABLE: &str = "\
Examples:
  xferbench table results/2026-12-01T101500.123Z-box-4242                  the table `run` printed at its end
  xferbench table results/2026-12-01T101500.123Z-box-4242 --format json    the summary, as JSON";

/// Examples under `compare --help`.
pub const COMPARE: &str = "\
Examples:
  xferbench compare results/linux-6.1 results/linux-6.12                   what differs, then each case's ratio
  xferbench compare results/linux-6.1 results/linux-6.12 --out results/6.1-vs-6.12    also compare.md, charts, report.html
  xferbench compare base new --fail-if-slower 5%    exit 3 when a case of `new` is surely more than 5% slower";

/// Examples under `article --help`.
pub const ARTICLE: &str = "\
Examples:
  xferbench article results/article-box       the 2017 medians beside the folder's
  bash scripts/reproduce-article.sh           runs the article's experiment, then this";

/// Examples under `env --help`.
pub const ENV: &str = "\
Examples:
  xferbench env                               what shapes this machine's numbers, congestion control first
  xferbench env --file /data/t.bin --format json     the storage under that file too, as JSON";

/// Examples under `stats --help`.
pub const STATS: &str = "\
Examples:
  xferbench stats rounds.csv --baseline sendfile      each name's median, and its ratio to sendfile paired by round
  xferbench stats --mb-s results/run-1                 one folder's median MB/s, for such a CSV";

/// Examples under `completions --help`.
pub const COMPLETIONS: &str = "\
Examples:
  xferbench completions bash > /etc/bash_completion.d/xferbench
  xferbench completions zsh > \"${fpath[1]}/_xferbench\"
  xferbench completions fish > ~/.config/fish/completions/xferbench.fish";

/// Examples under `man --help`.
pub const MAN: &str = "\
Examples:
  xferbench man > /usr/local/share/man/man1/xferbench.1 && man xferbench
  xferbench man | man -l -";
