use super::*;

/// `|got − want| <= tol`, with a message naming the figure.
fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (±{tol})"
    );
}

// ---- Erlang C against a published worked example ----
//
// Source: the CRAN package ErlangC 0.1.0 (Damonsoul, 2024), README,
// https://cran.r-project.org/package=ErlangC (mirror:
// https://stat.ethz.ch/CRAN/web/packages/ErlangC/readme/README.html).
// It works Call Centre Helper's well-known example: 100 calls in 30
// minutes, AHT 180 s, target 80% answered within 20 s, max occupancy 0.85,
// shrinkage 0.3. Traffic A = 100/1800 per s × 180 s = 10 Erlangs. Its
// table for N = 11..14 (R prints 7 significant digits, so the published
// precision is ±5e-8; ASA is printed with 14-15 digits):
//
//  N  P(wait)    SL(20 s)   ASA (s)            answered at once  occupancy
//  11 0.6821182  0.3896138  122.78127684408    0.3178818         0.9090909
//  12 0.4493882  0.640158   40.4449401868444   0.5506118         0.8333333
//  13 0.2852705  0.7955948  17.1162271821896   0.7147295         0.7692308
//  14 0.1741319  0.88835    7.83593701177724   0.8258681         0.7142857
//
// and answers 14 agents, 20 scheduled with shrinkage (14 / 0.7).
const RATE: f64 = 100.0 / 1800.0;
const AHT: f64 = 180.0;

#[test]
fn erlang_c_matches_the_published_worked_example() {
    let rows = [
        (
            11,
            0.6821182,
            0.3896138,
            122.78127684408,
            0.3178818,
            0.9090909,
        ),
        (
            12,
            0.4493882,
            0.640158,
            40.4449401868444,
            0.5506118,
            0.8333333,
        ),
        (
            13,
            0.2852705,
            0.7955948,
            17.1162271821896,
            0.7147295,
            0.7692308,
        ),
        (
            14,
            0.1741319,
            0.88835,
            7.83593701177724,
            0.8258681,
            0.7142857,
        ),
    ];
    let traffic = RATE * AHT;
    close("traffic", traffic, 10.0, 1e-12);
    for (n, p_wait, sl, asa_s, at_once, occ) in rows {
        let what = |f: &str| format!("N={n} {f}");
        close(&what("P(wait)"), erlang_c(traffic, n), p_wait, 5e-8);
        close(&what("at once"), 1.0 - erlang_c(traffic, n), at_once, 5e-8);
        close(&what("SL"), service_level(RATE, AHT, n, 20.0), sl, 5e-8);
        // Published to 14+ significant digits; allow for their float path.
        close(&what("ASA"), asa(RATE, AHT, n), asa_s, asa_s * 1e-11);
        close(&what("occupancy"), occupancy(traffic, n), occ, 5e-8);
    }
}

#[test]
fn agents_needed_matches_the_published_worked_example() {
    // 13 agents give 79.56% < 80%, 14 give 88.84%.
    assert_eq!(agents_needed(RATE, AHT, 0.8, 20.0), Some(14));
    // Max occupancy 0.85 asks for ceil(10 / 0.85) = 12, below 14; with
    // shrinkage 0.3 the published schedule is 14 / (1 − 0.3) = 20.
    assert_eq!((10.0_f64 / 0.85).ceil(), 12.0);
    close("scheduled", 14.0 / (1.0 - 0.3), 20.0, 1e-9);
}

// ---- Erlang B against published tables ----

