//! Queueing formulas for staffing: Erlang B (M/M/N/N), Erlang C (M/M/N)
//! and Erlang A (M/M/N+M, callers who hang up after an exponential
//! patience). Pure functions of rates in calls per second and times in
//! seconds.
//!
//! Nothing here forms a factorial or a power of the traffic: Erlang B runs
//! the recurrence `B(n) = A·B(n-1) / (n + A·B(n-1))`, which stays in
//! [0, 1], and Erlang A works in logarithms, so hundreds or thousands of
//! Erlangs neither overflow nor lose precision.

/// Erlang B: the probability that a call offered `traffic` Erlangs finds
/// all `agents` busy when there is no queue (blocked calls cleared).
pub fn erlang_b(traffic: f64, agents: u32) -> f64 {
    if traffic <= 0.0 {
        return if agents == 0 { 1.0 } else { 0.0 };
    }
    let mut b = 1.0;
    for n in 1..=agents {
        let ab = traffic * b;
        b = ab / (f64::from(n) + ab);
    }
    b
}

/// Erlang C: the probability that a call has to wait, with `agents` agents
/// and `traffic` Erlangs offered (infinite patience, first come first
/// served). With no more agents than Erlangs the queue grows without bound
/// and every call waits: 1.
pub fn erlang_c(traffic: f64, agents: u32) -> f64 {
    if traffic <= 0.0 {
        return 0.0;
    }
    let n = f64::from(agents);
    if n <= traffic {
        return 1.0;
    }
    erlang_c_from_b(traffic, n, erlang_b(traffic, agents))
}

/// C from B with the same N: `C = N·B / (N − A·(1 − B))`.
fn erlang_c_from_b(traffic: f64, n: f64, b: f64) -> f64 {
    (n * b / (n - traffic * (1.0 - b))).clamp(0.0, 1.0)
}

/// Erlang C service level: the share of calls answered within `t` seconds,
/// `1 − C·e^{−(N−A)·t/AHT}`; 0 when the queue is unstable (N ≤ A).
pub fn service_level(rate: f64, aht: f64, agents: u32, t: f64) -> f64 {
    let traffic = rate * aht;
    if traffic <= 0.0 {
        return 1.0;
    }
    let n = f64::from(agents);
    if n <= traffic {
        return 0.0;
    }
    let c = erlang_c(traffic, agents);
    (1.0 - c * (-(n - traffic) * t / aht).exp()).clamp(0.0, 1.0)
}

/// Erlang C average speed of answer over all calls, in seconds:
/// `C·AHT / (N − A)`; infinite when the queue is unstable.
pub fn asa(rate: f64, aht: f64, agents: u32) -> f64 {
    let traffic = rate * aht;
    if traffic <= 0.0 {
        return 0.0;
    }
    let n = f64::from(agents);
    if n <= traffic {
        return f64::INFINITY;
    }
    erlang_c(traffic, agents) * aht / (n - traffic)
}

/// Share of agents' time on calls, `A / N` (above 1 means overloaded).
pub fn occupancy(traffic: f64, agents: u32) -> f64 {
    if agents == 0 {
        return if traffic > 0.0 { f64::INFINITY } else { 0.0 };
    }
    traffic / f64::from(agents)
}

/// The least number of agents N > A whose Erlang C service level
/// (answered within `target_t` seconds) is at least `target_sl`. Zero when
/// no calls arrive; `None` for a target outside (0, 1) or rates that are
/// not finite and non-negative.
pub fn agents_needed(rate: f64, aht: f64, target_sl: f64, target_t: f64) -> Option<u32> {
    if !valid_inputs(rate, aht, target_sl, target_t) {
        return None;
    }
    let traffic = rate * aht;
    if traffic == 0.0 {
        return Some(0);
    }
    if traffic >= f64::from(u32::MAX) {
        return None;
    }
    // Least integer strictly above A; then walk up one agent at a time,
    // carrying Erlang B along so the whole search is O(N).
    let start = traffic.floor() as u32 + 1;
    let mut b = erlang_b(traffic, start);
    let mut n = start;
    loop {
        let nf = f64::from(n);
        let c = erlang_c_from_b(traffic, nf, b);
        let sl = 1.0 - c * (-(nf - traffic) * target_t / aht).exp();
        if sl >= target_sl {
            return Some(n);
        }
        n = n.checked_add(1)?;
        let ab = traffic * b;
        b = ab / (f64::from(n) + ab);
    }
}

