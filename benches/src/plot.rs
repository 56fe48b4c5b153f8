//! `busbench --plot DIR`: SVG charts from the run's JSON document: round-trip latency
//! percentiles per queue and bus throughput against fanout with tracing off and on (from the
//! `spsc` and `fanout` sections), and one-way latency against offered rate per system (from
//! `latency_at_rate`), each drawn when its sections are in the document.

use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Round-trip p50/p99/p99.9 per queue (horizontal bars, log scale), from `doc["spsc"]`.
pub fn latency_chart(doc: &Value, path: &Path) -> PlotResult {
    let rows: Vec<(String, [f64; 3])> = doc["spsc"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            let name = format!(
                "{} {}",
                q["queue"].as_str().unwrap_or("?"),
                q["mode"].as_str().unwrap_or("")
            );
            let r = &q["rtt_ns"];
            let v = |k: &str| r[k].as_f64().unwrap_or(1.0).max(1.0);
            (name, [v("p50"), v("p99"), v("p999")])
        })
        .collect();
    let max = rows.iter().map(|(_, v)| v[2]).fold(1.0, f64::max) * 8.0;
    let root = SVGBackend::new(path, (900, 60 + 40 * rows.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "SPSC round trip (ns, log scale): p50 / p99 / p99.9",
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(10)
        .build_cartesian_2d((50f64..max).log_scale(), 0f64..rows.len() as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    // Queue names right after each row's bars (plotters' own y labels pick "nice" positions).
    chart.draw_series(rows.iter().enumerate().map(|(i, (name, v))| {
        Text::new(
            name.clone(),
            (v[2] * 1.1, i as f64 + 0.35),
            ("sans-serif", 13).into_font().color(&BLACK),
        )
    }))?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(214, 39, 40),
    ];
    for (band, (label, color)) in ["p50", "p99", "p99.9"].iter().zip(colors).enumerate() {
        chart
            .draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
                let y0 = i as f64 + 0.1 + band as f64 * 0.27;
                Rectangle::new([(50.0, y0), (v[band], y0 + 0.25)], color.filled())
            }))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// Deliveries per second against subscribers, tracing off and on, from `doc["fanout"]`.
