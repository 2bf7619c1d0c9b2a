//! Raster rendering of map panels: equirectangular over the region, a perceptual colour map
//! (viridis), a title, per-panel captions, a legend, and optional blending over the tiles.

use image::{imageops, Rgb, RgbImage};

use super::{Footprint, MapCell};

/// Options for [`render_panels`].
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Width of each panel's map area in pixels (16..=8192).
    pub panel_width: u32,
    /// Title drawn above the panels.
    pub title: String,
    /// Opacity of the heat colours over tile imagery, when tiles are given (0..=1).
    pub heat_alpha: f32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            panel_width: 512,
            title: String::new(),
            heat_alpha: 0.6,
        }
    }
}

/// One panel: a caption, cells with their min-max scaled scores, and optionally the tile
/// images (same order as `cells`) to blend under the colours.
pub struct Panel<'a> {
    /// Caption drawn above the panel (the prompt, the hour, ...).
    pub caption: String,
    /// The cells.
    pub cells: &'a [MapCell],
    /// Scaled scores in `[0, 1]`, one per cell.
    pub norm: &'a [f32],
    /// Tile images to draw under the colours, one per cell (`None` where missing).
    pub tiles: Option<&'a [Option<RgbImage>]>,
}

/// A rendered map and where its first panel's map area sits, for the world file.
pub struct RenderedMap {
    /// The image.
    pub image: RgbImage,
    /// The geographic region of each panel's map area.
    pub region: Footprint,
    /// Top-left pixel of the first panel's map area.
    pub map_origin_px: (u32, u32),
    /// Size in pixels of each panel's map area.
    pub map_size_px: (u32, u32),
}

/// Why a map could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// Nothing to draw.
    #[error("no tiles in the region: nothing to map")]
    Empty,
    /// A panel's scores do not match its cells.
    #[error("panel {0}: {1} scores for {2} cells")]
    Mismatch(usize, usize, usize),
    /// Bad option.
    #[error("{0}")]
    Option(String),
}

const MARGIN: u32 = 16;
const TEXT_SCALE: u32 = 2;
const LINE: u32 = 8 * TEXT_SCALE + 6;
const BG: Rgb<u8> = Rgb([250, 250, 250]);
const NO_DATA: Rgb<u8> = Rgb([60, 60, 60]);
const INK: Rgb<u8> = Rgb([20, 20, 20]);

/// The colour of a scaled score (viridis: perceptually uniform, colour-blind safe).
pub fn heat_colour(t: f32) -> Rgb<u8> {
    let c = colorous::VIRIDIS.eval_continuous(f64::from(t.clamp(0.0, 1.0)));
    Rgb([c.r, c.g, c.b])
}

/// Draws the panels side by side under a title, with a legend below.
pub fn render_panels(
    region: Footprint,
    panels: &[Panel<'_>],
    opts: &RenderOptions,
) -> Result<RenderedMap, MapError> {
    if panels.is_empty() || panels.iter().all(|p| p.cells.is_empty()) {
        return Err(MapError::Empty);
    }
    for (i, p) in panels.iter().enumerate() {
        if p.norm.len() != p.cells.len() {
            return Err(MapError::Mismatch(i, p.norm.len(), p.cells.len()));
        }
        if p.tiles.is_some_and(|t| t.len() != p.cells.len()) {
            return Err(MapError::Option(format!(
                "panel {i}: tile count differs from cell count"
            )));
        }
    }
    if !(16..=8192).contains(&opts.panel_width) {
        return Err(MapError::Option(format!(
            "panel width {} outside 16..=8192",
            opts.panel_width
        )));
    }
    if !(0.0..=1.0).contains(&opts.heat_alpha) {
        return Err(MapError::Option("heat alpha outside 0..=1".into()));
    }
    let w = opts.panel_width;
    let dlon = region.width_deg().max(1e-9);
    let dlat = (region.north - region.south).max(1e-9);
    let mid = ((region.north + region.south) / 2.0)
        .to_radians()
        .cos()
        .max(0.05);
    let h = ((f64::from(w) * dlat / (dlon * mid)).round() as u32).clamp(16, 4 * w);

    let n = panels.len() as u32;
    let width = MARGIN * 2 + n * w + (n - 1) * MARGIN;
    let map_top = MARGIN + 2 * LINE + LINE;
    let legend_top = map_top + h + MARGIN;
    let height = legend_top + 14 + LINE + MARGIN;
    let mut img = RgbImage::from_pixel(width, height, BG);

    draw_text(&mut img, MARGIN, MARGIN, &opts.title, INK);
    for (i, p) in panels.iter().enumerate() {
        let x0 = MARGIN + i as u32 * (w + MARGIN);
        draw_text(&mut img, x0, MARGIN + LINE, &fit(&p.caption, w), INK);
        let (lo, hi) = p
            .cells
            .iter()
            .map(|c| c.score)
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), s| {
                (a.min(s), b.max(s))
            });
        let range = if p.cells.is_empty() {
            "no tiles".to_string()
        } else {
            format!("cos {lo:.3} .. {hi:.3}")
        };
        draw_text(
            &mut img,
            x0,
            MARGIN + 2 * LINE,
            &fit(&range, w),
            Rgb([90, 90, 90]),
        );
        fill(&mut img, x0, map_top, w, h, NO_DATA);
        for (j, cell) in p.cells.iter().enumerate() {
            let Some((cx, cy, cw, ch)) = cell_rect(&region, &cell.footprint, w, h) else {
                continue;
            };
            let heat = heat_colour(p.norm[j]);
            match p.tiles.and_then(|t| t[j].as_ref()) {
                Some(tile) if cw > 0 && ch > 0 => {
                    let small = imageops::resize(tile, cw, ch, imageops::FilterType::Triangle);
                    let a = opts.heat_alpha;
                    for (dx, dy, px) in small.enumerate_pixels() {
                        let mix = |k: usize| {
                            (f32::from(px.0[k]) * (1.0 - a) + f32::from(heat.0[k]) * a).round()
                                as u8
                        };
                        img.put_pixel(
                            x0 + cx + dx,
                            map_top + cy + dy,
                            Rgb([mix(0), mix(1), mix(2)]),
                        );
                    }
                }
                _ => fill(&mut img, x0 + cx, map_top + cy, cw, ch, heat),
            }
        }
    }
    // Legend: a gradient bar with its ends labelled.
    let bar_w = (width - 2 * MARGIN).min(256);
    for dx in 0..bar_w {
        let c = heat_colour(dx as f32 / (bar_w - 1).max(1) as f32);
        fill(&mut img, MARGIN + dx, legend_top, 1, 14, c);
    }
    draw_text(
        &mut img,
        MARGIN,
        legend_top + 18,
        &fit(
            "0 = region min .. 1 = region max (min-max scaled cosine)",
            width - 2 * MARGIN,
        ),
        INK,
    );
    Ok(RenderedMap {
        image: img,
        region,
        map_origin_px: (MARGIN, map_top),
        map_size_px: (w, h),
    })
}

