//! A map as a web map: XYZ tile pyramids (Web Mercator, 256 px PNG tiles, `{z}/{x}/{y}.png`)
//! of each panel's scores (viridis, min-max scaled as the PNG, transparent where no tile
//! lies) and, when the tiles' images are at hand, of the imagery itself, plus `index.html`,
//! a one-file viewer over the vendored Leaflet 1.9.4 (no network at run time) that shows
//! them over a basemap of the user's (`{z}/{x}/{y}` URL template) if given.

use image::{Rgb, RgbImage, RgbaImage};

use super::grid::Grid;
use super::render::heat_colour;
use super::{min_max_scale, MapCell};

/// Side of a tile, pixels.
pub const TILE_PX: u32 = 256;

/// The most tiles one pyramid (all zoom levels of one layer) holds; the deepest levels are
/// left out until it fits.
pub const MAX_TILES: u64 = 20_000;

/// Zoom levels below the deepest one.
const LEVELS: u8 = 5;

/// Leaflet 1.9.4 (BSD-2-Clause, assets/leaflet/LICENSE), written beside the viewer.
pub const LEAFLET_JS: &str = include_str!("../../assets/leaflet/leaflet.js");
/// Leaflet's style sheet.
pub const LEAFLET_CSS: &str = include_str!("../../assets/leaflet/leaflet.css");
/// Leaflet's licence.
pub const LEAFLET_LICENSE: &str = include_str!("../../assets/leaflet/LICENSE");

/// Encoded tiles: `((z, x, y), PNG bytes)`.
pub type Tiles = Vec<((u8, u32, u32), Vec<u8>)>;

/// One layer of a web map: its name and its tiles.
pub struct Layer {
    /// Shown in the viewer's layer list.
    pub name: String,
    /// Folder name under the output folder.
    pub folder: String,
    /// Encoded tiles.
    pub tiles: Tiles,
    /// Scores: the lowest and highest cosine (for the legend); `None` for imagery.
    pub range: Option<(f32, f32)>,
    /// Its deepest zoom level.
    pub zmax: u8,
}

/// Tile pixels a score cell spans at the deepest level (sharp cell edges when zoomed in).
const SCORE_DETAIL: f64 = 4.0;

/// The zoom levels of a pyramid over `grid` showing each grid pixel `detail` tile pixels
/// wide: the deepest is the first whose pixels are no larger than `grid.px / detail`, then
/// [`LEVELS`] coarser ones; levels are dropped from the deep end until the pyramid holds
/// at most [`MAX_TILES`].
pub fn zoom_levels(grid: &Grid, detail: f64) -> (u8, u8) {
    let target = grid.px / detail.max(1.0);
    let mut zmax = 0u8;
    while zmax < 22 && 360.0 / (f64::from(TILE_PX) * f64::from(1u32 << zmax)) > target {
        zmax += 1;
    }
    loop {
        let zmin = zmax.saturating_sub(LEVELS);
        let n: u64 = (zmin..=zmax).map(|z| tile_range(grid, z).count()).sum();
        if n <= MAX_TILES || zmax == 0 {
            return (zmin, zmax);
        }
        zmax -= 1;
    }
}

/// The tiles `(x, y)` of zoom `z` that cover the grid.
fn tile_range(grid: &Grid, z: u8) -> TileRange {
    let n = 1u64 << z;
    let east = grid.west + grid.px * f64::from(grid.width);
    let south = grid.north - grid.py * f64::from(grid.height);
    let x0 = ((grid.west + 180.0) / 360.0 * n as f64).floor() as i64;
    let x1 = ((east + 180.0) / 360.0 * n as f64).ceil() as i64;
    let y0 = merc_y(grid.north.min(85.05), n).floor().max(0.0) as u64;
    let y1 = (merc_y(south.max(-85.05), n).ceil() as u64).min(n);
    // Across the antimeridian x runs past n: it wraps (at most the whole circle once).
    let span = (x1 - x0).clamp(1, n as i64) as u64;
    TileRange {
        x0,
        span,
        n,
        y0,
        y1,
    }
}

struct TileRange {
    x0: i64,
    span: u64,
    n: u64,
    y0: u64,
    y1: u64,
}

impl TileRange {
    fn count(&self) -> u64 {
        self.span * self.y1.saturating_sub(self.y0)
    }
    fn tiles(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (self.y0..self.y1).flat_map(move |y| {
            (0..self.span).map(move |i| {
                (
                    (self.x0 + i as i64).rem_euclid(self.n as i64) as u32,
                    y as u32,
                )
            })
        })
    }
}

