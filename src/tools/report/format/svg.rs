//! Small SVG charts for the HTML report, drawn as plain markup (no
//! scripts, no external files): a service-level line against its target,
//! grouped bars per interval, and a histogram. Every mark carries a class
//! (`sl-point`, `target-line`, `bar ...`) so tests can count them, and a
//! `<title>` so a browser shows the exact value on hover. The charts take
//! plain labels and numbers; the page around them is html.rs's.

use std::fmt::Write as _;

use super::escape::esc;

const W: f64 = 1120.0;
const H: f64 = 280.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 44.0;

/// Colours shared with the page's CSS legend.
pub const BLUE: &str = "#3b6fd8";
pub const GREEN: &str = "#1f9d6b";
pub const RED: &str = "#d64545";
pub const AMBER: &str = "#e3a008";
pub const SLATE: &str = "#94a3b8";

fn plot_w() -> f64 {
    W - LEFT - RIGHT
}

fn plot_h() -> f64 {
    H - TOP - BOTTOM
}

fn open(out: &mut String, class: &str, title: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart {class}" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">"#,
        esc(title)
    );
}

/// A step for about `n` gridlines up to `max`: 1, 2 or 5 × 10^k.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let unit = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|u| u * mag >= raw)
        .unwrap_or(10.0);
    unit * mag
}

/// Horizontal gridlines and y labels for 0..=top; returns the y of a value.
fn y_axis(out: &mut String, top: f64, step: f64, label: impl Fn(f64) -> String) {
    let mut v = 0.0;
    while v <= top + step * 1e-6 {
        let y = TOP + plot_h() * (1.0 - v / top);
        let _ = write!(
            out,
            r##"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="axis">{}</text>"##,
            W - RIGHT,
            LEFT - 8.0,
            y + 4.0,
            label(v)
        );
        v += step;
    }
}

/// X labels under slot centres, thinned to at most about 14.
fn x_labels(out: &mut String, labels: &[String]) {
    let n = labels.len().max(1);
    let slot = plot_w() / n as f64;
    let every = n.div_ceil(14);
    for (i, l) in labels.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="axis">{}</text>"#,
            H - BOTTOM + 18.0,
            esc(l)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#9ca3af" stroke-width="1"/>"##,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM
    );
}

