//! `xferbench completions SHELL` and `xferbench man`: a shell's completion script and the man page, both made
//! from the clap definitions the binary parses with, so neither can name a flag the binary lacks.

use crate::base::cli::Cli;
use clap::CommandFactory;

/// The completion script for `shell`, as the shell sources it.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "xferbench", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page (section 1, roff): the top-level page, then each subcommand's own section with its flags and
/// examples, so that one page holds everything `--help` shows.
pub fn man() -> anyhow::Result<String> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands() {
        let name = format!("xferbench {}", sub.get_name());
        let page = sub.clone().bin_name(name);
        let mut section = Vec::new();
        clap_mangen::Man::new(page).render(&mut section)?;
        out.extend_from_slice(b".SH \"XFERBENCH ");
        out.extend_from_slice(sub.get_name().to_uppercase().as_bytes());
        out.extend_from_slice(b"\"\n");
        // Each part after the first keeps its sections but not its own title line.
        let text = String::from_utf8_lossy(&section);
        for line in text
            .lines()
            .filter(|l| !l.starts_with(".TH ") && !l.starts_with(".ie ") && !l.starts_with(".el "))
        {
            let line = line
                .strip_prefix(".SH ")
                .map_or_else(|| line.to_string(), |h| format!(".SS {h}"));
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
