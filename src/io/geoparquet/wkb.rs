//! Well-known binary (OGC Simple Features / ISO 13249-3), the geometry encoding of
//! GeoParquet: written for points, box polygons and box multipolygons (2-D, little-endian);
//! read for every geometry type, of which points, polygons and multipolygons become a place.
//!
//! Reading accepts either byte order (per geometry, as WKB allows), ISO Z / M / ZM codes
//! (1000 + t, 2000 + t, 3000 + t) and PostGIS EWKB flags (Z, M, SRID); the extra ordinates
//! are skipped. Every count is checked against the bytes left before it is used, so no
//! input allocates or loops more than its length allows.

/// WKB geometry type codes (2-D).
const POINT: u32 = 1;
const POLYGON: u32 = 3;
const MULTIPOLYGON: u32 = 6;

/// Deepest nesting of collections read (a GeometryCollection inside another ...).
const MAX_DEPTH: u32 = 32;

/// Appends a 2-D point.
pub fn write_point(out: &mut Vec<u8>, lon: f64, lat: f64) {
    header(out, POINT);
    coord(out, lon, lat);
}

/// Appends the polygon of the box `[w, s, e, n]` (`w < e`): one ring, counterclockwise
/// (south-west, south-east, north-east, north-west, closed), as RFC 7946 and GeoParquet's
/// `orientation` ask.
pub fn write_box(out: &mut Vec<u8>, w: f64, s: f64, e: f64, n: f64) {
    header(out, POLYGON);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&5u32.to_le_bytes());
    for (x, y) in [(w, s), (e, s), (e, n), (w, n), (w, s)] {
        coord(out, x, y);
    }
}

/// Appends the box `[w, s, e, n]` that crosses the antimeridian (`w > e`) as a multipolygon
/// of its two parts cut at ±180, `[w, 180]` then `[-180, e]` (RFC 7946 §3.1.9).
pub fn write_cut_box(out: &mut Vec<u8>, w: f64, s: f64, e: f64, n: f64) {
    header(out, MULTIPOLYGON);
    out.extend_from_slice(&2u32.to_le_bytes());
    write_box(out, w, s, 180.0, n);
    write_box(out, -180.0, s, e, n);
}

fn header(out: &mut Vec<u8>, kind: u32) {
    out.push(1);
    out.extend_from_slice(&kind.to_le_bytes());
}

fn coord(out: &mut Vec<u8>, x: f64, y: f64) {
    out.extend_from_slice(&x.to_le_bytes());
    out.extend_from_slice(&y.to_le_bytes());
}

/// What a WKB value holds, as far as a place is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A point `(x, y)`; `None` for `POINT EMPTY` (NaN coordinates).
    Point(Option<(f64, f64)>),
    /// A polygon or multipolygon: the bounding box of its vertices, `[xmin, ymin, xmax, ymax]`
    /// (`None` when it has no vertices), and `x` ranges taken with negative longitudes
    /// moved up by 360 (`[xmin, xmax]`), for shapes that cross the antimeridian.
    Area {
        /// Whether it is a MultiPolygon.
        multi: bool,
        /// `[xmin, ymin, xmax, ymax]` of every vertex.
        bbox: Option<[f64; 4]>,
        /// `[xmin, xmax]` with every negative `x` plus 360.
        shifted: Option<[f64; 2]>,
    },
    /// Any other type, by its name (LineString, MultiPoint, GeometryCollection, ...).
    Other(&'static str),
}

impl Shape {
    /// The type's name as GeoParquet's `geometry_types` writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Shape::Point(_) => "Point",
            Shape::Area { multi: false, .. } => "Polygon",
            Shape::Area { multi: true, .. } => "MultiPolygon",
            Shape::Other(n) => n,
        }
    }

    /// The centre of an area's bounding box: across the antimeridian (the `x` range with
    /// negative longitudes moved up by 360) when that range is narrower than the plain one,
    /// as it is for a box cut at ±180; the longitude is then brought back into [-180, 180].
    pub fn area_centre(&self) -> Option<(f64, f64)> {
        let Shape::Area {
            bbox: Some(b),
            shifted: Some(sh),
            ..
        } = *self
        else {
            return None;
        };
        // Halves first: no sum of two large coordinates overflows; clamped, because halving
        // rounds subnormal coordinates and their sum can then fall just outside the two.
        let mid = |a: f64, b: f64| (a / 2.0 + b / 2.0).clamp(a.min(b), a.max(b));
        let y = mid(b[1], b[3]);
        if sh[1] - sh[0] < b[2] - b[0] {
            let x = mid(sh[0], sh[1]);
            Some((if x > 180.0 { x - 360.0 } else { x }, y))
        } else {
            Some((mid(b[0], b[2]), y))
        }
    }
}

