//! Procedural land-cover scenes. A smooth seeded noise field decides each tile's class
//! (water along one side, a town around the centre, fields and forest elsewhere); each class has
//! an overhead texture and a ground-level view.

use image::{Rgb, RgbImage};

use crate::geo::Point;

/// Land cover of a synthetic tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LandClass {
    /// Lake or sea.
    Water,
    /// Woodland.
    Forest,
    /// Farmland parcels.
    Fields,
    /// Buildings and roads.
    Town,
}

impl LandClass {
    /// All classes.
    pub const ALL: [LandClass; 4] = [
        LandClass::Water,
        LandClass::Forest,
        LandClass::Fields,
        LandClass::Town,
    ];

    /// A lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            LandClass::Water => "water",
            LandClass::Forest => "forest",
            LandClass::Fields => "fields",
            LandClass::Town => "town",
        }
    }
}

/// One tile of the synthetic region.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneTile {
    /// Row (north to south).
    pub row: u32,
    /// Column (west to east).
    pub col: u32,
    /// Centre of the tile.
    pub center: Point,
    /// Land cover.
    pub class: LandClass,
}

/// A grid of tiles centred on a real place.
#[derive(Debug, Clone)]
pub struct Region {
    /// Name of the place.
    pub name: String,
    /// Tiles, row-major from the north-west corner.
    pub tiles: Vec<SceneTile>,
    /// Tile size in degrees of latitude and longitude.
    pub tile_deg: f64,
    /// The seed everything derives from.
    pub seed: u64,
}

/// Lausanne, on the north shore of Lake Geneva: water to the south, town at the centre.
pub const LAUSANNE: (f64, f64) = (46.5197, 6.6323);

/// A 32-bit integer hash (for value noise), seeded.
fn hash(seed: u64, x: i64, y: i64) -> u32 {
    let mut h = seed
        ^ (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    (h >> 32) as u32
}

fn unit(seed: u64, x: i64, y: i64) -> f32 {
    hash(seed, x, y) as f32 / u32::MAX as f32
}

/// Smooth value noise in [0, 1] with cells of `scale` units.
fn noise(seed: u64, x: f32, y: f32, scale: f32) -> f32 {
    let (fx, fy) = (x / scale, y / scale);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - x0, fy - y0);
    let s = |t: f32| t * t * (3.0 - 2.0 * t);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let a = unit(seed, x0, y0) + (unit(seed, x0 + 1, y0) - unit(seed, x0, y0)) * s(tx);
    let b = unit(seed, x0, y0 + 1) + (unit(seed, x0 + 1, y0 + 1) - unit(seed, x0, y0 + 1)) * s(tx);
    a + (b - a) * s(ty)
}

impl Region {
    /// A `rows` x `cols` grid of `tile_deg`-degree tiles centred on `center`.
    pub fn new(
        name: &str,
        center: Point,
        rows: u32,
        cols: u32,
        tile_deg: f64,
        seed: u64,
    ) -> Region {
        let mut tiles = Vec::with_capacity((rows * cols) as usize);
        for r in 0..rows {
            for c in 0..cols {
                let lat = center.lat() + (f64::from(rows) / 2.0 - f64::from(r) - 0.5) * tile_deg;
                let lon = center.lon() + (f64::from(c) - f64::from(cols) / 2.0 + 0.5) * tile_deg;
                let lat = lat.clamp(-90.0, 90.0);
                // Normalised position: v = 0 north edge .. 1 south edge, u = 0 west .. 1 east.
                let u = (c as f32 + 0.5) / cols as f32;
                let v = (r as f32 + 0.5) / rows as f32;
                let shore = 0.72 + 0.12 * (noise(seed, u * 8.0, 0.0, 3.0) - 0.5);
                let d = ((u - 0.5).powi(2) + (v - 0.5).powi(2)).sqrt();
                let class = if v > shore {
                    LandClass::Water
                } else if d < 0.18 + 0.06 * noise(seed ^ 1, u * 10.0, v * 10.0, 2.0) {
                    LandClass::Town
                } else if noise(seed ^ 2, u * 10.0, v * 10.0, 3.0) > 0.5 {
                    LandClass::Forest
                } else {
                    LandClass::Fields
                };
                if let Ok(p) = Point::new(lat, lon) {
                    tiles.push(SceneTile {
                        row: r,
                        col: c,
                        center: p,
                        class,
                    });
                }
            }
        }
        Region {
            name: name.to_string(),
            tiles,
            tile_deg,
            seed,
        }
    }
}

fn shade(c: [f32; 3], k: f32) -> Rgb<u8> {
    Rgb(c.map(|v| (v * k).clamp(0.0, 255.0) as u8))
}