/// The most traffic `agents` lines carry with blocking at most `p`, by
/// bisection on A (B rises with A).
fn max_traffic(agents: u32, p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, f64::from(agents) * 2.0 + 10.0);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if erlang_b(mid, agents) <= p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[test]
fn erlang_b_matches_published_tables() {
    // Westbay Engineers' Erlang calculator manual, "How much traffic can a
    // trunk group handle?", https://erlang.com/calculatormanual/howmuchtrafficcanatrunkgrouphandle.htm:
    // 15 lines at 1% blocking carry 8.108 Erlangs.
    close("15 lines at 1%", max_traffic(15, 0.01), 8.108, 0.0005);
    // "Carrier Grade Voice Over IP", 2nd ed., Appendix A "Table of Erlang
    // B" (https://www.globalspec.com/reference/55139/203279/appendix-a-table-of-erlang-b),
    // printed to one decimal. Rows for 5 and 9 channels, columns 1%, 2%,
    // 3%, 4%, 5% blocking.
    let rows = [
        (5, [1.4, 1.7, 1.9, 2.1, 2.2]),
        (9, [3.8, 4.3, 4.7, 5.1, 5.4]),
    ];
    for (channels, published) in rows {
        for (p, want) in [0.01, 0.02, 0.03, 0.04, 0.05].into_iter().zip(published) {
            let got = max_traffic(channels, p);
            close(&format!("{channels} channels at {p}"), got, want, 0.05);
        }
    }
}

#[test]
fn textbook_identities() {
    // One server: B = A/(1+A); two: B = (A²/2)/(1 + A + A²/2).
    close("B(1,1)", erlang_b(1.0, 1), 0.5, 1e-15);
    close("B(2,2)", erlang_b(2.0, 2), 2.0 / 5.0, 1e-15);
    // B(10, 10) = (10^10/10!) / Σ_{k≤10} 10^k/k!, summed by hand below in
    // exact integers over 10!: Σ 10^k·10!/k! = 10!·Σ 10^k/k!.
    let mut num = 0u128;
    let mut fact = 1u128; // 10!/k!, from k = 10 down
    for k in (0..=10u32).rev() {
        num += 10u128.pow(k) * fact;
        fact *= u128::from(k.max(1));
    }
    let b10 = 10f64.powi(10) / num as f64;
    close("B(10,10)", erlang_b(10.0, 10), b10, 1e-15);
    close(
        "B(10,10) ~ 0.2146 (tables)",
        erlang_b(10.0, 10),
        0.2146,
        5e-5,
    );
    // M/M/1: P(wait) = ρ, ASA = ρ/(μ − λ). λ = 1/20 per s, AHT 10 s:
    // ρ = 0.5, μ − λ = 0.1 − 0.05 = 0.05, ASA = 10 s; SL(t) = 1 − ρe^{−(μ−λ)t}.
    close("C(0.5,1)", erlang_c(0.5, 1), 0.5, 1e-15);
    close("ASA M/M/1", asa(0.05, 10.0, 1), 10.0, 1e-12);
    close(
        "SL M/M/1",
        service_level(0.05, 10.0, 1, 20.0),
        1.0 - 0.5 * (-1.0f64).exp(),
        1e-15,
    );
    // C = B / (1 − ρ(1 − B)) with ρ = A/N.
    let (a, n) = (7.3, 9);
    let b = erlang_b(a, n);
    close(
        "C from B",
        erlang_c(a, n),
        b / (1.0 - a / 9.0 * (1.0 - b)),
        1e-14,
    );
    // Unstable queues: everyone waits, nobody within t.
    assert_eq!(erlang_c(10.0, 10), 1.0);
    assert_eq!(service_level(RATE, AHT, 10, 20.0), 0.0);
    assert!(asa(RATE, AHT, 9).is_infinite());
    assert_eq!(agents_needed(0.0, AHT, 0.8, 20.0), Some(0));
    assert_eq!(agents_needed(RATE, AHT, 1.0, 20.0), None);
}

// ---- Large traffic: no overflow, same as a log-domain sum ----

/// Erlang B from ln(A^k/k!) summed in logarithms, an independent path.
fn erlang_b_logsum(a: f64, n: u32) -> f64 {
    let mut ln_term = 0.0;
    let mut ln_sum = 0.0;
    for k in 1..=n {
        ln_term += a.ln() - f64::from(k).ln();
        ln_sum = ln_add(ln_sum, ln_term);
    }
    (ln_term - ln_sum).exp()
}