/// Service level per interval (0..1, `None` where no caller waited) as a
/// line with a point per interval, and the target as a dashed line.
pub fn service_level(labels: &[String], sl: &[Option<f64>], target: f64, title: &str) -> String {
    let mut out = String::new();
    open(&mut out, "sl-chart", title);
    y_axis(&mut out, 1.0, 0.2, |v| format!("{:.0}%", v * 100.0));
    x_labels(&mut out, labels);
    let n = sl.len().max(1);
    let slot = plot_w() / n as f64;
    let y = |v: f64| TOP + plot_h() * (1.0 - v.clamp(0.0, 1.0));
    let ty = y(target);
    let _ = write!(
        out,
        r#"<line class="target-line" x1="{LEFT}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 4"><title>target {:.0}%</title></line><text x="{:.1}" y="{:.1}" text-anchor="end" class="target-label" fill="{RED}">target {:.0}%</text>"#,
        W - RIGHT,
        target * 100.0,
        W - RIGHT - 4.0,
        ty - 6.0,
        target * 100.0
    );
    // One path; a gap (no waiting callers) lifts the pen.
    let mut d = String::new();
    let mut pen_down = false;
    for (i, v) in sl.iter().enumerate() {
        let x = LEFT + slot * (i as f64 + 0.5);
        match v {
            Some(v) => {
                let _ = write!(
                    d,
                    "{}{x:.1},{:.1} ",
                    if pen_down { "L" } else { "M" },
                    y(*v)
                );
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !d.is_empty() {
        let _ = write!(
            out,
            r#"<path class="sl-line" d="{}" fill="none" stroke="{BLUE}" stroke-width="2.5" stroke-linejoin="round"/>"#,
            d.trim_end()
        );
    }
    let r = if n > 48 { 2.5 } else { 4.0 };
    for (i, v) in sl.iter().enumerate() {
        let Some(v) = v else { continue };
        let x = LEFT + slot * (i as f64 + 0.5);
        let fill = if *v >= target { GREEN } else { RED };
        let _ = write!(
            out,
            r##"<circle class="sl-point" cx="{x:.1}" cy="{:.1}" r="{r}" fill="{fill}" stroke="#fff" stroke-width="1.5"><title>{}: {:.1}%</title></circle>"##,
            y(*v),
            esc(labels.get(i).map(String::as_str).unwrap_or("")),
            v * 100.0
        );
    }
    out.push_str("</svg>");
    out
}

/// A series of bars: its class (`bar <class>`), name and colour.
pub struct Series<'a> {
    pub class: &'a str,
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<u64>,
}

/// Grouped bars: for each interval, one bar per series side by side.
/// Zero values draw no bar.
pub fn grouped_bars(labels: &[String], series: &[Series<'_>], title: &str) -> String {
    let mut out = String::new();
    open(&mut out, "volume-chart", title);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = nice_step(max, 5.0).max(1.0);
    let top = (max / step).ceil() * step;
    y_axis(&mut out, top, step, |v| format!("{v:.0}"));
    x_labels(&mut out, labels);
    let n = labels.len().max(1);
    let slot = plot_w() / n as f64;
    let inner = slot * 0.8;
    let bw = inner / series.len().max(1) as f64;
    for (i, label) in labels.iter().enumerate() {
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = plot_h() * v as f64 / top;
            let x = LEFT + slot * i as f64 + slot * 0.1 + bw * k as f64;
            let _ = write!(
                out,
                r#"<rect class="bar {}" x="{x:.2}" y="{:.2}" width="{:.2}" height="{h:.2}" fill="{}" rx="1"><title>{}: {} {v}</title></rect>"#,
                s.class,
                TOP + plot_h() - h,
                (bw - 0.6).max(0.6),
                s.color,
                esc(label),
                esc(s.name)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One histogram bin: its label, count, and whether it is within T.
pub struct Bin {
    pub label: String,
    pub count: u64,
    pub within: bool,
}

/// A histogram: a bar per non-empty bin (`bar wait`), green within T and
/// amber beyond, with a dashed line at T (`t-line`) after bin `t_after`.
pub fn histogram(bins: &[Bin], t_after: Option<usize>, title: &str) -> String {
    let mut out = String::new();
    open(&mut out, "wait-chart", title);
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let step = nice_step(max, 5.0).max(1.0);
    let top = (max / step).ceil() * step;
    y_axis(&mut out, top, step, |v| format!("{v:.0}"));
    let labels: Vec<String> = bins.iter().map(|b| b.label.clone()).collect();
    x_labels(&mut out, &labels);
    let slot = plot_w() / bins.len().max(1) as f64;
    for (i, b) in bins.iter().enumerate() {
        if b.count == 0 {
            continue;
        }
        let h = plot_h() * b.count as f64 / top;
        let fill = if b.within { GREEN } else { AMBER };
        let _ = write!(
            out,
            r#"<rect class="bar wait" x="{:.2}" y="{:.2}" width="{:.2}" height="{h:.2}" fill="{fill}" rx="1"><title>{} s: {} calls</title></rect>"#,
            LEFT + slot * i as f64 + slot * 0.08,
            TOP + plot_h() - h,
            slot * 0.84,
            esc(&b.label),
            b.count
        );
    }
    if let Some(t) = t_after {
        let x = LEFT + slot * (t as f64 + 1.0);
        let _ = write!(
            out,
            r#"<line class="t-line" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" class="target-label" fill="{RED}">T</text>"#,
            H - BOTTOM,
            x + 4.0,
            TOP + 12.0
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(1.0, 5.0), 0.2);
        assert_eq!(nice_step(4300.0, 5.0), 1000.0);
    }

    #[test]
    fn a_gap_lifts_the_pen() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let svg = service_level(&labels, &[Some(0.9), None, Some(0.5)], 0.8, "SL");
        assert_eq!(svg.matches("class=\"sl-point\"").count(), 2);
        let path = svg.split("class=\"sl-line\" d=\"").nth(1).expect("path");
        let d = path.split('"').next().expect("d");
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(!d.contains('L'));
        assert_eq!(svg.matches("class=\"target-line\"").count(), 1);
    }
}
