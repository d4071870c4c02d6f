//! Standard output that never panics: a reader that went away (`xferbench run --dry-run | head -1`) must not
//! turn into a crash. SIGPIPE stays ignored, as Rust sets it, because sendfile and splice have no MSG_NOSIGNAL.

use std::io::Write;

/// Writes `text` to stdout; a closed pipe or any other error is ignored.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// `print` with a newline.
pub fn println(text: &str) {
    print(&format!("{text}\n"));
}

/// `println!` that never panics (see the module).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::base::out::println(&format!($($arg)*)) };
}

pub(crate) use outln;