fn valid_inputs(rate: f64, aht: f64, target_sl: f64, target_t: f64) -> bool {
    rate.is_finite()
        && rate >= 0.0
        && aht.is_finite()
        && aht > 0.0
        && target_sl > 0.0
        && target_sl < 1.0
        && target_t.is_finite()
        && target_t >= 0.0
}

/// Erlang A (M/M/N+M, Palm's model): Poisson arrivals at `rate`,
/// exponential handle time of mean `aht`, `agents` agents, and callers
/// who hang up after an exponential patience of mean `patience` seconds
/// while they wait.
///
/// The figures follow Garnett, Mandelbaum & Reiman (2002) and Mandelbaum &
/// Zeltyn's summary of M/M/n+G: with λ the arrival rate, μ = 1/AHT, θ =
/// 1/patience, a = λ/θ and b = Nμ/θ, everything reduces to the series
///
/// `S(y) = Σ_{k≥0} y^k / ((b+1)(b+2)…(b+k))  = b·e^y·y^{−b}·γ(b, y)`
///
/// (γ the lower incomplete gamma function). Relative to the stationary
/// probability of "all N busy, nobody waiting":
/// - P(no wait) mass is `1/E_B − 1` (E_B Erlang B with N agents);
/// - the waiting states have mass `S(a)`;
/// - the mean queue length carries `Q(a) = Σ k·t_k` (t_k the series
///   terms), so P(abandon) = `Q / (a·T)` with T the total mass;
/// - a caller finding k others waiting reaches an agent after a sum of
///   exponentials of rates Nμ + iθ (i = k..0), and summing that over k
///   gives the mass answered after more than t seconds as
///   `x^b·e^{a(1−x)}·(S(a·x) − 1) / ρ` with x = e^{−θt}, ρ = λ/(Nμ).
///
/// All sums are positive series kept in logarithms, so there is no
/// cancellation and no overflow for any load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    rate: f64,
    aht: f64,
    patience: f64,
    agents: u32,
    /// ln of the no-wait mass, `1/E_B − 1`.
    ln_free: f64,
    /// ln S(a), ln (S(a) − 1), ln Q(a).
    ln_s: f64,
    ln_s1: f64,
    ln_q: f64,
    /// ln of the total mass, `1/E_B − 1 + S(a)`.
    ln_total: f64,
}

/// What Erlang A predicts for one staffing level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangAFigures {
    /// Probability that a caller waits at all.
    pub p_wait: f64,
    /// Probability that a caller hangs up before reaching an agent.
    pub p_abandon: f64,
    /// Mean time in queue over all callers (answered or not), seconds.
    pub mean_wait: f64,
    /// Share of callers answered within the asked time.
    pub service_level: f64,
}

impl ErlangA {
    /// `None` unless rate ≥ 0, AHT > 0 and patience > 0 are finite.
    pub fn new(rate: f64, aht: f64, patience: f64, agents: u32) -> Option<Self> {
        let ok = rate.is_finite()
            && rate >= 0.0
            && aht.is_finite()
            && aht > 0.0
            && patience.is_finite()
            && patience > 0.0;
        if !ok {
            return None;
        }
        let mut model = ErlangA {
            rate,
            aht,
            patience,
            agents,
            ln_free: f64::NEG_INFINITY,
            ln_s: 0.0,
            ln_s1: f64::NEG_INFINITY,
            ln_q: f64::NEG_INFINITY,
            ln_total: 0.0,
        };
        if rate == 0.0 || agents == 0 {
            // Degenerate cases handled directly in the figures.
            return Some(model);
        }
        let traffic = rate * aht;
        let (a, b) = model.a_b();
        model.ln_free = ln_free_mass(traffic, agents);
        let sums = series(b, a);
        model.ln_s = sums.ln_s;
        model.ln_s1 = sums.ln_s1;
        model.ln_q = sums.ln_q;
        model.ln_total = ln_add(model.ln_free, model.ln_s);
        Some(model)
    }