#[test]
fn hundreds_of_erlangs_stay_finite_and_exact() {
    for (a, n) in [(300.0, 310), (800.0, 790), (2500.0, 2550), (40.0, 400)] {
        let b = erlang_b(a, n);
        let want = erlang_b_logsum(a, n);
        assert!(b.is_finite() && b > 0.0 && b < 1.0, "B({a},{n}) = {b}");
        close(&format!("B({a},{n})"), b, want, want * 1e-11);
    }
    // 2,500 Erlangs, AHT 300 s: the answer is finite and just above A
    // (square-root staffing: a few √A beyond A).
    let rate = 2500.0 / 300.0;
    let n = agents_needed(rate, 300.0, 0.9, 20.0).expect("agents");
    assert!(n > 2500 && n < 2500 + 4 * 50, "{n}");
    assert!(service_level(rate, 300.0, n, 20.0) >= 0.9);
    assert!(service_level(rate, 300.0, n - 1, 20.0) < 0.9);
    let ea = ErlangA::new(rate, 300.0, 120.0, n).expect("model");
    let f = ea.figures(20.0);
    for v in [f.p_wait, f.p_abandon, f.mean_wait, f.service_level] {
        assert!(v.is_finite() && v >= 0.0, "{f:?}");
    }
}

// ---- Monotonicity and the target search ----

#[test]
fn more_agents_never_lower_the_service_level() {
    for traffic in [0.4, 3.7, 10.0, 48.0, 250.0] {
        let aht = 180.0;
        let rate = traffic / aht;
        let top = (traffic * 1.3) as u32 + 25;
        for t in [0.0, 20.0, 120.0] {
            let mut last = 0.0;
            for n in 0..=top {
                let sl = service_level(rate, aht, n, t);
                assert!(sl >= last - 1e-12, "C A={traffic} N={n} t={t}");
                last = sl;
            }
            for patience in [30.0, 600.0] {
                let mut last = 0.0;
                for n in 0..=top {
                    let sl = ErlangA::new(rate, aht, patience, n)
                        .expect("model")
                        .service_level(t);
                    assert!(
                        sl >= last - 1e-12,
                        "A A={traffic} θ=1/{patience} N={n} t={t}"
                    );
                    last = sl;
                }
            }
        }
    }
}

#[test]
fn agents_needed_meets_the_target_and_one_fewer_does_not() {
    for (rate, aht, target, t) in [
        (RATE, AHT, 0.8, 20.0),
        (RATE, AHT, 0.85, 15.0),
        (0.002, 240.0, 0.9, 10.0),
        (1.5, 200.0, 0.8, 20.0),
        (4.0, 300.0, 0.95, 30.0),
        (0.3, 60.0, 0.5, 0.0),
    ] {
        let traffic = rate * aht;
        let n = agents_needed(rate, aht, target, t).expect("agents");
        assert!(f64::from(n) > traffic);
        assert!(service_level(rate, aht, n, t) >= target, "{rate} {aht}");
        assert!(service_level(rate, aht, n - 1, t) < target, "{rate} {aht}");
        for patience in [20.0, 180.0, 1e5] {
            let m = agents_needed_a(rate, aht, patience, target, t).expect("agents A");
            let sl = |k| {
                ErlangA::new(rate, aht, patience, k)
                    .expect("model")
                    .service_level(t)
            };
            assert!(sl(m) >= target, "A {rate} {aht} {patience}");
            assert!(m == 0 || sl(m - 1) < target, "A {rate} {aht} {patience}");
        }
    }
}

// ---- Erlang A ----

