//! Line charts drawn on the server as inline SVG: axes, day labels, legend, one line per series.
//! Pure drawing from numbers it is given; it never reads storage and never emits script or styles.

use chrono::NaiveDate;
use maud::{html, Markup};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 290.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 34.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 62.0;
/// More day labels than this collide at this width.
const MAX_DAY_LABELS: usize = 8;

/// One line of a chart: a value for each day given to `line_chart`.
pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub dashed: bool,
    pub values: Vec<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChartError {
    #[error("a trend needs at least two days")]
    TooFewDays,
    #[error("series {0:?} has {1} values for {2} days")]
    LengthMismatch(String, usize, usize),
    #[error("days must be in increasing order")]
    Unordered,
}

/// A round step for the value axis so that about five gridlines cover `max`.
fn value_step(max: i64) -> i64 {
    let mut magnitude = 1i64;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            if max <= step * 5 {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
        if magnitude >= i64::MAX / 10 {
            return magnitude;
        }
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// Draws the series against the days. Days may have gaps (a day without a snapshot):
/// the x axis is true time, so a gap shows as a longer segment rather than vanishing.
pub fn line_chart(
    title: &str,
    days: &[NaiveDate],
    series: &[Series],
) -> Result<Markup, ChartError> {
    if days.len() < 2 {
        return Err(ChartError::TooFewDays);
    }
    if days.windows(2).any(|w| w[1] <= w[0]) {
        return Err(ChartError::Unordered);
    }
    for s in series {
        if s.values.len() != days.len() {
            return Err(ChartError::LengthMismatch(
                s.label.to_string(),
                s.values.len(),
                days.len(),
            ));
        }
    }
    let first = days[0];
    let span = (days[days.len() - 1] - first).num_days().max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let step = value_step(max);
    let top_value = (max + step - 1) / step * step;
    let x = |d: NaiveDate| LEFT + (d - first).num_days() as f64 / span * plot_w;
    let y = |v: i64| TOP + plot_h - (v.max(0) as f64 / top_value as f64) * plot_h;
    let ticks: Vec<i64> = (0..=top_value / step).map(|i| i * step).collect();
    let every = days.len().div_ceil(MAX_DAY_LABELS);
    let labelled: Vec<NaiveDate> = days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(_, d)| *d)
        .collect();
    let baseline = TOP + plot_h;
    let legend_y = HEIGHT - 12.0;
    Ok(html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            width=(WIDTH) height=(HEIGHT) aria-label=(title) {
            title { (title) }
            rect x="0" y="0" width=(WIDTH) height=(HEIGHT) fill="#ffffff" {}
            g.grid {
                @for t in &ticks {
                    line x1=(LEFT) x2=(LEFT + plot_w) y1=(fmt(y(*t))) y2=(fmt(y(*t)))
                        stroke="#e3e8ed" stroke-width="1" {}
                    text x=(LEFT - 6.0) y=(fmt(y(*t) + 4.0)) text-anchor="end" font-size="11" fill="#5b6875" { (t) }
                }
            }
            g.axes {
                line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(baseline) stroke="#5b6875" stroke-width="1" {}
                line x1=(LEFT) x2=(LEFT + plot_w) y1=(baseline) y2=(baseline) stroke="#5b6875" stroke-width="1" {}
                @for d in &labelled {
                    line x1=(fmt(x(*d))) x2=(fmt(x(*d))) y1=(baseline) y2=(baseline + 4.0) stroke="#5b6875" stroke-width="1" {}
                    text.day x=(fmt(x(*d))) y=(baseline + 17.0) text-anchor="middle" font-size="11" fill="#5b6875" {
                        (d.format("%d %b"))
                    }
                }
            }
            @for s in series {
                g.series data-series=(s.label) {
                    polyline fill="none" stroke=(s.color) stroke-width="2"
                        stroke-dasharray=[s.dashed.then_some("6 4")]
                        points=(days.iter().zip(&s.values).map(|(d, v)| format!("{},{}", fmt(x(*d)), fmt(y(*v)))).collect::<Vec<_>>().join(" ")) {}
                    @for (d, v) in days.iter().zip(&s.values) {
                        circle cx=(fmt(x(*d))) cy=(fmt(y(*v))) r="3" fill=(s.color) {
                            title { (d.format("%Y-%m-%d")) ": " (s.label) " " (v) }
                        }
                    }
                }
            }
            g.legend {
                @for (i, s) in series.iter().enumerate() {
                    @let lx = LEFT + i as f64 * 150.0;
                    line x1=(lx) x2=(lx + 24.0) y1=(legend_y - 4.0) y2=(legend_y - 4.0) stroke=(s.color)
                        stroke-width="2" stroke-dasharray=[s.dashed.then_some("6 4")] {}
                    text x=(lx + 30.0) y=(legend_y) font-size="12" fill="#1d2733" { (s.label) }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    struct Parsed {
        polylines: Vec<String>,
        circles: usize,
        texts: Vec<String>,
    }

    /// Parses the SVG as XML; a malformed document fails the test.
    fn parse(svg: &str) -> Parsed {
        let mut r = Reader::from_str(svg);
        let mut out = Parsed {
            polylines: Vec::new(),
            circles: 0,
            texts: Vec::new(),
        };
        let mut in_text = false;
        let mut depth = 0i32;
        loop {
            let (e, opens) = match r.read_event().unwrap() {
                Event::Eof => break,
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                Event::End(e) => {
                    depth -= 1;
                    if e.name().as_ref() == "text" {
                        in_text = false;
                    }
                    continue;
                }
                Event::Text(t) if in_text => {
                    out.texts.push(t.xml10_content().to_string());
                    continue;
                }
                _ => continue,
            };
            if opens {
                depth += 1;
            }
            match e.name().as_ref() {
                "polyline" => {
                    let pts = e
                        .attributes()
                        .map(Result::unwrap)
                        .find(|a| a.key.as_ref() == "points")
                        .unwrap();
                    out.polylines.push(pts.value.to_string());
                }
                "circle" => out.circles += 1,
                "text" => in_text = opens,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "unbalanced elements");
        out
    }

    #[test]
    fn draws_one_point_per_day_for_each_series() {
        let days: Vec<NaiveDate> = ["2026-03-01", "2026-03-02", "2026-03-04", "2026-03-05"]
            .iter()
            .map(|d| day(d))
            .collect();
        let svg = line_chart(
            "ESS-AC-100G-RTU-1 <usage>",
            &days,
            &[
                Series {
                    label: "In use",
                    color: "#0b6bcb",
                    dashed: false,
                    values: vec![1, 3, 2, 7],
                },
                Series {
                    label: "Available",
                    color: "#1f7a3a",
                    dashed: true,
                    values: vec![10, 10, 8, 8],
                },
            ],
        )
        .unwrap()
        .into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("&lt;usage&gt;"), "titles are escaped");
        let p = parse(&svg);
        assert_eq!(p.polylines.len(), 2);
        for line in &p.polylines {
            assert_eq!(line.split(' ').count(), days.len(), "{line}");
        }
        assert_eq!(p.circles, 2 * days.len());
        for label in ["In use", "Available", "01 Mar", "05 Mar", "0", "10"] {
            assert!(
                p.texts.iter().any(|t| t == label),
                "{label} in {:?}",
                p.texts
            );
        }
        // The gap on 3 March stretches the x axis: the third point sits at 3/4 of the width.
        let xs: Vec<f64> = p.polylines[0]
            .split(' ')
            .map(|pt| pt.split(',').next().unwrap().parse().unwrap())
            .collect();
        let frac = (xs[2] - xs[0]) / (xs[3] - xs[0]);
        assert!((frac - 0.75).abs() < 0.01, "{xs:?}");
        // Higher values are drawn higher (smaller y).
        let ys: Vec<f64> = p.polylines[0]
            .split(' ')
            .map(|pt| pt.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys[3] < ys[0]);
    }

    #[test]
    fn long_histories_get_a_bounded_number_of_day_labels() {
        let start = day("2026-01-01");
        let days: Vec<NaiveDate> = (0..90).map(|i| start + chrono::Duration::days(i)).collect();
        let svg = line_chart(
            "t",
            &days,
            &[Series {
                label: "In use",
                color: "#000",
                dashed: false,
                values: (0..90).collect(),
            }],
        )
        .unwrap()
        .into_string();
        let p = parse(&svg);
        assert_eq!(p.polylines[0].split(' ').count(), 90);
        let day_labels = svg.matches("class=\"day\"").count();
        assert!((2..=MAX_DAY_LABELS).contains(&day_labels), "{day_labels}");
    }

    #[test]
    fn too_little_or_inconsistent_data_is_refused() {
        let one = [day("2026-01-01")];
        assert_eq!(
            line_chart("t", &one, &[]).unwrap_err(),
            ChartError::TooFewDays
        );
        let two = [day("2026-01-02"), day("2026-01-01")];
        assert_eq!(
            line_chart("t", &two, &[]).unwrap_err(),
            ChartError::Unordered
        );
        let ok_days = [day("2026-01-01"), day("2026-01-02")];
        let bad = Series {
            label: "x",
            color: "#000",
            dashed: false,
            values: vec![1],
        };
        assert!(matches!(
            line_chart("t", &ok_days, &[bad]),
            Err(ChartError::LengthMismatch(..))
        ));
    }

    #[test]
    fn value_steps_are_round() {
        assert_eq!(value_step(1), 1);
        assert_eq!(value_step(5), 1);
        assert_eq!(value_step(7), 2);
        assert_eq!(value_step(24), 5);
        assert_eq!(value_step(180), 50);
        assert_eq!(value_step(1000), 200);
    }
}
