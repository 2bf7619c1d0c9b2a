//! Web Mercator tiles (the XYZ / Bing quadkey scheme) as shard regions.
//!
//! A tile at level `n` is one of `2^n x 2^n` squares of the Web Mercator plane; its quadkey
//! is `n` digits 0..3, one per level, and names its ancestors by prefix. Points north of
//! 85.0511° or south of -85.0511° (outside the Mercator square) belong to the top or bottom
//! row of tiles, whose regions therefore reach the poles.

use sat2cap::BBox;

/// The deepest level accepted (Bing Maps' deepest, ~2 cm tiles at the equator).
pub const MAX_LEVEL: u8 = 23;

/// Latitude bound of the Web Mercator square, degrees.
const MERCATOR_LAT: f64 = 85.051_128_779_806_6;

/// One tile: column `x`, row `y` (0 at the north) at `level`; always a tile that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    level: u8,
    x: u32,
    y: u32,
}

impl Tile {
    /// The tile at column `x`, row `y` of `level` (`None` past [`MAX_LEVEL`] or outside
    /// the `2^level x 2^level` grid).
    pub fn new(level: u8, x: u32, y: u32) -> Option<Tile> {
        let n = 1u32
            .checked_shl(u32::from(level))
            .filter(|_| level <= MAX_LEVEL)?;
        (x < n && y < n).then_some(Tile { level, x, y })
    }

    /// Zoom level, `0..=MAX_LEVEL`.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Column, `0..2^level`, west to east.
    pub fn x(&self) -> u32 {
        self.x
    }

    /// Row, `0..2^level`, north to south.
    pub fn y(&self) -> u32 {
        self.y
    }

    /// The tile holding a location (`lat` in -90..=90, `lon` in -180..=180; 180 wraps to
    /// the first column's west edge like -180).
    pub fn containing(lat: f64, lon: f64, level: u8) -> Tile {
        let level = level.min(MAX_LEVEL);
        let n = f64::from(1u32 << level);
        let last = (1u32 << level) - 1;
        let fx = ((lon + 180.0) / 360.0).rem_euclid(1.0) * n;
        let lat = lat.clamp(-MERCATOR_LAT, MERCATOR_LAT).to_radians();
        let merc = (lat.tan() + 1.0 / lat.cos()).ln();
        let fy = (1.0 - merc / std::f64::consts::PI) / 2.0 * n;
        // Both are finite and >= 0 (up to rounding) for valid input; `as` saturates.
        let cell = |f: f64| (f.max(0.0) as u32).min(last);
        Tile {
            level,
            x: cell(fx),
            y: cell(fy),
        }
    }

    /// The tile's quadkey: `level` digits, the first one the level-1 ancestor.
    pub fn quadkey(&self) -> String {
        (1..=self.level)
            .rev()
            .map(|bit| {
                let mask = 1u32 << (bit - 1);
                let d = u8::from(self.x & mask != 0) + 2 * u8::from(self.y & mask != 0);
                char::from(b'0' + d)
            })
            .collect()
    }

    /// The tile named by a quadkey (`None` when it has a digit other than 0..3 or is longer
    /// than [`MAX_LEVEL`]).
    pub fn from_quadkey(key: &str) -> Option<Tile> {
        if key.len() > usize::from(MAX_LEVEL) {
            return None;
        }
        let (mut x, mut y) = (0u32, 0u32);
        for c in key.bytes() {
            let d = c.checked_sub(b'0').filter(|d| *d < 4)?;
            x = (x << 1) | u32::from(d & 1);
            y = (y << 1) | u32::from(d >> 1);
        }
        Some(Tile {
            level: key.len() as u8,
            x,
            y,
        })
    }

    /// A key that sorts tiles of one level in quadkey order (the Z-order curve).
    pub fn z_order(&self) -> u64 {
        let spread = |v: u32| {
            let mut v = u64::from(v);
            v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
            v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
            v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
            v = (v | (v << 2)) & 0x3333_3333_3333_3333;
            (v | (v << 1)) & 0x5555_5555_5555_5555
        };
        spread(self.x) | (spread(self.y) << 1)
    }

    /// The region the tile's rows lie in, lon/lat degrees: the Mercator square cut into
    /// tiles, with the top row reaching 90° and the bottom row -90°.
    pub fn region(&self) -> BBox {
        let n = f64::from(1u32 << self.level);
        let lon = |x: u32| f64::from(x) / n * 360.0 - 180.0;
        let lat = |y: u32| {
            let merc = std::f64::consts::PI * (1.0 - 2.0 * f64::from(y) / n);
            merc.sinh().atan().to_degrees()
        };
        let last = (1u32 << self.level) - 1;
        let north = if self.y == 0 { 90.0 } else { lat(self.y) };
        let south = if self.y == last {
            -90.0
        } else {
            lat(self.y + 1)
        };
        BBox::new(lon(self.x), south, lon(self.x + 1), north).expect("tile edges are valid lon/lat")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadkeys_round_trip_and_match_bing() {
        // Bing Maps Tile System's example: tile (3, 5) at level 3 is "213".
        let t = Tile {
            level: 3,
            x: 3,
            y: 5,
        };
        assert_eq!(t.quadkey(), "213");
        assert_eq!(Tile::from_quadkey("213"), Some(t));
        assert_eq!(
            Tile::from_quadkey(""),
            Some(Tile {
                level: 0,
                x: 0,
                y: 0
            })
        );
        assert_eq!(Tile::from_quadkey("4"), None);
    }

    #[test]
    fn every_location_lies_in_its_tiles_region() {
        for level in [0u8, 1, 3, 7, 12, 23] {
            for &(lat, lon) in &[
                (0.0, 0.0),
                (90.0, 180.0),
                (-90.0, -180.0),
                (85.06, 179.999),
                (-85.2, -0.0),
                (46.52, 6.63),
                (-33.9, 151.2),
                (64.1, -21.9),
            ] {
                let t = Tile::containing(lat, lon, level);
                let p = sat2cap::Point::new(lat, lon).unwrap();
                assert!(
                    t.region().contains(p),
                    "{lat},{lon} not in {t:?} {:?}",
                    t.region()
                );
            }
        }
    }

    #[test]
    fn z_order_sorts_like_quadkeys() {
        let mut tiles: Vec<Tile> = (0..16)
            .flat_map(|x| (0..16).map(move |y| Tile { level: 4, x, y }))
            .collect();
        tiles.sort_by_key(Tile::z_order);
        let keys: Vec<String> = tiles.iter().map(Tile::quadkey).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