    /// a = λ/θ and b = Nμ/θ.
    fn a_b(&self) -> (f64, f64) {
        (
            self.rate * self.patience,
            f64::from(self.agents) * self.patience / self.aht,
        )
    }

    /// Probability that a caller has to wait.
    pub fn p_wait(&self) -> f64 {
        if self.rate == 0.0 {
            return 0.0;
        }
        if self.agents == 0 {
            return 1.0;
        }
        (self.ln_s - self.ln_total).exp()
    }

    /// Probability that a caller hangs up before an agent answers.
    pub fn p_abandon(&self) -> f64 {
        if self.rate == 0.0 {
            return 0.0;
        }
        if self.agents == 0 {
            return 1.0;
        }
        let (a, _) = self.a_b();
        (self.ln_q - a.ln() - self.ln_total).exp().clamp(0.0, 1.0)
    }

    /// Mean time in queue over all callers, seconds (Little's law on the
    /// mean queue length; also `P(abandon) × patience`).
    pub fn mean_wait(&self) -> f64 {
        if self.rate == 0.0 {
            return 0.0;
        }
        if self.agents == 0 {
            return self.patience;
        }
        self.p_abandon() * self.patience
    }

    /// Share of callers answered by an agent within `t` seconds; callers
    /// who hang up count as not answered.
    pub fn service_level(&self, t: f64) -> f64 {
        if self.rate == 0.0 {
            return 1.0;
        }
        if self.agents == 0 {
            return 0.0;
        }
        let (a, b) = self.a_b();
        let rho = a / b;
        let no_wait = (self.ln_free - self.ln_total).exp();
        if !self.ln_s1.is_finite() {
            return no_wait;
        }
        let t = t.max(0.0);
        // x = e^{−θt}: b·ln x = −Nμt exactly; 1 − x via expm1 for small θt.
        let theta_t = t / self.patience;
        let x = (-theta_t).exp();
        let one_minus_x = -(-theta_t).exp_m1();
        let later = series(b, a * x);
        let ln_h = -f64::from(self.agents) * t / self.aht + a * one_minus_x + later.ln_s1;
        // Answered from the queue within t: (S(a) − 1 − H(t)) / ρ.
        let within = (self.ln_s1 - self.ln_total).exp() * -(ln_h - self.ln_s1).exp_m1() / rho;
        (no_wait + within).clamp(0.0, 1.0)
    }

    pub fn figures(&self, t: f64) -> ErlangAFigures {
        ErlangAFigures {
            p_wait: self.p_wait(),
            p_abandon: self.p_abandon(),
            mean_wait: self.mean_wait(),
            service_level: self.service_level(t),
        }
    }
}