/// Pixel rectangle of a footprint inside a `w` x `h` map of `region`, clipped; `None` if outside.
fn cell_rect(region: &Footprint, fp: &Footprint, w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
    let dlon = region.width_deg().max(1e-9);
    let dlat = (region.north - region.south).max(1e-9);
    let rel = |lon: f64| (lon - region.west).rem_euclid(360.0);
    let x0 = rel(fp.west);
    // A cell that starts just west of the region wraps to ~360: treat it as slightly negative.
    let x0 = if x0 > dlon && x0 > 180.0 {
        x0 - 360.0
    } else {
        x0
    };
    let x1 = x0 + fp.width_deg();
    let px = |v: f64| (v / dlon * f64::from(w)).round().clamp(0.0, f64::from(w)) as u32;
    let py = |lat: f64| {
        ((region.north - lat) / dlat * f64::from(h))
            .round()
            .clamp(0.0, f64::from(h)) as u32
    };
    let (a, b) = (px(x0), px(x1));
    let (c, d) = (py(fp.north), py(fp.south));
    (b > a && d > c).then(|| (a, c, b - a, d - c))
}

fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, c: Rgb<u8>) {
    for yy in y..(y + h).min(img.height()) {
        for xx in x..(x + w).min(img.width()) {
            img.put_pixel(xx, yy, c);
        }
    }
}

/// Shortens `text` to what fits in `width` pixels.
fn fit(text: &str, width: u32) -> String {
    let max = (width / (8 * TEXT_SCALE)) as usize;
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(3)).collect();
        s.push_str("...");
        s
    }
}

/// Draws ASCII text with an 8x8 bitmap font scaled by `TEXT_SCALE` (other characters as '?').
fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, c: Rgb<u8>) {
    for (i, ch) in text.chars().enumerate() {
        let code = if ch.is_ascii() {
            ch as usize
        } else {
            b'?' as usize
        };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let gx = x + i as u32 * 8 * TEXT_SCALE;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u32 {
                if bits >> col & 1 == 1 {
                    fill(
                        img,
                        gx + col * TEXT_SCALE,
                        y + row as u32 * TEXT_SCALE,
                        TEXT_SCALE,
                        TEXT_SCALE,
                        c,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Point;

    fn grid() -> Vec<MapCell> {
        let mut cells = Vec::new();
        for i in 0..4 {
            for j in 0..4 {
                let p = Point::new(10.0 + i as f64, 20.0 + j as f64).unwrap();
                cells.push(MapCell {
                    id: (i * 4 + j) as u64,
                    center: p,
                    footprint: Footprint::around(p, 0.5, 0.5),
                    score: (i * 4 + j) as f32 / 15.0,
                });
            }
        }
        cells
    }

    #[test]
    fn colours_follow_scores_and_layout_is_stable() {
        let cells = grid();
        let norm = super::super::min_max_scale(&cells.iter().map(|c| c.score).collect::<Vec<_>>());
        let region = super::super::region_of(&cells).unwrap();
        let panel = Panel {
            caption: "a prompt".into(),
            cells: &cells,
            norm: &norm,
            tiles: None,
        };
        let opts = RenderOptions {
            panel_width: 128,
            title: "t".into(),
            heat_alpha: 0.6,
        };
        let map = render_panels(region, &[panel], &opts).unwrap();
        assert_eq!(map.map_size_px.0, 128);
        let (ox, oy) = map.map_origin_px;
        let (w, h) = map.map_size_px;
        // The north-east corner holds the best cell, the south-west corner the worst.
        assert_eq!(*map.image.get_pixel(ox + w - 2, oy + 1), heat_colour(1.0));
        assert_eq!(*map.image.get_pixel(ox + 1, oy + h - 2), heat_colour(0.0));
    }

    #[test]
    fn rejects_bad_input() {
        let cells = grid();
        let region = super::super::region_of(&cells).unwrap();
        let p = Panel {
            caption: String::new(),
            cells: &cells,
            norm: &[0.0],
            tiles: None,
        };
        assert!(render_panels(region, &[p], &RenderOptions::default()).is_err());
        assert!(matches!(
            render_panels(region, &[], &RenderOptions::default()),
            Err(MapError::Empty)
        ));
    }
}
