//! SVG charts for the report (plotters' SVG backend: text is left to the viewer's fonts).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

const SIZE: (u32, u32) = (760, 380);

/// The color of a variant, the same in every chart.
pub fn color_of(variant: &str) -> RGBColor {
    match variant {
        "wasmtime-uncached" => RGBColor(230, 145, 56),
        "wasmtime-cached" => RGBColor(52, 101, 164),
        "wamr" => RGBColor(78, 154, 6),
        "runc" => RGBColor(110, 110, 110),
        _ => RGBColor(117, 80, 123),
    }
}

/// One series of bars: a value (and an optional upper mark, e.g. p90) per category.
pub struct Bars {
    pub label: String,
    pub color: RGBColor,
    pub values: Vec<Option<(f64, Option<f64>)>>,
}

/// Bars grouped by category, one bar per series in each group.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    categories: &[String],
    series: &[Bars],
) -> Result<()> {
    let y_max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .map(|(value, mark)| mark.unwrap_or(*value).max(*value))
        .fold(0.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..categories.len() as f64 - 0.5, 0f64..y_max.max(1.0))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(categories.len() * 2 + 1)
        .x_label_formatter(&|x| category_at(categories, *x))
        .y_desc(y_desc)
        .draw()
        .map_err(plot_error)?;
    let width = 0.8 / series.len().max(1) as f64;
    for (index, bars) in series.iter().enumerate() {
        let left = |category: usize| category as f64 - 0.4 + index as f64 * width;
        let color = bars.color;
        chart
            .draw_series(bars.values.iter().enumerate().filter_map(|(c, value)| {
                let (value, _) = (*value)?;
                Some(Rectangle::new(
                    [(left(c) + 0.01, 0.0), (left(c) + width - 0.01, value)],
                    color.filled(),
                ))
            }))
            .map_err(plot_error)?
            .label(bars.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(bars.values.iter().enumerate().filter_map(|(c, value)| {
                let mark = (*value)?.1?;
                Some(PathElement::new(
                    vec![(left(c) + 0.01, mark), (left(c) + width - 0.01, mark)],
                    BLACK.stroke_width(2),
                ))
            }))
            .map_err(plot_error)?;
    }
    legend(&mut chart)?;
    root.present().map_err(plot_error)
}

/// One line: (x, y) points.
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// Lines over a shared x axis; `x_names` names the ticks at 0, 1, 2… when the x values are
/// positions rather than quantities.
pub fn lines(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    x_names: Option<&[String]>,
    series: &[Line],
) -> Result<()> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x_max = all().map(|p| p.0).fold(0.0, f64::max);
    let y_max = all().map(|p| p.1).fold(0.0, f64::max) * 1.15;
    let x_range = match x_names {
        Some(names) => -0.3..names.len() as f64 - 0.7,
        None => 0.0..x_max * 1.05,
    };
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, 0f64..y_max.max(1.0))
        .map_err(plot_error)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc).y_desc(y_desc);
    let name_at = |x: &f64| x_names.map_or_else(|| number(*x), |n| category_at(n, *x));
    if let Some(names) = x_names {
        mesh.x_labels(names.len() * 4);
    }
    mesh.x_label_formatter(&name_at)
        .draw()
        .map_err(plot_error)?;
    for line in series {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|p| Circle::new(*p, 4, color.filled())),
            )
            .map_err(plot_error)?;
    }
    legend(&mut chart)?;
    root.present().map_err(plot_error)
}

fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

/// A tick value: whole numbers without decimals.
fn number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The name of the category at tick `x`, or nothing between categories.
fn category_at(categories: &[String], x: f64) -> String {
    let nearest = x.round();
    if (x - nearest).abs() > 1e-6 || nearest < 0.0 {
        return String::new();
    }
    categories
        .get(nearest as usize)
        .cloned()
        .unwrap_or_default()
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_between_categories_have_no_name() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(category_at(&names, 1.0), "b");
        assert_eq!(category_at(&names, 0.5), "");
        assert_eq!(category_at(&names, 2.0), "");
    }

    #[test]
    fn charts_are_svg_with_their_labels() {
        let dir = std::env::temp_dir().join(format!("shim-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bars = dir.join("bars.svg");
        grouped_bars(
            &bars,
            "Cold start",
            "ms",
            &["wasmtime".to_owned(), "runc".to_owned()],
            &[Bars {
                label: "ctr".into(),
                color: color_of("runc"),
                values: vec![Some((100.0, Some(120.0))), None],
            }],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&bars).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Cold start") && svg.contains("wasmtime"));
        let line = dir.join("line.svg");
        lines(
            &line,
            "Throughput",
            ("parallelism", "containers/s"),
            Some(&["1".to_owned(), "4".to_owned()]),
            &[Line {
                label: "runc".into(),
                color: color_of("runc"),
                points: vec![(0.0, 5.0), (1.0, 9.0)],
            }],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&line).unwrap();
        assert!(svg.contains("Throughput") && svg.contains("runc"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