/// Renders the overhead view of a tile of `class`, `size` x `size` pixels.
pub fn render_overhead(class: LandClass, seed: u64, size: u32) -> RgbImage {
    let s = size as f32;
    RgbImage::from_fn(size, size, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let n = noise(seed, fx, fy, s / 16.0);
        let fine = noise(seed ^ 7, fx, fy, 2.5);
        match class {
            LandClass::Water => {
                let wave = ((fx * 0.35 + fy * 0.12 + n * 6.0).sin() * 0.5 + 0.5) * 0.15;
                shade([30.0, 70.0, 120.0], 0.85 + wave + 0.1 * n)
            }
            LandClass::Forest => {
                // Tree crowns: bright blobs with dark gaps.
                let crown = noise(seed ^ 3, fx, fy, 5.0);
                let k = if crown > 0.45 {
                    0.8 + 0.5 * crown
                } else {
                    0.45
                };
                shade([40.0, 85.0, 35.0], k * (0.9 + 0.2 * fine))
            }
            LandClass::Fields => {
                // Rectangular parcels, each a crop colour with rows.
                let (px, py) = ((fx / (s / 3.0)) as i64, (fy / (s / 4.0)) as i64);
                let crops = [
                    [150.0, 170.0, 70.0],
                    [200.0, 180.0, 90.0],
                    [110.0, 140.0, 60.0],
                    [150.0, 120.0, 80.0],
                ];
                let crop = crops[(hash(seed ^ 5, px, py) % 4) as usize];
                let rows = if (fx as u32 / 3).is_multiple_of(2) {
                    1.0
                } else {
                    0.88
                };
                let edge = fx % (s / 3.0) < 1.5 || fy % (s / 4.0) < 1.5;
                if edge {
                    shade([90.0, 80.0, 60.0], 1.0)
                } else {
                    shade(crop, rows * (0.92 + 0.16 * fine))
                }
            }
            LandClass::Town => {
                let block = s / 5.0;
                let road = fx % block < 3.0 || fy % block < 3.0;
                if road {
                    shade([120.0, 120.0, 120.0], 0.95 + 0.1 * fine)
                } else {
                    let (bx, by) = ((fx / block) as i64, (fy / block) as i64);
                    let roof = hash(seed ^ 9, bx, by);
                    let colour = if roof.is_multiple_of(3) {
                        [170.0, 80.0, 60.0]
                    } else {
                        [190.0, 185.0, 175.0]
                    };
                    shade(
                        colour,
                        0.8 + 0.3 * ((roof >> 8) % 100) as f32 / 100.0 + 0.1 * fine,
                    )
                }
            }
        }
    })
}

/// Renders a ground-level "photo" taken in a tile of `class`: sky above a horizon, the land
/// cover below it.
pub fn render_ground(class: LandClass, seed: u64, width: u32, height: u32) -> RgbImage {
    let horizon = height as f32 * (0.4 + 0.15 * unit(seed, 1, 1));
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let fine = noise(seed ^ 11, fx, fy, 3.0);
        if fy < horizon {
            let t = fy / horizon;
            match class {
                LandClass::Town
                    if noise(seed ^ 13, fx, 0.0, width as f32 / 6.0) > 0.4 + 0.6 * (1.0 - t) =>
                {
                    shade([150.0, 140.0, 130.0], 0.8 + 0.3 * fine)
                }
                LandClass::Forest if noise(seed ^ 17, fx, 0.0, 6.0) > 0.3 + 0.7 * (1.0 - t) => {
                    shade([35.0, 70.0, 30.0], 0.8 + 0.3 * fine)
                }
                _ => shade([120.0 + 60.0 * t, 170.0 + 40.0 * t, 235.0], 1.0),
            }
        } else {
            let d = (fy - horizon) / (height as f32 - horizon).max(1.0);
            match class {
                LandClass::Water => shade([40.0, 90.0, 140.0], 0.8 + 0.3 * fine + 0.2 * d),
                LandClass::Forest => shade([45.0, 80.0, 35.0], 0.6 + 0.5 * fine),
                LandClass::Fields => shade([170.0, 165.0, 80.0], 0.85 + 0.2 * fine),
                LandClass::Town => shade([110.0, 110.0, 115.0], 0.85 + 0.2 * fine),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_has_every_class_and_is_deterministic() {
        let c = Point::new(LAUSANNE.0, LAUSANNE.1).unwrap();
        let a = Region::new("Lausanne", c, 8, 8, 0.01, 7);
        let b = Region::new("Lausanne", c, 8, 8, 0.01, 7);
        assert_eq!(a.tiles, b.tiles);
        assert_eq!(a.tiles.len(), 64);
        for class in LandClass::ALL {
            assert!(
                a.tiles.iter().any(|t| t.class == class),
                "{class:?} missing"
            );
        }
        // The north-west tile is north and west of the south-east one.
        let (nw, se) = (&a.tiles[0], &a.tiles[63]);
        assert!(nw.center.lat() > se.center.lat() && nw.center.lon() < se.center.lon());
    }

    #[test]
    fn textures_differ_by_class() {
        let mean = |img: &RgbImage| {
            let mut m = [0f64; 3];
            for p in img.pixels() {
                for (acc, v) in m.iter_mut().zip(p.0) {
                    *acc += f64::from(v);
                }
            }
            m.map(|v| v / f64::from(img.width() * img.height()))
        };
        let water = mean(&render_overhead(LandClass::Water, 1, 64));
        let forest = mean(&render_overhead(LandClass::Forest, 1, 64));
        assert!(water[2] > water[1] && forest[1] > forest[2]);
        assert_eq!(
            render_ground(LandClass::Town, 3, 40, 30).dimensions(),
            (40, 30)
        );
    }
}
