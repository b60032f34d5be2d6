//! Text over video frames, and the contact sheet: one labelled frame per task in a grid, under a
//! title line, as a PNG.
use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

/// Registers the embedded font (DejaVu Sans) as plotters' "sans-serif", once per process: what
/// draws text here and in the report's plots.
pub fn register_font() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).map_err(|_| anyhow!("the embedded font did not load"));
    });
    result
}

pub fn plot_error<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow!("plotting: {error}")
}

/// A task's frame on the contact sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// RGB, `size` x `size`, without text.
    pub frame: Vec<u8>,
    /// The episode's outcome, e.g. "success at step 41  return 812.3".
    pub caption: String,
    pub success: bool,
    /// The step the frame shows.
    pub step: usize,
}

const COLUMNS: usize = 5;
const GAP: usize = 4;
const SHEET_GREEN: RGBColor = RGBColor(20, 130, 40);
const SHEET_RED: RGBColor = RGBColor(180, 40, 30);

fn font_px(size: usize) -> u32 {
    (size / 16).max(9) as u32
}

/// Writes `top` over a dark band at the top of an RGB `size` x `size` frame and `bottom` (in
/// `color`) over one at the bottom.
pub fn draw_label(frame: &mut [u8], size: usize, top: &str, bottom: &str, color: RGBColor) -> anyhow::Result<()> {
    register_font()?;
    let px = font_px(size);
    let band = (px as f64 * 1.5) as i32;
    let side = size as i32;
    let root = BitMapBackend::with_buffer(frame, (size as u32, size as u32)).into_drawing_area();
    let shade = BLACK.mix(0.55).filled();
    root.draw(&Rectangle::new([(0, 0), (side, band)], shade)).map_err(plot_error)?;
    root.draw(&Rectangle::new([(0, side - band), (side, side)], shade)).map_err(plot_error)?;
    let inset = (px / 3) as i32;
    for (text, y, color) in [(top, inset, WHITE), (bottom, side - band + inset, color)] {
        let font = fitting_font(&root, text, px, size as u32 - 2 * inset as u32)?;
        root.draw(&Text::new(text.to_string(), (inset, y), font.color(&color))).map_err(plot_error)?;
    }
    root.present().map_err(plot_error)
}

/// The font at `px` pixels, or smaller until `text` is at most `width` wide.
fn fitting_font<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, text: &str, px: u32, width: u32) -> anyhow::Result<FontDesc<'static>> {
    let mut px = px;
    loop {
        let font = ("sans-serif", px).into_font();
        let (w, _) = area.estimate_text_size(text, &TextStyle::from(font.clone())).map_err(plot_error)?;
        if w <= width || px <= 6 {
            return Ok(font);
        }
        px -= 1;
    }
}

/// The tiles (task name, tile) of `size`-pixel frames in rows of five, each captioned with its
/// task and outcome, under `title`.
pub fn write_contact_sheet(path: &Path, title: &str, tiles: &[(&str, &Tile)], size: usize) -> anyhow::Result<()> {
    register_font()?;
    if tiles.is_empty() {
        return Err(anyhow!("no frames for a contact sheet"));
    }
    let px = font_px(size);
    let caption = 2 * (px as f64 * 1.4) as usize + GAP;
    let title_band = (px as f64 * 2.2) as usize;
    let columns = tiles.len().min(COLUMNS);
    let rows = tiles.len().div_ceil(COLUMNS);
    let (cell_w, cell_h) = (size + GAP, size + caption + GAP);
    let (width, height) = (columns * cell_w + GAP, title_band + rows * cell_h);
    let mut sheet = vec![255u8; width * height * 3];
    let origin = |i: usize| (GAP + (i % COLUMNS) * cell_w, title_band + (i / COLUMNS) * cell_h);
    for (i, (_, tile)) in tiles.iter().enumerate() {
        let (x, y) = origin(i);
        for row in 0..size {
            let to = ((y + row) * width + x) * 3;
            sheet[to..to + size * 3].copy_from_slice(&tile.frame[row * size * 3..(row + 1) * size * 3]);
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut sheet, (width as u32, height as u32)).into_drawing_area();
        let title_font = fitting_font(&root, title, px + 2, (width - 2 * GAP) as u32)?;
        root.draw(&Text::new(title.to_string(), (GAP as i32, (px / 2) as i32), title_font.color(&BLACK))).map_err(plot_error)?;
        for (i, (task, tile)) in tiles.iter().enumerate() {
            let (x, y) = origin(i);
            let below = (y + size + GAP / 2) as i32;
            let line = (px as f64 * 1.4) as i32;
            let color = if tile.success { SHEET_GREEN } else { SHEET_RED };
            for (text, y, color) in [(*task, below, BLACK), (tile.caption.as_str(), below + line, color)] {
                let font = fitting_font(&root, text, px, size as u32)?;
                root.draw(&Text::new(text.to_string(), (x as i32, y), font.color(&color))).map_err(plot_error)?;
            }
        }
        root.present().map_err(plot_error)?;
    }
    image::save_buffer(path, &sheet, width as u32, height as u32, image::ColorType::Rgb8).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}
