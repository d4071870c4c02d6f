//! Writes results as they happen: each CSV row appended and synced the moment its repetition ends, whole or not at
//! all, and JSON files (summary.json, plan.json) replaced atomically (written beside, then renamed), so a crash or
//! a full disk never leaves half a row or half a summary.

use crate::results::record::Row;
use anyhow::Context;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends rows of `T` to a CSV file (runs.csv, series.csv), writing the header only into an empty file.
pub struct CsvWriter<T> {
    path: PathBuf,
    file: File,
    /// Bytes of whole rows (and the header) in the file.
    len: u64,
    rows: std::marker::PhantomData<T>,
}

/// runs.csv's writer.
pub type RowWriter = CsvWriter<Row>;

impl<T: Serialize + Default> CsvWriter<T> {
    /// Opens (or creates) `path` for appending; refuses a file whose header is not this version's. A torn last
    /// row must have been set aside first (`record::set_aside`): rows are appended after the last newline.
    pub fn open(path: &Path) -> anyhow::Result<CsvWriter<T>> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write '{}'", path.display()))?;
        let mut len = file.metadata()?.len();
        if len > 0 {
            let text = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
            let found = text.split(|&b| b == b'\n').next().unwrap_or_default();
            if found != header_of::<T>().as_bytes() {
                anyhow::bail!(
                    "'{}' holds rows of another format (another xferbench version?); give --out a new folder",
                    path.display()
                );
            }
        } else {
            let header = format!("{}\n", header_of::<T>());
            let mut w = Whole::new(&mut file, 0);
            w.write(header.as_bytes())
                .with_context(|| format!("cannot write '{}'", path.display()))?;
            len = header.len() as u64;
        }
        Ok(CsvWriter {
            path: path.to_path_buf(),
            file,
            len,
            rows: std::marker::PhantomData,
        })
    }

    /// Appends one row and makes sure it is on disk before returning; on failure (a full disk) the file is left
    /// as it was, every earlier row whole.
    pub fn write(&mut self, row: &T) -> anyhow::Result<()> {
        self.write_all(std::slice::from_ref(row))
    }

    /// Appends several rows in one append: all of them on disk when this returns, or none.
    pub fn write_all(&mut self, rows: &[T]) -> anyhow::Result<()> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        for row in rows {
            w.serialize(row).context("cannot serialise a row")?;
        }
        let bytes = w.into_inner().context("cannot serialise a row")?;
        Whole::new(&mut self.file, self.len).write(&bytes).with_context(|| {
            format!(
                "cannot write a row to '{}'; every row before it is kept",
                self.path.display()
            )
        })?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes of whole rows (and the header) in the file now: where `cut_back` returns it to.
    pub fn whole_len(&self) -> u64 {
        self.len
    }

    /// Takes back every row appended after the file was `len` bytes long (a row whose side lines could not be
    /// written): the file is cut there and synced; cutting needs no free space.
    pub fn cut_back(&mut self, len: u64) -> anyhow::Result<()> {
        if len < self.len {
            self.file
                .set_len(len)
                .and_then(|()| self.file.sync_data())
                .with_context(|| format!("cannot take a row back from '{}'", self.path.display()))?;
            self.len = len;
        }
        Ok(())
    }
}

/// One append that lands whole or not at all: written, then synced; on error cut back to `len`.
struct Whole<'a> {
    file: &'a mut File,
    len: u64,
}

impl<'a> Whole<'a> {
    fn new(file: &'a mut File, len: u64) -> Whole<'a> {
        Whole { file, len }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let result = self.file.write_all(bytes).and_then(|()| self.file.sync_data());
        if result.is_err() {
            // Truncating needs no free space; what was written of this row goes, what was there stays.
            let _ = self.file.set_len(self.len);
            let _ = self.file.sync_data();
        }
        result
    }
}

/// The CSV header of runs.csv this version writes.
pub fn header_line() -> String {
    header_of::<Row>()
}

/// The CSV header of rows of `T`, derived from the struct so that it cannot drift from the values.
pub fn header_of<T: Serialize + Default>() -> String {
    let mut w = csv::WriterBuilder::new().has_headers(true).from_writer(Vec::new());
    w.serialize(T::default()).expect("a default row serialises");
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
    use crate::base::model::Status;

    #[test]
    fn rows_append_across_opens_with_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let row = Row {
            strategy: "sendfile".parse().unwrap(),
            status: Status::Ok,
            bytes_received: Some(5),
            ..Row::default()
        };
        RowWriter::open(&path).unwrap().write(&row).unwrap();
        RowWriter::open(&path).unwrap().write(&row).unwrap();
        let rows = crate::results::record::read(&path).unwrap().rows;
        assert_eq!(rows, vec![row.clone(), row]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("run_id").count(), 1);
    }

    #[test]
    fn a_foreign_csv_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let err = RowWriter::open(&path).err().unwrap().to_string();
        assert!(err.contains("another format"), "{err}");
    }
}
