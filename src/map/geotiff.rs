//! Score rasters as Cloud-Optimized GeoTIFF: float32 bands (one per map panel) on a regular
//! lon/lat grid, EPSG:4326, NaN where no tile lies, deflate-compressed 256 x 256 tiles and
//! internal overviews (each half the size of the one before, down to one tile), laid out as
//! COG readers expect: every image file directory first (full resolution, then the
//! overviews), then the tile data from the smallest overview to the full image; GDAL's
//! structural metadata after the header says so. Classic
//! little-endian TIFF (files up to 4 GiB; [`MAX_RASTER_PIXELS`] keeps them well below).
//!
//! Tags written (TIFF 6.0 and GeoTIFF 1.1): NewSubfileType, ImageWidth/Length,
//! BitsPerSample 32, Compression 8 (zlib), Photometric 1, SamplesPerPixel, Planar 1,
//! TileWidth/Length 256, TileOffsets/ByteCounts, ExtraSamples (bands past the first),
//! SampleFormat 3 (IEEE float); on the full image ModelPixelScale, ModelTiepoint (the
//! upper-left corner of the upper-left pixel), GeoKeyDirectory (GTModelType geographic,
//! RasterType PixelIsArea, GeographicType 4326) and GDAL_METADATA (each band's
//! description: its prompt); GDAL_NODATA `nan` on every image.

use std::io::Write;

use super::grid::Grid;

/// The most pixels (all bands together) one raster holds: 256 Mi f32, 1 GiB.
pub const MAX_RASTER_PIXELS: u64 = 1 << 28;

/// Side of a tile, pixels.
const TILE: u32 = 256;

/// A float32 raster on a lon/lat grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    /// Where its pixels are.
    pub grid: Grid,
    /// One band per entry: its name (the band description) and `width * height` values,
    /// row-major from the north-west corner, NaN for no data.
    pub bands: Vec<(String, Vec<f32>)>,
}

impl Raster {
    /// The value of band `b` at `(col, row)`.
    #[cfg(test)]
    pub(crate) fn get(&self, b: usize, col: u32, row: u32) -> Option<f32> {
        let (_, v) = self.bands.get(b)?;
        if col >= self.grid.width || row >= self.grid.height {
            return None;
        }
        v.get(row as usize * self.grid.width as usize + col as usize)
            .copied()
    }
}

/// One image of the file: the full raster or an overview.
struct Level {
    width: u32,
    height: u32,
    /// Interleaved samples (`bands` per pixel), row-major.
    data: Vec<f32>,
}

