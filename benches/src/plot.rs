//! `busbench --plot DIR`: two SVG charts from the run's JSON document: round-trip latency
//! percentiles per queue, and bus throughput against fanout with tracing off and on.

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

/// Writes both charts into `dir`.
pub fn write_all(doc: &Value, dir: &Path) -> PlotResult {
    std::fs::create_dir_all(dir)?;
    latency_chart(doc, &dir.join("rtt.svg"))?;
    fanout_chart(doc, &dir.join("fanout.svg"))?;
    Ok(())
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
        write_all(&doc, &dir).unwrap();
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
}