/// Reads one WKB geometry that fills `bytes` exactly.
pub fn read(bytes: &[u8]) -> Result<Shape, String> {
    let mut r = Reader {
        bytes,
        pos: 0,
        bbox: None,
        shifted: None,
    };
    let shape = r.geometry(0, None)?;
    if r.pos != bytes.len() {
        return Err(format!(
            "{} bytes after the end of the {} (at byte {})",
            bytes.len() - r.pos,
            shape.name(),
            r.pos
        ));
    }
    Ok(shape)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    bbox: Option<[f64; 4]>,
    shifted: Option<[f64; 2]>,
}

/// Dimensions of a geometry: ordinates per point.
#[derive(Clone, Copy, PartialEq)]
struct Dims(usize);

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(format!(
                "truncated: {what} needs {n} bytes at byte {}, {} left",
                self.pos,
                self.bytes.len() - self.pos
            )),
        }
    }

    fn u32(&mut self, le: bool, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    fn f64(&mut self, le: bool) -> Result<f64, String> {
        let b = self.take(8, "a coordinate")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(if le {
            f64::from_le_bytes(a)
        } else {
            f64::from_be_bytes(a)
        })
    }

    /// A count of items of at least `min_bytes` each, checked against the bytes left.
    fn count(&mut self, le: bool, min_bytes: usize, what: &str) -> Result<usize, String> {
        let at = self.pos;
        let n = self.u32(le, what)? as usize;
        let left = self.bytes.len() - self.pos;
        if n.saturating_mul(min_bytes) > left {
            return Err(format!(
                "truncated: {what} count {n} at byte {at} needs at least {} bytes, {left} left",
                n.saturating_mul(min_bytes)
            ));
        }
        Ok(n)
    }

    /// Reads a geometry header and body; `parent` is the type code a multi-geometry's
    /// members must have.
    fn geometry(&mut self, depth: u32, parent: Option<u32>) -> Result<Shape, String> {
        if depth > MAX_DEPTH {
            return Err(format!("collections nested deeper than {MAX_DEPTH}"));
        }
        let at = self.pos;
        let le = match self.take(1, "the byte order")?[0] {
            0 => false,
            1 => true,
            b => return Err(format!("byte order {b} at byte {at} (must be 0 or 1)")),
        };
        let code = self.u32(le, "the geometry type")?;
        // EWKB flags (PostGIS), then ISO's thousands.
        let (mut z, mut m) = (code & 0x8000_0000 != 0, code & 0x4000_0000 != 0);
        if code & 0x2000_0000 != 0 {
            self.u32(le, "the SRID")?;
        }
        let iso = code & 0x0fff_ffff;
        let base = iso % 1000;
        match iso / 1000 {
            0 => {}
            1 => z = true,
            2 => m = true,
            3 => (z, m) = (true, true),
            _ => return Err(format!("unknown geometry type code {code} at byte {at}")),
        }
        let dims = Dims(2 + usize::from(z) + usize::from(m));
        if let Some(p) = parent {
            if base != p {
                return Err(format!(
                    "a {} holds a {} at byte {at}",
                    type_name(p + 3),
                    type_name(base)
                ));
            }
        }
        match base {
            POINT => {
                let (x, y) = self.point(le, dims)?;
                if x.is_nan() && y.is_nan() {
                    return Ok(Shape::Point(None));
                }
                if !x.is_finite() || !y.is_finite() {
                    return Err(format!("point ({x}, {y}) is not finite"));
                }
                Ok(Shape::Point(Some((x, y))))
            }
            POLYGON => {
                self.rings(le, dims)?;
                Ok(self.area(false))
            }
            MULTIPOLYGON => {
                let n = self.count(le, 9, "polygon")?;
                for _ in 0..n {
                    self.geometry(depth + 1, Some(POLYGON))?;
                }
                Ok(self.area(true))
            }
            2 | 4 | 5 | 7 => {
                self.skip_other(le, base, dims, depth)?;
                Ok(Shape::Other(type_name(base)))
            }
            _ => Err(format!("unknown geometry type code {code} at byte {at}")),
        }
    }

    fn area(&self, multi: bool) -> Shape {
        Shape::Area {
            multi,
            bbox: self.bbox,
            shifted: self.shifted,
        }
    }

    fn point(&mut self, le: bool, dims: Dims) -> Result<(f64, f64), String> {
        let x = self.f64(le)?;
        let y = self.f64(le)?;
        for _ in 2..dims.0 {
            self.f64(le)?;
        }
        Ok((x, y))
    }

    /// A polygon's rings; every vertex widens the bounding boxes.
    fn rings(&mut self, le: bool, dims: Dims) -> Result<(), String> {
        let rings = self.count(le, 4, "ring")?;
        for _ in 0..rings {
            let at = self.pos;
            let n = self.count(le, 8 * dims.0, "point")?;
            for _ in 0..n {
                let (x, y) = self.point(le, dims)?;
                if !x.is_finite() || !y.is_finite() {
                    return Err(format!(
                        "a vertex ({x}, {y}) of the ring at byte {at} is not finite"
                    ));
                }
                let b = self.bbox.get_or_insert([x, y, x, y]);
                *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
                let sx = if x < 0.0 { x + 360.0 } else { x };
                let s = self.shifted.get_or_insert([sx, sx]);
                *s = [s[0].min(sx), s[1].max(sx)];
            }
        }
        Ok(())
    }

    /// Skips a LineString (2), MultiPoint (4), MultiLineString (5) or GeometryCollection (7).
    fn skip_other(&mut self, le: bool, base: u32, dims: Dims, depth: u32) -> Result<(), String> {
        match base {
            2 => {
                let n = self.count(le, 8 * dims.0, "point")?;
                self.take(n * 8 * dims.0, "the points")?;
            }
            4 | 5 => {
                let n = self.count(le, 9, "member")?;
                for _ in 0..n {
                    self.geometry(depth + 1, Some(base - 3))?;
                }
            }
            _ => {
                let n = self.count(le, 9, "member")?;
                for _ in 0..n {
                    self.geometry(depth + 1, None)?;
                }
            }
        }
        Ok(())
    }
}