/// Encodes `r` as a COG (see the module docs).
pub fn encode_cog(r: &Raster) -> Result<Vec<u8>, String> {
    let bands = r.bands.len();
    if bands == 0 || r.grid.width == 0 || r.grid.height == 0 {
        return Err("an empty raster".into());
    }
    if bands > 1024 {
        return Err(format!("{bands} bands; at most 1024"));
    }
    let pixels = u64::from(r.grid.width) * u64::from(r.grid.height) * bands as u64;
    if pixels > MAX_RASTER_PIXELS {
        return Err(format!(
            "a raster of {} x {} px x {bands} bands is more than {MAX_RASTER_PIXELS} values",
            r.grid.width, r.grid.height
        ));
    }
    let n = r.grid.width as usize * r.grid.height as usize;
    if let Some((name, _)) = r.bands.iter().find(|(_, v)| v.len() != n) {
        return Err(format!("band '{name}' does not hold {n} values"));
    }
    if !(r.grid.px > 0.0 && r.grid.py > 0.0 && r.grid.px.is_finite() && r.grid.py.is_finite()) {
        return Err(format!(
            "pixel size {} x {} is not positive",
            r.grid.px, r.grid.py
        ));
    }
    let mut data = vec![0f32; n * bands];
    for (b, (_, v)) in r.bands.iter().enumerate() {
        for (i, x) in v.iter().enumerate() {
            data[i * bands + b] = *x;
        }
    }
    let mut levels = vec![Level {
        width: r.grid.width,
        height: r.grid.height,
        data,
    }];
    while let Some(last) = levels.last() {
        if last.width <= TILE && last.height <= TILE {
            break;
        }
        let next = halve(last, bands);
        levels.push(next);
    }
    // Compress every tile of every level.
    let tiles: Vec<Vec<Vec<u8>>> = levels
        .iter()
        .map(|l| compress_level(l, bands))
        .collect::<Result<_, _>>()?;
    // Lay out: header, the IFDs (each followed by its out-of-line values), then the data,
    // smallest overview first.
    let ifd_sizes: Vec<usize> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| ifd(r, l, i, bands, &[], &[], 0, 0).map(|v| v.len()))
        .collect::<Result<_, _>>()?;
    let ghost = ghost_area();
    let mut at = 8 + ghost.len();
    let mut ifd_at = Vec::new();
    for s in &ifd_sizes {
        ifd_at.push(at);
        at += s;
    }
    let mut offsets: Vec<Vec<u32>> = vec![Vec::new(); levels.len()];
    for i in (0..levels.len()).rev() {
        for t in &tiles[i] {
            // Each tile: its size (4 bytes), its data, its last 4 bytes again.
            offsets[i].push(u32::try_from(at + 4).map_err(|_| "the raster passes 4 GiB")?);
            at += t.len() + 8;
        }
    }
    u32::try_from(at).map_err(|_| "the raster passes 4 GiB")?;
    let mut out = Vec::with_capacity(at);
    out.extend_from_slice(b"II");
    out.extend_from_slice(&42u16.to_le_bytes());
    out.extend_from_slice(&(8 + ghost.len() as u32).to_le_bytes());
    out.extend_from_slice(&ghost);
    for (i, l) in levels.iter().enumerate() {
        let counts: Vec<u32> = tiles[i].iter().map(|t| t.len() as u32).collect();
        let next = ifd_at.get(i + 1).copied().unwrap_or(0) as u32;
        let bytes = ifd(r, l, i, bands, &offsets[i], &counts, ifd_at[i], next)?;
        out.extend_from_slice(&bytes);
    }
    for i in (0..levels.len()).rev() {
        for t in &tiles[i] {
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(t);
            out.extend_from_slice(&t[t.len().saturating_sub(4)..]);
        }
    }
    debug_assert_eq!(out.len(), at);
    Ok(out)
}

/// GDAL's "ghost area" between the header and the first IFD, which tells a reader the
/// layout is a COG's: IFDs before data, tiles in row-major order, each tile's byte count
/// in the 4 bytes before it and its last 4 bytes repeated after it (so that a reader
/// fetching a range gets the next tile's size with it).
fn ghost_area() -> Vec<u8> {
    let rest = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n\
                BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ";
    format!(
        "GDAL_STRUCTURAL_METADATA_SIZE={:06} bytes\n{rest}",
        rest.len()
    )
    .into_bytes()
}

/// The next overview: each pixel the mean of the (up to four) non-NaN pixels it covers.
fn halve(l: &Level, bands: usize) -> Level {
    let (w, h) = (l.width.div_ceil(2), l.height.div_ceil(2));
    let mut data = vec![f32::NAN; w as usize * h as usize * bands];
    for y in 0..h {
        for x in 0..w {
            for b in 0..bands {
                let (mut sum, mut n) = (0f64, 0u32);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (sx, sy) = (2 * x + dx, 2 * y + dy);
                    if sx < l.width && sy < l.height {
                        let v = l.data[(sy as usize * l.width as usize + sx as usize) * bands + b];
                        if !v.is_nan() {
                            sum += f64::from(v);
                            n += 1;
                        }
                    }
                }
                if n > 0 {
                    data[(y as usize * w as usize + x as usize) * bands + b] =
                        (sum / f64::from(n)) as f32;
                }
            }
        }
    }
    Level {
        width: w,
        height: h,
        data,
    }
}

