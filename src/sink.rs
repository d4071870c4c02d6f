//! (being built)
pub fn main(_a: crate::cli::SinkArgs) -> anyhow::Result<()> {
    anyhow::bail!("sink is not built yet")
}
