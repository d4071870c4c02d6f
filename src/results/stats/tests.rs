use super::*;

#[test]
fn order_statistic_intervals_have_their_exact_levels() {
    // n = 6: the whole range, 1 - 2/64.
    let e = Estimate::of_median(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]).unwrap();
    assert_eq!((e.median, e.lo, e.hi), (3.5, 1.0, 6.0));
    assert!((e.level - 0.96875).abs() < 1e-12, "{e:?}");
    // n = 5: the whole range, short of 95%, stated as it is.
    let e = Estimate::of_median(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    assert!((e.level - 0.9375).abs() < 1e-12 && !e.full_level());
    // n = 9: [x(2), x(8)] has 1 - 2·(1 + 9)/512 = 96.1%; [x(3), x(7)] would be 82%.
    let v: Vec<f64> = (1..=9).map(f64::from).collect();
    let e = Estimate::of_median(&v).unwrap();
    assert_eq!((e.lo, e.hi), (2.0, 8.0));
    assert!((e.level - (1.0 - 20.0 / 512.0)).abs() < 1e-12);
    // n = 20: the textbook rank is 6 ([x(6), x(15)], 95.9%).
    let v: Vec<f64> = (1..=20).map(f64::from).collect();
    let e = Estimate::of_median(&v).unwrap();
    assert_eq!((e.lo, e.hi), (6.0, 15.0));
    assert!(e.level >= LEVEL && e.level < 0.97, "{e:?}");
    let one = Estimate::of_median(&[2.0]).unwrap();
    assert_eq!((one.level, one.n), (0.0, 1));
    assert_eq!((rounds_for_level(), rounds_to_decide()), (6, 8));
    assert!(Estimate::of_median(&[f64::NAN]).is_none());
}

#[test]
fn levels_are_floored_never_rounded_up() {
    assert_eq!(percent_floor(0.9375), "93%");
    assert_eq!(percent_floor(0.95), "95%");
    assert_eq!(percent_floor(0.96875), "96%");
    assert_eq!(percent_floor(0.875), "87%");
    let e = Estimate::of_median(&[1.2, 1.3, 1.9, 1.25, 1.4]).unwrap();
    assert_eq!(e.ratio_text(DEFAULT_SAME_WITHIN), "1.30x [1.20–1.90] 93%");
}

#[test]
fn ratios_show_their_interval_and_what_it_says() {
    let w = DEFAULT_SAME_WITHIN;
    let e = Estimate::of_median(&[1.5, 1.6, 1.7, 1.62, 1.58, 1.66]).unwrap();
    assert_eq!(e.ratio_text(w), "1.61x [1.50–1.70]");
    assert_eq!(e.verdict(w).says, Says::Above);
    let e = Estimate::of_median(&[0.9, 1.1, 1.04, 1.2, 0.95, 1.08]).unwrap();
    assert_eq!(e.ratio_text(w), "≈1.06x [0.90–1.20]");
    assert_eq!(e.verdict(w).says, Says::NotDistinguishable);
    // Inside [1/1.05, 1.05] at a full level: the same within 5%, whether or not 1 is inside.
    let e = Estimate::of_median(&[0.97, 1.01, 1.04, 1.0, 0.99, 1.02]).unwrap();
    assert_eq!(e.ratio_text(w), "=1.00x [0.97–1.04]");
    let e = Estimate::of_median(&[1.01, 1.02, 1.03, 1.02, 1.01, 1.03]).unwrap();
    assert_eq!(e.verdict(w).says, Says::Same);
    assert_eq!(e.verdict(0.01).says, Says::Above, "a narrower margin");
    // Short of a full level, never "the same"; one value, no verdict.
    let e = Estimate::of_median(&[1.0, 1.01, 0.99]).unwrap();
    assert_eq!(e.ratio_text(w), "≈1.00x [0.99–1.01] 75%");
    let e = Estimate::of_median(&[0.5, 0.6, 0.55, 0.52, 0.58, 0.61]).unwrap();
    assert_eq!(e.verdict(w).says, Says::Below);
    assert_eq!(Estimate::of_median(&[1.0]).unwrap().verdict(w).says, Says::NoInterval);
    let json = serde_json::to_string(&e.verdict(w)).unwrap();
    assert!(
        json.contains(r#""says":"below""#) && json.contains(r#""same_within":0.05"#),
        "{json}"
    );
}

#[test]
fn the_reach_is_the_farther_end() {
    let e = Estimate {
        median: 1.0,
        lo: 0.98,
        hi: 1.10,
        level: 0.96,
        n: 8,
    };
    assert!((e.relative_reach() - 0.10).abs() < 1e-12);
    // The stopping rule needs 8 values (the 99% interval) before it can decide at all.
    let tight = [1.0; 7];
    assert_eq!(stop_reach(&tight), f64::INFINITY);
    assert_eq!(stop_reach(&[1.0; 8]), 0.0);
    let v = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.2, 1.01];
    assert!(
        (stop_reach(&v) - (1.2 - 1.005) / 1.005).abs() < 1e-12,
        "{}",
        stop_reach(&v)
    );
}

#[test]
fn paired_ratios_pair_by_round() {
    let a: BTreeMap<u32, f64> = [(1, 200.0), (2, 300.0), (4, 100.0)].into();
    let b: BTreeMap<u32, f64> = [(1, 100.0), (2, 100.0), (3, 100.0), (4, 0.0)].into();
    assert_eq!(paired_ratios(&a, &b), [2.0, 3.0]);
}

#[test]
fn below_is_uniform_enough() {
    let mut r = rng(1, 2);
    let mut counts = [0usize; 3];
    (0..30_000).for_each(|_| counts[below(&mut r, 3)] += 1);
    assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
}

#[test]
fn jain_is_one_when_fair_and_one_over_n_when_one_gets_all() {
    assert_eq!(jain(&[3.0, 3.0, 3.0, 3.0]), Some(1.0));
    assert_eq!(jain(&[5.0, 0.0, 0.0, 0.0]), Some(0.25));
    // Two of four at half rate: (1+1+0.5+0.5)^2 / (4 * (1+1+0.25+0.25)) = 9 / 10.
    assert!((jain(&[1.0, 1.0, 0.5, 0.5]).unwrap() - 0.9).abs() < 1e-12);
    assert_eq!(jain(&[]), None);
    assert_eq!(jain(&[0.0, 0.0]), None);
}