fn type_name(base: u32) -> &'static str {
    match base {
        1 => "Point",
        2 => "LineString",
        3 => "Polygon",
        4 => "MultiPoint",
        5 => "MultiLineString",
        6 => "MultiPolygon",
        7 => "GeometryCollection",
        _ => "geometry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_shapes_read_back() {
        let mut b = Vec::new();
        write_point(&mut b, 6.5, 46.25);
        assert_eq!(b.len(), 21);
        assert_eq!(read(&b), Ok(Shape::Point(Some((6.5, 46.25)))));
        b.clear();
        write_box(&mut b, 1.0, 2.0, 3.0, 4.0);
        let s = read(&b).unwrap();
        assert_eq!(s.name(), "Polygon");
        assert_eq!(s.area_centre(), Some((2.0, 3.0)));
        b.clear();
        write_cut_box(&mut b, 179.0, 0.0, -179.0, 1.0);
        let s = read(&b).unwrap();
        assert_eq!(s.name(), "MultiPolygon");
        let (x, y) = s.area_centre().unwrap();
        assert_eq!((x, y), (180.0, 0.5));
        // Truncated and padded.
        assert!(read(&b[..b.len() - 1]).unwrap_err().contains("truncated"));
        b.push(0);
        assert!(read(&b).unwrap_err().contains("1 bytes after the end"));
    }

    #[test]
    fn big_endian_z_ewkb_and_others() {
        // Big-endian POINT Z (1001).
        let mut b = vec![0u8];
        b.extend_from_slice(&1001u32.to_be_bytes());
        for v in [1.5f64, -2.0, 100.0] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(read(&b), Ok(Shape::Point(Some((1.5, -2.0)))));
        // EWKB point with SRID 4326.
        let mut b = vec![1u8];
        b.extend_from_slice(&(0x2000_0001u32).to_le_bytes());
        b.extend_from_slice(&4326u32.to_le_bytes());
        b.extend_from_slice(&3.0f64.to_le_bytes());
        b.extend_from_slice(&4.0f64.to_le_bytes());
        assert_eq!(read(&b), Ok(Shape::Point(Some((3.0, 4.0)))));
        // POINT EMPTY.
        let mut b = Vec::new();
        write_point(&mut b, f64::NAN, f64::NAN);
        assert_eq!(read(&b), Ok(Shape::Point(None)));
        // A LineString is read and named.
        let mut b = vec![1u8];
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        assert_eq!(read(&b), Ok(Shape::Other("LineString")));
        // A huge count is refused before anything is read.
        let mut b = vec![1u8];
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&b).unwrap_err().contains("ring count"));
        assert!(read(&[2]).unwrap_err().contains("byte order 2"));
        assert!(read(&[]).unwrap_err().contains("truncated"));
    }
}