pub fn fanout_chart(doc: &Value, path: &Path) -> PlotResult {
    let series = |tracing: &str| -> Vec<(f64, f64)> {
        doc["fanout"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["tracing"] == tracing)
            .filter_map(|r| {
                Some((
                    r["subscribers"].as_f64()?,
                    r["deliveries_per_sec"].as_f64()? / 1e6,
                ))
            })
            .collect()
    };
    let (off, on) = (series("off"), series("on"));
    let max_y = off.iter().chain(&on).map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Bus deliveries per second against fanout",
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..10_000f64).log_scale(), 0f64..max_y)?;
    chart
        .configure_mesh()
        .x_desc("subscribers")
        .y_desc("M deliveries / s")
        .draw()?;
    for (data, label, color) in [(off, "tracing off", BLUE), (on, "tracing on (k = 10)", RED)] {
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(data.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// The series of one system in `doc["latency_at_rate"]`: (rate in msgs/s, latency in ns) for
/// the percentile `key` (`"p50_ns"`, `"p99_ns"`, ...) at every rate it kept up with, and the
/// rates it could not (saturated).
fn rate_series(doc: &Value, system: &str, key: &str) -> (Vec<(f64, f64)>, Vec<f64>) {
    let rows = || {
        doc["latency_at_rate"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(move |r| r["system"] == system)
    };
    let kept = rows()
        .filter_map(|r| Some((r["rate"].as_f64()?, r[key].as_f64()?.max(1.0))))
        .collect();
    let saturated = rows()
        .filter(|r| r["saturated"] == true)
        .filter_map(|r| r["rate"].as_f64())
        .collect();
    (kept, saturated)
}

/// One-way latency against offered rate (both log scales), one line per system, from
/// `doc["latency_at_rate"]`: p50 on the left, p99 on the right; a rate a system could not keep
/// up with is a cross at the top of each panel.
pub fn rate_chart(doc: &Value, path: &Path) -> PlotResult {
    let mut systems: Vec<&str> = Vec::new();
    for r in doc["latency_at_rate"].as_array().into_iter().flatten() {
        if let Some(s) = r["system"].as_str() {
            if !systems.contains(&s) {
                systems.push(s);
            }
        }
    }
    let root = SVGBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "One-way latency at an offered rate (x: saturated)",
        ("sans-serif", 20),
    )?;
    let (left, right) = root.split_horizontally(600);
    for (area, key, label) in [(left, "p50_ns", "p50"), (right, "p99_ns", "p99")] {
        rate_panel(&area, doc, &systems, key, label)?;
    }
    root.present()?;
    Ok(())
}

/// One panel of [`rate_chart`]: percentile `key` of every system.
fn rate_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    doc: &Value,
    systems: &[&str],
    key: &str,
    label: &str,
) -> PlotResult {
    let series: Vec<_> = systems.iter().map(|s| rate_series(doc, s, key)).collect();
    let rates = || {
        series
            .iter()
            .flat_map(|(k, sat)| k.iter().map(|p| p.0).chain(sat.clone()))
    };
    let (min_x, max_x) = (
        rates().fold(f64::INFINITY, f64::min).min(1e5) / 1.5,
        rates().fold(1e6, f64::max) * 1.5,
    );
    let max_y = series
        .iter()
        .flat_map(|(k, _)| k.iter().map(|p| p.1))
        .fold(1e3, f64::max)
        * 12.0;
    let mut chart = ChartBuilder::on(area)
        .caption(label, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((min_x..max_x).log_scale(), (10f64..max_y).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered rate (msgs/s)")
        .y_desc(format!("{label} latency (ns)"))
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
    ];
    for (i, (name, (kept, saturated))) in systems.iter().zip(&series).enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(kept.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(kept.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        // Crosses apart per system, so that they stay visible when several saturate.
        let top = max_y / 1.5 / 1.6f64.powi(i as i32);
        chart.draw_series(
            saturated
                .iter()
                .map(|&x| Cross::new((x, top), 6, color.stroke_width(2))),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Writes into `dir` every chart whose sections the document has (`rtt.svg` and `fanout.svg`
/// from `spsc` and `fanout`, `latency_at_rate.svg` from `latency_at_rate`); returns the names
/// of the files written.
pub fn write_all(doc: &Value, dir: &Path) -> Result<Vec<&'static str>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    if !doc["spsc"].is_null() && !doc["fanout"].is_null() {
        latency_chart(doc, &dir.join("rtt.svg"))?;
        fanout_chart(doc, &dir.join("fanout.svg"))?;
        written.extend(["rtt.svg", "fanout.svg"]);
    }
    if !doc["latency_at_rate"].is_null() {
        rate_chart(doc, &dir.join("latency_at_rate.svg"))?;
        written.push("latency_at_rate.svg");
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn charts_are_written_from_a_document() {
        let doc = json!({
            "spsc": [
                {"queue": "tracebus", "mode": "single", "rtt_ns": {"p50": 400, "p99": 600, "p999": 900}},
                {"queue": "rtrb", "mode": "single", "rtt_ns": {"p50": 700, "p99": 900, "p999": 1200}},
            ],
            "fanout": [
                {"subscribers": 1, "tracing": "off", "deliveries_per_sec": 8e6},
                {"subscribers": 100, "tracing": "off", "deliveries_per_sec": 2.5e8},
                {"subscribers": 1, "tracing": "on", "deliveries_per_sec": 1e6},
                {"subscribers": 100, "tracing": "on", "deliveries_per_sec": 3e7},
            ],
        });
        let dir = std::env::temp_dir().join(format!("busbench-plot-{}", std::process::id()));
        assert_eq!(write_all(&doc, &dir).unwrap(), ["rtt.svg", "fanout.svg"]);
        for f in ["rtt.svg", "fanout.svg"] {
            let svg = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(svg.starts_with("<svg"), "{f}");
            assert!(
                svg.contains("<rect") || svg.contains("<polyline"),
                "{f} has marks"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_rate_chart_is_written_alone_and_skips_saturated_points() {
        let row = |rate: u64, system: &str, p99: Option<u64>| {
            json!({
                "rate": rate,
                "system": system,
                "p99_ns": p99,
                "saturated": p99.is_none(),
            })
        };
        let doc = json!({
            "spsc": null,
            "fanout": null,
            "latency_at_rate": [
                row(100_000, "a", Some(900)),
                row(1_000_000, "a", Some(2_000)),
                row(10_000_000, "a", None),
                row(100_000, "b", Some(1_200)),
                row(10_000_000, "b", Some(40_000)),
            ],
        });
        let (kept, saturated) = rate_series(&doc, "a", "p99_ns");
        assert_eq!(kept, [(1e5, 900.0), (1e6, 2_000.0)]);
        assert_eq!(saturated, [1e7]);
        assert_eq!(rate_series(&doc, "b", "p99_ns").0.len(), 2);
        assert!(
            rate_series(&doc, "b", "p50_ns").0.is_empty(),
            "no p50 in these rows"
        );
        let dir = std::env::temp_dir().join(format!("busbench-rate-plot-{}", std::process::id()));
        assert_eq!(write_all(&doc, &dir).unwrap(), ["latency_at_rate.svg"]);
        let svg = std::fs::read_to_string(dir.join("latency_at_rate.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
        assert!(!dir.join("rtt.svg").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