/// Web Mercator tile row (fractional) of latitude `lat` at `n` tiles a side.
fn merc_y(lat: f64, n: u64) -> f64 {
    let r = lat.to_radians();
    (1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n as f64
}

/// The lon/lat of the centre of pixel `(px, py)` of tile `(z, x, y)`.
fn pixel_lon_lat(z: u8, x: u32, y: u32, px: u32, py: u32) -> (f64, f64) {
    let n = f64::from(1u32 << z) * f64::from(TILE_PX);
    let gx = f64::from(x) * f64::from(TILE_PX) + f64::from(px) + 0.5;
    let gy = f64::from(y) * f64::from(TILE_PX) + f64::from(py) + 0.5;
    let lon = gx / n * 360.0 - 180.0;
    let lat = (std::f64::consts::PI * (1.0 - 2.0 * gy / n))
        .sinh()
        .atan()
        .to_degrees();
    (lon, lat)
}

/// Renders a pyramid: each tile's pixel takes `colour(grid pixel)`, transparent where it
/// returns `None`; tiles wholly transparent are left out.
fn pyramid(
    grid: &Grid,
    detail: f64,
    colour: &dyn Fn(usize, f64, f64) -> Option<[u8; 4]>,
) -> Result<Tiles, String> {
    let (zmin, zmax) = zoom_levels(grid, detail);
    let mut out = Vec::new();
    for z in zmin..=zmax {
        for (x, y) in tile_range(grid, z).tiles() {
            let mut img = RgbaImage::new(TILE_PX, TILE_PX);
            let mut any = false;
            for py in 0..TILE_PX {
                for px in 0..TILE_PX {
                    let (lon, lat) = pixel_lon_lat(z, x, y, px, py);
                    if let Some(c) = grid.pixel(lon, lat).and_then(|i| colour(i, lon, lat)) {
                        img.put_pixel(px, py, image::Rgba(c));
                        any = true;
                    }
                }
            }
            if any {
                let mut png = Vec::new();
                img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                    .map_err(|e| e.to_string())?;
                out.push(((z, x, y), png));
            }
        }
    }
    Ok(out)
}

/// A score layer for `cells` (their scores min-max scaled as the PNG's panel).
pub fn score_layer(
    grid: &Grid,
    index: &[u32],
    cells: &[MapCell],
    name: &str,
    folder: &str,
) -> Result<Layer, String> {
    let scores: Vec<f32> = cells.iter().map(|c| c.score).collect();
    let norm = min_max_scale(&scores);
    let colour = |i: usize, _: f64, _: f64| {
        let c = *index.get(i)?;
        let t = *norm.get(c as usize)?;
        let Rgb([r, g, b]) = heat_colour(t);
        Some([r, g, b, 255])
    };
    let range = scores
        .iter()
        .filter(|s| s.is_finite())
        .fold(None, |r: Option<(f32, f32)>, &s| {
            Some(r.map_or((s, s), |(a, b)| (a.min(s), b.max(s))))
        });
    let tiles = pyramid(grid, SCORE_DETAIL, &colour)?;
    Ok(Layer {
        name: name.to_string(),
        folder: folder.to_string(),
        tiles,
        range,
        zmax: zoom_levels(grid, SCORE_DETAIL).1,
    })
}

/// An imagery layer: each pixel from the image of the cell holding it (`None`: no image).
pub fn imagery_layer(
    grid: &Grid,
    index: &[u32],
    cells: &[MapCell],
    images: &[Option<RgbImage>],
) -> Result<Layer, String> {
    let colour = |i: usize, lon: f64, lat: f64| {
        let c = *index.get(i)? as usize;
        let img = images.get(c)?.as_ref()?;
        let f = &cells.get(c)?.footprint;
        let u = ((lon - f.west).rem_euclid(360.0) / f.width_deg()).clamp(0.0, 0.999_999);
        let v = ((f.north - lat) / (f.north - f.south)).clamp(0.0, 0.999_999);
        let p = img.get_pixel(
            (u * f64::from(img.width())) as u32,
            (v * f64::from(img.height())) as u32,
        );
        Some([p[0], p[1], p[2], 255])
    };
    // As sharp as the images are (up to 64 tile pixels a grid pixel).
    let side = images
        .iter()
        .flatten()
        .map(RgbImage::width)
        .max()
        .unwrap_or(1);
    let detail = f64::from(side.min(64));
    let tiles = pyramid(grid, detail, &colour)?;
    Ok(Layer {
        name: "imagery".into(),
        folder: "imagery".into(),
        tiles,
        range: None,
        zmax: zoom_levels(grid, detail).1,
    })
}

/// The viewer: Leaflet over the layers (the imagery, if any, as the base; each score layer as
/// an overlay, the first shown), fitted to the grid's bounds, with a legend per score layer.
pub fn viewer_html(title: &str, grid: &Grid, layers: &[Layer], basemap: Option<&str>) -> String {
    let east = grid.west + grid.px * f64::from(grid.width);
    let south = grid.north - grid.py * f64::from(grid.height);
    let cfg = serde_json::json!({
        "title": title,
        "bounds": [[south, grid.west], [grid.north, east]],
        "basemap": basemap,
        "layers": layers.iter().map(|l| serde_json::json!({
            "name": l.name, "folder": l.folder, "zmax": l.zmax,
            "range": l.range.map(|(a, b)| [a, b]),
        })).collect::<Vec<_>>(),
    });
    // JSON inside a <script>: "</" would end it.
    let cfg = cfg.to_string().replace("</", "<\\/");
    VIEWER
        .replace("/*CONFIG*/null", &cfg)
        .replace("<!--TITLE-->", &html_escape(title))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The viewer page; `/*CONFIG*/null` is replaced by the layers' JSON.
const VIEWER: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title><!--TITLE--></title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="leaflet.css">
<script src="leaflet.js"></script>
<style>
html, body, #map { height: 100%; margin: 0; background: #222; }
.legend { background: rgba(255,255,255,0.9); padding: 6px 8px; font: 12px sans-serif; }
.legend .bar { width: 160px; height: 10px; margin: 4px 0;
  background: linear-gradient(to right, #440154, #3b528b, #21908d, #5dc963, #fde725); }
</style></head>
<body><div id="map"></div>
<script>
const CONFIG = /*CONFIG*/null;
const map = L.map('map');
map.fitBounds(CONFIG.bounds);
const tiles = (l) => L.tileLayer(l.folder + '/{z}/{x}/{y}.png',
  { maxNativeZoom: l.zmax, maxZoom: 22, bounds: CONFIG.bounds });
const bases = {}, overlays = {};
if (CONFIG.basemap) { bases['basemap'] = L.tileLayer(CONFIG.basemap, { maxZoom: 22 }); }
let first = null;
for (const l of CONFIG.layers) {
  const layer = tiles(l);
  if (l.range === null) { bases[l.name] = layer; continue; }
  layer.setOpacity(0.75);
  overlays[l.name] = layer;
  if (first === null) { first = l; layer.addTo(map); }
}
const base = Object.values(bases)[0];
if (base) { base.addTo(map); if (first) { overlays[first.name].bringToFront(); } }
L.control.layers(bases, overlays, { collapsed: false }).addTo(map);
L.control.scale().addTo(map);
if (first) {
  const legend = L.control({ position: 'bottomright' });
  legend.onAdd = () => {
    const d = L.DomUtil.create('div', 'legend');
    const t = document.createElement('div'); t.textContent = first.name; d.appendChild(t);
    const bar = document.createElement('div'); bar.className = 'bar'; d.appendChild(bar);
    const r = document.createElement('div');
    r.textContent = 'cos ' + first.range[0].toFixed(3) + ' .. ' + first.range[1].toFixed(3);
    d.appendChild(r);
    return d;
  };
  legend.addTo(map);
}
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramids_stay_bounded_and_cover_the_grid() {
        let grid = Grid {
            width: 100,
            height: 50,
            west: 6.5,
            north: 46.6,
            px: 0.001,
            py: 0.001,
        };
        let (zmin, zmax) = zoom_levels(&grid, 1.0);
        // 0.001 degrees: 360 / (256 x 2^11) = 0.00069 <= 0.001 < 0.00137.
        assert_eq!((zmin, zmax), (6, 11));
        assert_eq!(zoom_levels(&grid, 4.0).1, 13);
        // The deepest level holds the grid: its corners fall in the tiles listed.
        let r = tile_range(&grid, zmax);
        let tiles: Vec<_> = r.tiles().collect();
        assert!(!tiles.is_empty() && tiles.len() as u64 == r.count());
        // A continent of tiny pixels: deep levels dropped.
        let huge = Grid {
            width: 40_000,
            height: 20_000,
            west: -20.0,
            north: 60.0,
            px: 0.002,
            py: 0.002,
        };
        let (lo, hi) = zoom_levels(&huge, 1.0);
        let n: u64 = (lo..=hi).map(|z| tile_range(&huge, z).count()).sum();
        assert!(n <= MAX_TILES && hi < 10, "{lo}..{hi}: {n}");
        // Across the antimeridian the columns wrap.
        let am = Grid {
            width: 20,
            height: 10,
            west: 179.9,
            north: 1.0,
            px: 0.01,
            py: 0.01,
        };
        let xs: Vec<u32> = tile_range(&am, 8).tiles().map(|t| t.0).collect();
        assert!(xs.contains(&255) && xs.contains(&0), "{xs:?}");
    }

    #[test]
    fn pixel_centres_invert_the_tile_grid() {
        let (lon, lat) = pixel_lon_lat(0, 0, 0, 128, 128);
        assert!(lon.abs() < 0.8 && lat.abs() < 0.8);
        let n = 1u64 << 10;
        let y = merc_y(46.5, n);
        let (_, lat) = pixel_lon_lat(10, 0, y as u32, 0, ((y.fract()) * 256.0) as u32);
        assert!((lat - 46.5).abs() < 0.01, "{lat}");
    }
}