#[test]
fn erlang_a_converges_to_erlang_c_as_patience_grows() {
    let traffic = RATE * AHT;
    for n in [11, 12, 14, 20] {
        let a = ErlangA::new(RATE, AHT, 1e10, n).expect("model");
        let c = erlang_c(traffic, n);
        close(&format!("P(wait) N={n}"), a.p_wait(), c, 1e-6);
        for t in [0.0, 20.0, 60.0] {
            close(
                &format!("SL N={n} t={t}"),
                a.service_level(t),
                service_level(RATE, AHT, n, t),
                1e-6,
            );
        }
        close(
            &format!("wait N={n}"),
            a.mean_wait(),
            asa(RATE, AHT, n),
            1e-4,
        );
        assert!(a.p_abandon() < 1e-7);
    }
    // And the distance shrinks as patience grows.
    let gap =
        |p: f64| (ErlangA::new(RATE, AHT, p, 12).expect("m").p_wait() - erlang_c(10.0, 12)).abs();
    assert!(gap(1e4) > gap(1e6) && gap(1e6) > gap(1e8));
}

/// Erlang A from the birth-death chain itself, truncated at `n + k_max`
/// callers: stationary probabilities by the balance equations, then the
/// service level by following a tagged caller's position in the queue with
/// uniformization. No incomplete gamma function, no series.
fn chain_reference(rate: f64, aht: f64, patience: f64, n: u32, t: f64, k_max: usize) -> [f64; 3] {
    let (mu, theta) = (1.0 / aht, 1.0 / patience);
    let nf = f64::from(n);
    let states = n as usize + k_max + 1;
    // ln π_k up to a constant: π_k = π_{k−1}·λ / death(k).
    let mut ln_p = vec![0.0; states];
    for k in 1..states {
        let kf = k as f64;
        let death = kf.min(nf) * mu + (kf - nf).max(0.0) * theta;
        ln_p[k] = ln_p[k - 1] + (rate / death).ln();
    }
    let top = ln_p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = ln_p.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = p.iter().sum();
    let p: Vec<f64> = p.iter().map(|v| v / total).collect();
    let n_us = n as usize;
    let p_wait: f64 = p[n_us..].iter().sum();
    let queue: f64 = p[n_us..]
        .iter()
        .enumerate()
        .map(|(j, v)| j as f64 * v)
        .sum();
    let p_abandon = theta * queue / rate;
    // Tagged caller with j others ahead: moves up at rate Nμ + jθ (an
    // agent frees or someone ahead hangs up), reaches an agent from j = 0
    // at rate Nμ, hangs up at rate θ. Uniformize at Λ ≥ every exit rate.
    let lambda_u = nf * mu + k_max as f64 * theta + theta;
    let mut v: Vec<f64> = p[n_us..].to_vec();
    let mut served = 0.0;
    let lt = lambda_u * t;
    let mut ln_w = -lt; // ln Poisson(0; Λt)
    let mut within = 0.0;
    let steps = (lt + 12.0 * lt.sqrt() + 60.0) as usize;
    for m in 0..=steps {
        within += ln_w.exp() * served;
        // One uniformized jump.
        let mut next = vec![0.0; v.len()];
        for (j, &mass) in v.iter().enumerate() {
            let up = nf * mu + j as f64 * theta;
            let stay = 1.0 - (up + theta) / lambda_u;
            next[j] += mass * stay;
            if j == 0 {
                served += mass * up / lambda_u;
            } else {
                next[j - 1] += mass * up / lambda_u;
            }
        }
        v = next;
        ln_w += lt.ln() - ((m + 1) as f64).ln();
    }
    let no_wait: f64 = p[..n_us].iter().sum();
    [p_wait, p_abandon, no_wait + within]
}

