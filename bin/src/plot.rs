//! PNG line charts for `mt10 report` and `mt10 bench freq`: panels side by side, each with
//! lines and optional shaded bands (mean +- s.e.m.).
use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

pub struct Series {
    pub label: String,
    /// `(x, y)`, sorted by x.
    pub points: Vec<(f64, f64)>,
    /// Half-width of a band around each point (same length as `points`).
    pub band: Option<Vec<f64>>,
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
    let all = || panel.series.iter().flat_map(|s| s.points.iter().enumerate().map(move |(i, &p)| (p, s.band.as_ref().map_or(0.0, |b| b[i]))));
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for ((x, y), band) in all().filter(|((x, y), _)| x.is_finite() && y.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y - band), y1.max(y + band));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder.caption(&panel.title, ("sans-serif", 20)).margin(12).x_label_area_size(40).y_label_area_size(60);
    if panel.log_x {
        let mut chart = builder.build_cartesian_2d((x0.max(1e-9)..x1).log_scale(), y0..y1).map_err(plot_error)?;
        chart.configure_mesh().x_desc(&panel.x_label).y_desc(&panel.y_label).draw().map_err(plot_error)?;
        draw_series(&mut chart, panel)
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(plot_error)?;
        chart.configure_mesh().x_desc(&panel.x_label).y_desc(&panel.y_label).draw().map_err(plot_error)?;
        draw_series(&mut chart, panel)
    }
}

fn draw_series<'a, X>(chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>, panel: &Panel) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
{
    for (i, series) in panel.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if let Some(band) = &series.band {
            let upper = series.points.iter().zip(band).map(|(&(x, y), b)| (x, y + b));
            let lower = series.points.iter().zip(band).rev().map(|(&(x, y), b)| (x, y - b));
            chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), color.mix(0.2)))).map_err(plot_error)?;
        }
        chart
            .draw_series(LineSeries::new(series.points.iter().copied(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(&series.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(series.points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_error)?;
    }
    if panel.series.iter().any(|s| !s.label.is_empty()) {
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(plot_error)?;
    }
    Ok(())
}

pub fn register_font() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| anyhow!("the embedded font did not load"));
    });
    result
}

pub fn plot_error<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow!("plotting: {error}")
}
