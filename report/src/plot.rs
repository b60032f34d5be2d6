//! PNG line charts for `mt10 report` and `mt10 bench freq`: panels side by side, each with
//! lines and optional shaded bands (confidence intervals). Step counts read `10k`, `1M`; a y
//! axis of success rates or fractions (its label says "success" or "fraction") runs from 0 to 1,
//! so that curves from different runs look alike.
use plotters::prelude::*;
use std::path::Path;
pub use training::video_sheet::{plot_error, register_font};

pub struct Series {
    pub label: String,
    /// `(x, y)`, sorted by x.
    pub points: Vec<(f64, f64)>,
    /// The lower and upper edge of a band at each point (same length as `points`).
    pub band: Option<Vec<(f64, f64)>>,
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub log_x: bool,
}

const PANEL_SIZE: (u32, u32) = (760, 520);

/// Draws the panels in one row into a PNG.
pub fn draw(path: &Path, panels: &[Panel]) -> anyhow::Result<()> {
    register_font()?;
    let width = PANEL_SIZE.0 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, PANEL_SIZE.1)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    for (panel, area) in panels.iter().zip(root.split_evenly((1, panels.len().max(1)))) {
        draw_panel(&area, panel)?;
    }
    root.present().map_err(plot_error)
}

fn draw_panel(area: &DrawingArea<BitMapBackend, plotters::coord::Shift>, panel: &Panel) -> anyhow::Result<()> {
    let all = || {
        panel.series.iter().flat_map(|s| {
            s.points.iter().enumerate().flat_map(move |(i, &(x, y))| {
                let (low, high) = s.band.as_ref().map_or((y, y), |b| b[i]);
                [(x, low), (x, high)]
            })
        })
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in all().filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let (y0, y1) = if unit_axis(&panel.y_label) { (-0.02, 1.02) } else { (y0 - pad, y1 + pad) };
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder.caption(&panel.title, ("sans-serif", 20)).margin(12).x_label_area_size(40).y_label_area_size(60);
    let ticks = |x: &f64| format_count(*x);
    let legend = emptiest_corner(panel, (x0, x1), (y0, y1));
    if panel.log_x {
        let mut chart = builder.build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), y0..y1).map_err(plot_error)?;
        chart.configure_mesh().x_desc(&panel.x_label).y_desc(&panel.y_label).x_label_formatter(&ticks).draw().map_err(plot_error)?;
        draw_series(&mut chart, panel, legend)
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(plot_error)?;
        chart.configure_mesh().x_desc(&panel.x_label).y_desc(&panel.y_label).x_label_formatter(&ticks).draw().map_err(plot_error)?;
        draw_series(&mut chart, panel, legend)
    }
}

/// Series with more points than this are drawn without markers.
const MARKED_POINTS: usize = 40;

/// The corner of the plot with the fewest points in it, for the legend.
fn emptiest_corner(panel: &Panel, x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let scale = |v: f64| if panel.log_x { v.max(1e-9).log10() } else { v };
    let share = |v: f64, (low, high): (f64, f64)| (v - low) / (high - low);
    let x = (scale(x.0), scale(x.1));
    let corners = [SeriesLabelPosition::UpperRight, SeriesLabelPosition::UpperLeft, SeriesLabelPosition::LowerRight, SeriesLabelPosition::LowerLeft];
    let mut counts = [0usize; 4];
    for &(px, py) in panel.series.iter().flat_map(|s| &s.points) {
        let (fx, fy) = (share(scale(px), x), share(py, y));
        // 0 for the high side, `low` for the low side, none in the middle band.
        let side = |share: f64, low: usize| (share > 0.55).then_some(0).or((share < 0.45).then_some(low));
        let (vertical, horizontal) = (side(fy, 2), side(fx, 1));
        if let (Some(v), Some(h)) = (vertical, horizontal) {
            counts[v + h] += 1;
        }
    }
    let emptiest = (0..4).min_by_key(|&i| counts[i]).expect("four corners");
    corners[emptiest].clone()
}

fn unit_axis(label: &str) -> bool {
    label.contains("success") || label.contains("fraction")
}

/// A tick label: `10k` for 10,000, `1.5M` for 1,500,000, `0.25` for 0.25 (at most two decimals,
/// no trailing zeros).
pub fn format_count(x: f64) -> String {
    let (value, suffix) = match x.abs() {
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let digits = format!("{value:.2}");
    let digits = digits.trim_end_matches('0').trim_end_matches('.');
    format!("{}{suffix}", if digits == "-0" { "0" } else { digits })
}

fn draw_series<'a, X>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    panel: &Panel,
    legend: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
{
    for (i, series) in panel.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if let Some(band) = &series.band {
            let upper = series.points.iter().zip(band).map(|(&(x, _), &(_, high))| (x, high));
            let lower = series.points.iter().zip(band).rev().map(|(&(x, _), &(low, _))| (x, low));
            chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), color.mix(0.2)))).map_err(plot_error)?;
        }
        chart
            .draw_series(LineSeries::new(series.points.iter().copied(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(&series.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        // Markers show where a sparse curve was measured; on a dense one they only hide it.
        if series.points.len() <= MARKED_POINTS {
            chart.draw_series(series.points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_error)?;
        }
    }
    if panel.series.iter().any(|s| !s.label.is_empty()) {
        chart.configure_series_labels().position(legend).background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_count;

    #[test]
    fn step_ticks_read_as_counts() {
        let ticks: Vec<String> = [0.0, 50.0, 500.0, 10_000.0, 12_500.0, 1_000_000.0, 2_000_000.0, 0.25, 1.5e6].map(format_count).into();
        assert_eq!(ticks, ["0", "50", "500", "10k", "12.5k", "1M", "2M", "0.25", "1.5M"]);
    }
}