/// The level's tiles, row by row, each zlib-compressed; edges padded with NaN.
fn compress_level(l: &Level, bands: usize) -> Result<Vec<Vec<u8>>, String> {
    let (across, down) = (l.width.div_ceil(TILE), l.height.div_ceil(TILE));
    let mut out = Vec::with_capacity((across * down) as usize);
    let mut buf = Vec::with_capacity((TILE * TILE) as usize * bands * 4);
    for ty in 0..down {
        for tx in 0..across {
            buf.clear();
            for y in ty * TILE..(ty + 1) * TILE {
                for x in tx * TILE..(tx + 1) * TILE {
                    for b in 0..bands {
                        let v = if x < l.width && y < l.height {
                            l.data[(y as usize * l.width as usize + x as usize) * bands + b]
                        } else {
                            f32::NAN
                        };
                        buf.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
            z.write_all(&buf).map_err(|e| e.to_string())?;
            out.push(z.finish().map_err(|e| e.to_string())?);
        }
    }
    Ok(out)
}

/// A tag's values.
enum Val {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Double(Vec<f64>),
    Ascii(String),
}

impl Val {
    fn kind_count_bytes(&self) -> (u16, u32, Vec<u8>) {
        match self {
            Val::Short(v) => (
                3,
                v.len() as u32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Val::Long(v) => (
                4,
                v.len() as u32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Val::Double(v) => (
                12,
                v.len() as u32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Val::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (2, b.len() as u32, b)
            }
        }
    }
}

/// The IFD of level `i` at file offset `at` (its out-of-line values right after it).
#[allow(clippy::too_many_arguments)]
fn ifd(
    r: &Raster,
    l: &Level,
    i: usize,
    bands: usize,
    offsets: &[u32],
    counts: &[u32],
    at: usize,
    next: u32,
) -> Result<Vec<u8>, String> {
    let ntiles = (l.width.div_ceil(TILE) * l.height.div_ceil(TILE)) as usize;
    // While sizing, the offsets are not known yet: placeholders of the right length.
    let offsets = if offsets.is_empty() {
        vec![0; ntiles]
    } else {
        offsets.to_vec()
    };
    let counts = if counts.is_empty() {
        vec![0; ntiles]
    } else {
        counts.to_vec()
    };
    let nb = bands as u16;
    let mut tags: Vec<(u16, Val)> = vec![
        (254, Val::Long(vec![u32::from(i > 0)])),
        (256, Val::Long(vec![l.width])),
        (257, Val::Long(vec![l.height])),
        (258, Val::Short(vec![32; bands])),
        (259, Val::Short(vec![8])),
        (262, Val::Short(vec![1])),
        (277, Val::Short(vec![nb])),
        (284, Val::Short(vec![1])),
        (322, Val::Long(vec![TILE])),
        (323, Val::Long(vec![TILE])),
        (324, Val::Long(offsets)),
        (325, Val::Long(counts)),
    ];
    if bands > 1 {
        tags.push((338, Val::Short(vec![0; bands - 1])));
    }
    tags.push((339, Val::Short(vec![3; bands])));
    if i == 0 {
        tags.push((33550, Val::Double(vec![r.grid.px, r.grid.py, 0.0])));
        tags.push((
            33922,
            Val::Double(vec![0.0, 0.0, 0.0, r.grid.west, r.grid.north, 0.0]),
        ));
        // Version 1.1.0; geographic model, pixels are areas, WGS 84 (EPSG:4326).
        tags.push((
            34735,
            Val::Short(vec![
                1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326,
            ]),
        ));
        tags.push((42112, Val::Ascii(gdal_metadata(r))));
    }
    tags.push((42113, Val::Ascii("nan".into())));
    let head = 2 + tags.len() * 12 + 4;
    let mut extra: Vec<u8> = Vec::new();
    let mut out = Vec::with_capacity(head);
    out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    for (tag, v) in &tags {
        let (kind, count, bytes) = v.kind_count_bytes();
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        if bytes.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..bytes.len()].copy_from_slice(&bytes);
            out.extend_from_slice(&inline);
        } else {
            // Out-of-line values start on a word boundary.
            if extra.len() % 2 == 1 {
                extra.push(0);
            }
            let off =
                u32::try_from(at + head + extra.len()).map_err(|_| "the raster passes 4 GiB")?;
            out.extend_from_slice(&off.to_le_bytes());
            extra.extend_from_slice(&bytes);
        }
    }
    out.extend_from_slice(&next.to_le_bytes());
    out.extend_from_slice(&extra);
    if out.len() % 2 == 1 {
        out.push(0);
    }
    Ok(out)
}

/// GDAL's metadata XML: each band's description.
fn gdal_metadata(r: &Raster) -> String {
    let mut s = String::from("<GDALMetadata>");
    for (b, (name, _)) in r.bands.iter().enumerate() {
        s.push_str(&format!(
            "<Item name=\"DESCRIPTION\" sample=\"{b}\" role=\"description\">{}</Item>",
            xml_text(name)
        ));
    }
    s.push_str("</GDALMetadata>");
    s
}

/// `s` as the text of a GDAL metadata item: escaped twice, as GDAL writes it (it escapes
/// the value, then the XML tree, and unescapes both on reading: `&` is `&amp;amp;`).
fn xml_text(s: &str) -> String {
    xml_escape(&xml_escape(s))
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            // XML 1.0 has no place for other control characters: written as a space.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The ESRI `.prj` text of EPSG:4326 (WGS 84, degrees), the CRS of world files and rasters.
pub const WGS84_PRJ: &str = "GEOGCS[\"GCS_WGS_1984\",DATUM[\"D_WGS_1984\",SPHEROID[\"WGS_1984\",\
6378137.0,298.257223563]],PRIMEM[\"Greenwich\",0.0],UNIT[\"Degree\",0.0174532925199433]]";

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back what the writer wrote with the `tiff` crate (a reader it did not write).
    #[test]
    fn the_tiff_crate_reads_it_back() {
        let (w, h) = (300u32, 270u32);
        let v: Vec<f32> = (0..w * h)
            .map(|i| if i % 7 == 0 { f32::NAN } else { i as f32 * 0.5 })
            .collect();
        let r = Raster {
            grid: Grid {
                width: w,
                height: h,
                west: 6.5,
                north: 46.6,
                px: 0.001,
                py: 0.001,
            },
            bands: vec![
                ("a <prompt> & more".into(), v.clone()),
                ("b".into(), vec![1.0; (w * h) as usize]),
            ],
        };
        let bytes = encode_cog(&r).unwrap();
        let mut d = tiff::decoder::Decoder::new(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(d.dimensions().unwrap(), (w, h));
        let img = match d.read_image().unwrap() {
            tiff::decoder::DecodingResult::F32(x) => x,
            _ => panic!("not f32"),
        };
        for i in [0usize, 1, 7, 299, 300, 80_999] {
            let (a, b) = (img[i * 2], v[i]);
            assert!(a == b || (a.is_nan() && b.is_nan()), "{i}: {a} vs {b}");
            assert_eq!(img[i * 2 + 1], 1.0);
        }
        // An overview follows: 150 x 135.
        assert!(d.more_images());
        d.next_image().unwrap();
        assert_eq!(d.dimensions().unwrap(), (150, 135));
        assert!(!d.more_images());
    }

    #[test]
    fn bad_rasters_are_refused() {
        let r = |w: u32, h: u32, n: usize| Raster {
            grid: Grid {
                width: w,
                height: h,
                west: 0.0,
                north: 0.0,
                px: 1.0,
                py: 1.0,
            },
            bands: vec![("x".into(), vec![0.0; n])],
        };
        assert!(encode_cog(&r(0, 1, 0)).is_err());
        assert!(encode_cog(&r(2, 2, 3))
            .unwrap_err()
            .contains("does not hold 4"));
        assert!(encode_cog(&r(1 << 15, 1 << 14, 0))
            .unwrap_err()
            .contains("more than"));
    }
}
