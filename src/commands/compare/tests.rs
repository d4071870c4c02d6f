use super::*;

#[test]
fn verdicts_come_from_the_interval_and_too_few_say_so() {
    let v = |a: &[f64], b: &[f64]| verdict(a, b, 0.05);
    let differs = v(&[100.0, 101.0, 99.0, 100.5, 99.5], &[120.0, 121.0, 119.0, 120.5, 119.5]);
    assert!(
        matches!(differs, Verdict::Differs { estimate: e } if e.lo > 1.15 && e.hi < 1.25),
        "{differs:?}"
    );
    // 5 a side: [d(3), d(23)] of the 25 pairwise ratios, 1 - 2·4/252.
    assert!(
        differs.to_string().starts_with("yes [1.") && differs.to_string().ends_with("] 96%"),
        "{differs}"
    );
    let alike = v(&[100.0, 103.0, 97.0, 101.0], &[99.0, 104.0, 98.0, 102.0]);
    assert!(matches!(alike, Verdict::NotDistinguishable { .. }), "{alike:?}");
    assert!(
        alike.to_string().starts_with("no [0.") && alike.to_string().ends_with("] 97%"),
        "{alike}"
    );
    // Within ±5% at every end: the same, not merely not distinguishable.
    let base: Vec<f64> = (0..12).map(|i| 1000.0 + f64::from(i % 4)).collect();
    let same = v(&base, &base.iter().map(|x| x * 1.01).collect::<Vec<_>>());
    assert!(matches!(same, Verdict::Same { .. }), "{same:?}");
    assert!(same.to_string().starts_with("the same within ±5% [1.0"), "{same}");
    // Three a side reach 90% at most: too few to tell, even with ranges apart; 5 and 3 apart reach 96.4%.
    let few = v(&[100.0, 101.0, 102.0], &[110.0, 111.0, 112.0]);
    assert_eq!(few.to_string(), "too few to tell (n=3 and 3)");
    assert!((few.ratio().unwrap() - 111.0 / 101.0).abs() < 1e-12);
    let apart = v(&[100.0, 101.0, 102.0, 103.0, 104.0], &[110.0, 111.0, 112.0]);
    assert!(
        apart.to_string().starts_with("yes [") && apart.to_string().ends_with("] 96%"),
        "{apart}"
    );
    assert_eq!(v(&[], &[1.0]).ratio(), None);
    let json = serde_json::to_value(same).unwrap();
    assert_eq!(json["verdict"], "same");
    assert!(json["estimate"]["level"].as_f64().unwrap() >= 0.95, "{json}");
}

#[test]
fn differs_is_said_of_one_distribution_at_most_one_time_in_twenty() {
    // Two sets drawn from one lognormal distribution (σ 0.25, the spread of a noisy case here), at every size from
    // 2 to 12 a side, some larger and some unequal sizes: wherever a verdict is given, "yes" at most 1 - its level
    // of the time (at most 5%), give or take three standard errors of the simulation (1,500 pairs: ±1.7 points at
    // 5%; 400 for the largest sizes, whose pairwise ratios take longest to sort: ±3.3 points).
    use crate::results::stats::simulate::{normal, tolerance};
    let mut r = crate::results::stats::rng(29, 40);
    let sizes: Vec<(usize, usize)> = (2..=12)
        .map(|n| (n, n))
        .chain([(16, 16), (20, 20), (30, 30), (40, 40), (3, 5), (4, 7), (5, 12), (8, 20)])
        .collect();
    let mut decided = 0;
    for (m, n) in sizes {
        let trials = if m * n > 400 { 400 } else { 1500 };
        let mut draw = |k: usize| -> Vec<f64> { (0..k).map(|_| 1000.0 * (0.25 * normal(&mut r)).exp()).collect() };
        let mut yes = 0;
        let mut level = None;
        for _ in 0..trials {
            match verdict(&draw(m), &draw(n), 0.05) {
                Verdict::Differs { estimate } => {
                    yes += 1;
                    level = Some(estimate.level);
                }
                Verdict::NotDistinguishable { estimate } | Verdict::Same { estimate, .. } => {
                    level = Some(estimate.level)
                }
                Verdict::TooFew { .. } => {}
            }
        }
        let Some(level) = level else {
            assert!(m.min(n) <= 3, "{m} and {n}: no verdict");
            continue;
        };
        decided += 1;
        let rate = yes as f64 / trials as f64;
        let bound = (1.0 - level).min(0.05);
        assert!(
            rate <= bound + tolerance(bound, trials),
            "{m} and {n} from one distribution: \"differs\" {rate:.4} of the time, at a level of {level:.4}"
        );
    }
    assert!(decided >= 16, "{decided}");
}

#[test]
fn sets_that_agree_on_a_ratio_hold_the_pooled_median() {
    let row = |strategy: &str, round: u32, mb_s: f64| Row {
        strategy: strategy.parse().unwrap(),
        threads: if strategy.starts_with("parallel") { 4 } else { 1 },
        layout: if strategy.starts_with("parallel") {
            crate::base::model::Layout::Striped
        } else {
            crate::base::model::Layout::Single
        },
        round,
        throughput_mb_s: mb_s,
        status: crate::base::model::Status::Ok,
        ..Row::default()
    };
    let set = |name: &str, ratio: f64, jitter: f64| {
        let rows: Vec<Row> = (1..=6)
            .flat_map(|r| {
                let j = 1.0 + jitter * f64::from(r % 3);
                [
                    row("sendfile", r, 1000.0),
                    row("parallel-sendfile", r, 1000.0 * ratio * j),
                ]
            })
            .collect();
        ResultSet::new(Path::new("/nonexistent"), name.into(), &rows, true)
    };
    let sets = [set("a", 1.5, 0.02), set("b", 1.5, 0.03), set("c", 2.5, 0.01)];
    let common: Vec<CaseKey> = sets[0].cases.keys().copied().collect();
    let md = agreement(&sets, &common, 0.05);
    let line = md.lines().find(|l| l.starts_with("| parallel-sendfile")).expect(&md);
    assert!(line.contains("| 1.56x |"), "pooled: {line}");
    assert!(line.contains("| 2 of 3 |"), "the odd set out: {line}");
}
