//! Writes results as they happen: one CSV row appended, flushed and synced the moment its repetition ends, and
//! summary.json replaced atomically (written beside, then renamed) after every case. An interrupted sweep keeps
//! every finished row.

use crate::record::Row;
use anyhow::Context;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends rows to a runs.csv, writing the header only into an empty file.
pub struct CsvExport {
    path: PathBuf,
    writer: csv::Writer<File>,
}

impl CsvExport {
    /// Opens (or creates) `path` for appending; refuses a file whose header is not this version's.
    pub fn open(path: &Path) -> anyhow::Result<CsvExport> {
        let existing = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if existing > 0 {
            let expected = header_line();
            let mut reader =
                csv::Reader::from_path(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let found: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
            if found.join(",") != expected {
                anyhow::bail!(
                    "'{}' holds rows of another format (another xferbench version?); give --out a new folder",
                    path.display()
                );
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write '{}'", path.display()))?;
        let writer = csv::WriterBuilder::new().has_headers(existing == 0).from_writer(file);
        Ok(CsvExport {
            path: path.to_path_buf(),
            writer,
        })
    }

    /// Appends one row and makes sure it is on disk before returning.
    pub fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        let ctx = || format!("cannot write a row to '{}'", self.path.display());
        self.writer.serialize(row).with_context(ctx)?;
        self.writer.flush().with_context(ctx)?;
        self.writer.get_ref().sync_data().with_context(ctx)?;
        Ok(())
    }
}

/// The CSV header this version writes.
pub fn header_line() -> String {
    let mut w = csv::WriterBuilder::new().has_headers(true).from_writer(Vec::new());
    w.serialize(Row::default()).expect("a default row serialises");
    let bytes = w.into_inner().expect("writing to memory cannot fail");
    String::from_utf8_lossy(&bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename, so readers never see half.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut f = File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write '{}'", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_append_across_opens_with_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let row = Row {
            strategy: "sendfile".into(),
            status: "ok".into(),
            bytes_received: Some(5),
            ..Row::default()
        };
        CsvExport::open(&path).unwrap().write(&row).unwrap();
        CsvExport::open(&path).unwrap().write(&row).unwrap();
        let rows = crate::record::read_rows(&path).unwrap();
        assert_eq!(rows, vec![row.clone(), row]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("run_id").count(), 1);
    }

    #[test]
    fn a_foreign_csv_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let err = CsvExport::open(&path).err().unwrap().to_string();
        assert!(err.contains("another format"), "{err}");
    }
}
