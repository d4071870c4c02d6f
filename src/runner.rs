//! (being built)
pub fn main(_a: crate::cli::RunArgs) -> anyhow::Result<i32> {
    anyhow::bail!("run is not built yet")
}
