//! Property tests of everything xferbench reads from outside its process: the stream header (by the sink, in
//! memory and over TCP), the ack, the report and the pass notice (by the sender, in memory and from a fake sink),
//! runs.csv, summary.json, plan.json, the fixture's sidecar, and sizes and durations on the command line.
//!
//! Each input is random, truncated, oversized or a valid one mutated, and each must end in a value or an error:
//! never a panic, never a hang (every property runs under a watchdog, and every socket has a timeout), and never
//! an allocation sized by a number inside the input (a counting allocator records the largest single allocation
//! each property's thread makes, and it is held under a bound that only the input's length may raise).
//!
//! The number of cases is sized for CI in a debug build (the whole file in well under 30 s on 2 CPUs); set
//! `XFERBENCH_FUZZ_SCALE` to multiply it. Each property prints how many cases it ran.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod files;
mod wire;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

/// Passes every allocation to the system allocator, noting the largest single request of each thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: a thread being torn down has no slot left, and an allocation then is not ours to count.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is handed unchanged to `System`, which upholds GlobalAlloc's contract; noting a size touches
// only a thread-local Cell with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: ptr was allocated by System (every allocation goes there) with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns what it gave and the largest single allocation this thread made meanwhile.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let value = f();
    (value, LARGEST.with(Cell::get))
}

/// Fails unless `f` allocates no single block larger than `bound` bytes.
pub fn bounded<T>(what: &str, bound: usize, f: impl FnOnce() -> T) -> T {
    let (value, largest) = largest_allocation(f);
    assert!(
        largest <= bound,
        "{what}: an allocation of {largest} bytes, past the bound of {bound}"
    );
    value
}

/// Cases for a property: `base` times `XFERBENCH_FUZZ_SCALE` (default 1).
pub fn cases(base: u32) -> u32 {
    let scale: u32 = std::env::var("XFERBENCH_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    base.saturating_mul(scale.max(1))
}

/// Runs the property `test` over `cases` inputs from `strategy()` on a thread of its own, failing if it takes
/// longer than `limit` (a hang); prints the number of cases. No regression files are written.
pub fn check<S: Strategy + 'static>(
    name: &str,
    cases: u32,
    limit: Duration,
    strategy: fn() -> S,
    test: fn(S::Value) -> Result<(), TestCaseError>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = std::time::Instant::now();
    std::thread::spawn(move || {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let ran = std::cell::Cell::new(0u32);
        let result = runner.run(&strategy(), |input| {
            ran.set(ran.get() + 1);
            test(input)
        });
        let _ = tx.send((result.map_err(|e| e.to_string()), ran.get()));
    });
    match rx.recv_timeout(limit) {
        Ok((Ok(()), ran)) => eprintln!(
            "fuzz: {name}: {ran} cases in {:.1} s, every one an answer",
            start.elapsed().as_secs_f64()
        ),
        Ok((Err(e), ran)) => panic!("fuzz: {name}: failed after {ran} cases: {e}"),
        // A panic inside a case is caught by proptest and reported above; a closed channel means the runner
        // itself died.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("fuzz: {name}: the runner died"),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("fuzz: {name}: still running after {limit:?} (a hang?)")
        }
    }
}

/// Bytes from a valid input: cut short, with bytes changed, with bytes inserted, or left whole.
pub fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    prop_oneof![
        1 => Just(valid.clone()),
        3 => (0..len).prop_map({
            let v = valid.clone();
            move |cut| v[..cut.min(v.len())].to_vec()
        }),
        3 => proptest::collection::vec((0..len, any::<u8>()), 1..8).prop_map({
            let v = valid.clone();
            move |changes| {
                let mut v = v.clone();
                for (at, b) in changes {
                    if let Some(x) = v.get_mut(at) {
                        *x = b;
                    }
                }
                v
            }
        }),
        2 => (0..len, proptest::collection::vec(any::<u8>(), 1..64)).prop_map({
            let v = valid;
            move |(at, extra)| {
                let mut v = v.clone();
                let at = at.min(v.len());
                v.splice(at..at, extra);
                v
            }
        }),
    ]
}

/// A JSON value that a field of the right type may still choke on: mostly numbers at and past the extremes of
/// every width, sometimes another type.
pub fn wild_scalar() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    prop_oneof![
        3 => any::<u64>().prop_map(|n| json!(n)),
        2 => prop_oneof![
            Just(json!(u64::MAX)),
            Just(json!(u64::MAX / 2 + 1)),
            Just(json!(u32::MAX)),
            Just(json!(u32::MAX as u64 + 1)),
            Just(json!(u16::MAX as u64 + 1)),
            Just(json!(0)),
            Just(json!(1)),
        ],
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => Just(json!(-1)),
        2 => any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        1 => prop_oneof![Just(json!(1e308)), Just(json!(-1e308)), Just(json!(1e-308)), Just(json!(-0.0))],
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => ".{0,40}".prop_map(Value::String),
    ]
}

/// Any JSON: scalars as above, arrays and objects of them, nested.
pub fn wild_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    wild_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly a scalar, now and then any JSON.
pub fn wild_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![6 => wild_scalar(), 1 => wild_json()]
}

/// `valid` (a JSON object) with some of its fields given wild values, some removed, or unknown ones added.
pub fn json_mutated(valid: serde_json::Value) -> impl Strategy<Value = serde_json::Value> {
    let keys: Vec<String> = valid
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let n = keys.len().max(1);
    proptest::collection::vec((0..n + 1, wild_value(), 0..4u8), 1..5).prop_map(move |edits| {
        let mut v = valid.clone();
        if let Some(obj) = v.as_object_mut() {
            for (k, value, remove) in edits {
                match keys.get(k) {
                    Some(key) if remove == 0 => {
                        obj.remove(key);
                    }
                    Some(key) => {
                        obj.insert(key.clone(), value);
                    }
                    None => {
                        obj.insert("unknown_field".into(), value);
                    }
                }
            }
        }
        v
    })
}

/// The allocation check itself: it sees a large block, and fails past its bound.
#[test]
fn the_allocation_bound_is_enforced() {
    let (v, largest) = largest_allocation(|| vec![0u8; 3 << 20]);
    assert!(largest >= v.len(), "{largest}");
    let past = std::panic::catch_unwind(|| bounded("a large block", 1 << 20, || vec![0u8; 2 << 20].len()));
    assert!(past.is_err(), "a 2 MiB allocation passed a 1 MiB bound");
}