/// The least number of agents whose Erlang A service level (answered
/// within `target_t`, abandons counted as not answered) is at least
/// `target_sl`. With patience, fewer agents than Erlangs can be enough;
/// and a long `target_t` can need more than Erlang C, since callers who
/// give up are never answered in time.
pub fn agents_needed_a(
    rate: f64,
    aht: f64,
    patience: f64,
    target_sl: f64,
    target_t: f64,
) -> Option<u32> {
    if !(valid_inputs(rate, aht, target_sl, target_t) && patience.is_finite() && patience > 0.0) {
        return None;
    }
    if rate == 0.0 {
        return Some(0);
    }
    let meets = |n: u32| {
        ErlangA::new(rate, aht, patience, n).is_some_and(|m| m.service_level(target_t) >= target_sl)
    };
    // N agents answer at most N/A of the calls (they serve at most Nμ per
    // second of λ), so fewer than target·A agents miss for sure: start
    // there, which also keeps the series short (heavily overloaded cases
    // sum many terms). The service level rises with every agent (tested),
    // so widen the step until the target is met, then bisect.
    let traffic = rate * aht;
    if traffic >= f64::from(u32::MAX) {
        return None;
    }
    let mut low = ((target_sl * traffic).ceil() as u32).saturating_sub(1); // misses
    let mut step = 1u32;
    let mut high = low.checked_add(step)?;
    while !meets(high) {
        low = high;
        step = step.checked_mul(2)?;
        high = low.checked_add(step)?;
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if meets(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(high)
}

/// ln(1/E_B − 1) for N ≥ 1 agents: with r_n = 1/E_B(n) = 1 + (n/A)·r_{n−1}
/// and r_0 = 1, it is ln(n/A) + ln r_{n−1}; r is carried in logarithms
/// because it grows like N!/A^N when agents far outnumber the traffic.
fn ln_free_mass(traffic: f64, agents: u32) -> f64 {
    let ln_a = traffic.ln();
    let mut ln_r = 0.0; // ln r_0
    for k in 1..agents {
        ln_r = ln_add(0.0, f64::from(k).ln() - ln_a + ln_r);
    }
    f64::from(agents).ln() - ln_a + ln_r
}

/// ln(e^x + e^y) without overflow.
fn ln_add(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY {
        return y;
    }
    if y == f64::NEG_INFINITY {
        return x;
    }
    let (hi, lo) = if x > y { (x, y) } else { (y, x) };
    hi + (lo - hi).exp().ln_1p()
}

/// The series of Erlang A, in logarithms.
#[derive(Debug, Clone, Copy)]
struct Series {
    /// ln Σ_{k≥0} t_k
    ln_s: f64,
    /// ln Σ_{k≥1} t_k (−∞ when y = 0)
    ln_s1: f64,
    /// ln Σ_{k≥1} k·t_k
    ln_q: f64,
}

/// Sums t_0 = 1, t_k = t_{k−1}·y/(b+k). The terms rise while y > b + k and
/// fall after; when they would leave the range of f64 every partial sum is
/// rescaled and the scale kept as a logarithm. The sum stops once a bound
/// on the remaining tail is below 1e-17 of what has been summed: after the
/// peak the ratio r_k = y/(b+k+1) only shrinks, so the tail of Σ t is at
/// most t_k·r/(1−r) and that of Σ k·t at most t_k·(k+1)/(1−r)².
fn series(b: f64, y: f64) -> Series {
    if y <= 0.0 {
        return Series {
            ln_s: 0.0,
            ln_s1: f64::NEG_INFINITY,
            ln_q: f64::NEG_INFINITY,
        };
    }
    const RESCALE_ABOVE: f64 = 1e280;
    let mut ln_scale = 0.0;
    let mut t = 1.0;
    let mut s0 = 1.0; // t_0, rescaled with the rest
    let mut s1 = 0.0;
    let mut q = 0.0;
    let mut k = 0.0_f64;
    loop {
        k += 1.0;
        t *= y / (b + k);
        s1 += t;
        q += k * t;
        if t > RESCALE_ABOVE {
            t /= RESCALE_ABOVE;
            s0 /= RESCALE_ABOVE;
            s1 /= RESCALE_ABOVE;
            q /= RESCALE_ABOVE;
            ln_scale += RESCALE_ABOVE.ln();
        }
        let r = y / (b + k + 1.0);
        if r < 1.0 {
            let tail = t * (k + 1.0) / ((1.0 - r) * (1.0 - r));
            if tail <= 1e-17 * s1 && t * r / (1.0 - r) <= 1e-17 * s1 {
                break;
            }
        }
    }
    Series {
        ln_s: (s0 + s1).ln() + ln_scale,
        ln_s1: s1.ln() + ln_scale,
        ln_q: q.ln() + ln_scale,
    }
}

#[cfg(test)]
mod tests;