#[test]
fn erlang_a_matches_the_birth_death_chain() {
    // 10 Erlangs with 2-minute patience, under- to over-staffed; and 100
    // Erlangs with 5-minute patience.
    let cases = [
        (RATE, AHT, 120.0, 6),
        (RATE, AHT, 120.0, 10),
        (RATE, AHT, 120.0, 13),
        (RATE, AHT, 30.0, 11),
        (100.0 / 180.0, 180.0, 300.0, 90),
        (100.0 / 180.0, 180.0, 300.0, 100),
        (100.0 / 180.0, 180.0, 300.0, 110),
    ];
    for (rate, aht, patience, n) in cases {
        for t in [0.0, 15.0, 40.0] {
            let [p_wait, p_abandon, sl] = chain_reference(rate, aht, patience, n, t, 400);
            let m = ErlangA::new(rate, aht, patience, n).expect("model");
            let what = |f: &str| format!("{f} λ={rate} θ=1/{patience} N={n} t={t}");
            // Two unrelated computations agree to ~1e-15; allow 1e-12.
            close(&what("P(wait)"), m.p_wait(), p_wait, 1e-12);
            close(&what("P(abandon)"), m.p_abandon(), p_abandon, 1e-12);
            close(&what("SL"), m.service_level(t), sl, 1e-12);
        }
    }
}

#[test]
fn erlang_a_series_matches_the_incomplete_gamma_function() {
    // S(y) = b·e^y·y^{−b}·γ(b, y) = exp(y − b·ln y + lnΓ(b+1))·P(b, y),
    // P the regularized lower incomplete gamma function from statrs.
    for (b, y) in [
        (3.0, 2.0),
        (7.5, 12.0),
        (40.0, 35.0),
        (150.0, 166.7),
        (0.5, 0.01),
    ] {
        let want = (y - b * f64::ln(y) + statrs::function::gamma::ln_gamma(b + 1.0)).exp()
            * statrs::function::gamma::gamma_lr(b, y);
        let got = series(b, y).ln_s.exp();
        close(&format!("S({b},{y})"), got, want, want * 1e-10);
    }
}

#[test]
fn erlang_a_figures_hang_together() {
    let m = ErlangA::new(RATE, AHT, 120.0, 11).expect("model");
    let f = m.figures(20.0);
    // Mean wait = P(abandon) × mean patience (abandons happen at rate θ
    // per waiting caller: λ·P(ab) = θ·E[queue] = θ·λ·E[wait]).
    close("wait", f.mean_wait, f.p_abandon * 120.0, 1e-12);
    // Answered within t can never exceed answered at all, 1 − P(ab); with
    // t → ∞ it reaches it.
    assert!(f.service_level <= 1.0 - f.p_abandon);
    close("SL(∞)", m.service_level(1e6), 1.0 - f.p_abandon, 1e-12);
    close("SL(0)", m.service_level(0.0), 1.0 - f.p_wait, 1e-12);
    // Abandonment makes waits shorter than Erlang C's for everyone left.
    assert!(f.p_wait < erlang_c(10.0, 11));
    // No calls, no agents.
    let idle = ErlangA::new(0.0, AHT, 120.0, 3).expect("model");
    assert_eq!(idle.service_level(20.0), 1.0);
    let nobody = ErlangA::new(RATE, AHT, 120.0, 0).expect("model");
    assert_eq!(nobody.p_abandon(), 1.0);
    assert_eq!(nobody.service_level(20.0), 0.0);
    assert!(ErlangA::new(RATE, AHT, 0.0, 3).is_none());
}

#[test]
fn erlang_a_at_scale_with_long_patience_agrees_with_erlang_c() {
    // 600 Erlangs, callers who would wait 11 days on average: the two
    // models ask for the same agents (give or take the odd rounding), and
    // the search stays quick (the series runs λ/θ ≈ 2·10⁶ terms at most).
    let (rate, aht) = (2.0, 300.0);
    let c = agents_needed(rate, aht, 0.85, 15.0).expect("C");
    let a = agents_needed_a(rate, aht, 1e6, 0.85, 15.0).expect("A");
    assert!(c.abs_diff(a) <= 1, "C {c}, A {a}");
}
