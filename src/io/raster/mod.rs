//! GeoTIFF and Cloud-Optimized GeoTIFF scenes, read a band of rows at a time: the full
//! resolution image (the first image that is not an overview or a mask), striped or tiled,
//! pixel- or band-interleaved, any compression the `tiff` crate decodes (none, LZW,
//! deflate, PackBits, JPEG), 8/16/32-bit integer and 32/64-bit float samples; its
//! georeferencing and CRS ([`georef`]); its nodata value (`GDAL_NODATA`). Memory stays
//! bounded by the rows asked for plus one row of chunks, whatever the scene's size.

pub mod georef;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use tiff::tags::Tag;

pub use georef::{Crs, GeoTransform};

/// The largest chunk (strip or tile) decoded, in bytes.
pub const MAX_CHUNK_BYTES: usize = 256 << 20;

/// The most bands a scene may have.
pub const MAX_BANDS: u16 = 1024;

/// An open scene.
pub struct Scene {
    path: PathBuf,
    decoder: Decoder<BufReader<File>>,
    /// Columns and rows.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Samples per pixel.
    pub bands: u16,
    /// Bits per sample.
    pub bits: u16,
    /// Whether the samples are floating point.
    pub float: bool,
    /// The nodata value, if the file names one.
    pub nodata: Option<f64>,
    /// Pixel -> model coordinates.
    pub transform: GeoTransform,
    /// The CRS.
    pub crs: Crs,
    chunk: (u32, u32),
    across: u32,
    per_plane: u32,
    planar: bool,
    /// Decoded chunk rows kept for the next read: (chunk row, samples of each chunk).
    cache: Vec<(u32, Vec<Vec<f32>>)>,
}

impl std::fmt::Debug for Scene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} x {} px, {} bands of {} bits, {:?})",
            self.path.display(),
            self.width,
            self.height,
            self.bands,
            self.bits,
            self.crs
        )
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Scene {
    /// Opens `path` and reads its header, georeferencing and CRS (no pixels yet).
    pub fn open(path: &Path) -> Result<Scene, String> {
        let meta = std::fs::metadata(path).map_err(err)?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        let file = File::open(path).map_err(err)?;
        let mut limits = Limits::default();
        limits.decoding_buffer_size = MAX_CHUNK_BYTES;
        limits.intermediate_buffer_size = MAX_CHUNK_BYTES;
        limits.ifd_value_size = 64 << 20;
        let mut d = guard(|| Decoder::new(BufReader::new(file)).map(|d| d.with_limits(limits)))?
            .map_err(|e| format!("not a TIFF file ({e})"))?;
        // The first image that is neither a reduced-resolution overview nor a mask.
        let mut skipped = 0;
        loop {
            let kind = find_u64(&mut d, Tag::NewSubfileType)?.unwrap_or(0);
            if kind & 0b101 == 0 {
                break;
            }
            if !d.more_images() {
                return Err("every image in it is an overview or a mask".into());
            }
            guard(|| d.next_image())?.map_err(err)?;
            skipped += 1;
        }
        let (width, height) = d.dimensions().map_err(err)?;
        if width == 0 || height == 0 {
            return Err("the image is empty".into());
        }
        let bands = find_u64(&mut d, Tag::SamplesPerPixel)?.unwrap_or(1);
        let bands = u16::try_from(bands)
            .ok()
            .filter(|b| (1..=MAX_BANDS).contains(b))
            .ok_or_else(|| format!("{bands} samples per pixel"))?;
        let bits = d
            .find_tag(Tag::BitsPerSample)
            .map_err(err)?
            .map(|v| v.into_u16_vec().map_err(err))
            .transpose()?
            .unwrap_or_else(|| vec![1]);
        if bits.iter().any(|b| *b != bits[0]) {
            return Err(format!("bands of different sample sizes ({bits:?} bits)"));
        }
        let bits = bits[0];
        let formats = d
            .find_tag(Tag::SampleFormat)
            .map_err(|e| format!("tag SampleFormat: {e}"))?
            .map(|v| {
                v.into_u64_vec()
                    .map_err(|e| format!("tag SampleFormat: {e}"))
            })
            .transpose()?
            .unwrap_or_else(|| vec![1]);
        let format = formats.first().copied().unwrap_or(1);
        if formats.iter().any(|f| *f != format) {
            return Err(format!("bands of different sample formats ({formats:?})"));
        }
        let float = format == 3;
        match (format, bits) {
            (1 | 2, 8 | 16 | 32) | (3, 32 | 64) => {}
            _ => {
                return Err(format!(
                    "{bits}-bit {} samples (read: 8, 16, 32-bit integers, 32 and 64-bit floats)",
                    match format {
                        1 => "unsigned",
                        2 => "signed",
                        3 => "float",
                        _ => "complex or unknown",
                    }
                ))
            }
        }
        let planar = find_u64(&mut d, Tag::PlanarConfiguration)?.unwrap_or(1) == 2;
        let chunk = guard(|| d.chunk_dimensions())?;
        if chunk.0 == 0 || chunk.1 == 0 {
            return Err("chunks of zero size".into());
        }
        let spp = if planar { 1 } else { u64::from(bands) };
        let chunk_bytes = u64::from(chunk.0) * u64::from(chunk.1) * spp * u64::from(bits / 8);
        if chunk_bytes > MAX_CHUNK_BYTES as u64 {
            return Err(format!(
                "its {} of {} x {} px hold {} MiB each (at most {} MiB): re-tile it \
                 (gdal_translate -co TILED=YES)",
                if matches!(d.get_chunk_type(), ChunkType::Tile) {
                    "tiles"
                } else {
                    "strips"
                },
                chunk.0,
                chunk.1,
                chunk_bytes >> 20,
                MAX_CHUNK_BYTES >> 20
            ));
        }
        let across = width.div_ceil(chunk.0);
        let down = height.div_ceil(chunk.1);
        let per_plane = across.checked_mul(down).ok_or("too many chunks")?;
        let chunks = match d.get_chunk_type() {
            ChunkType::Tile => d.tile_count().map_err(err)?,
            ChunkType::Strip => d.strip_count().map_err(err)?,
        };
        let want = if planar {
            u64::from(per_plane) * u64::from(bands)
        } else {
            u64::from(per_plane)
        };
        if u64::from(chunks) != want {
            return Err(format!(
                "{chunks} chunks where {want} are needed: the file is damaged"
            ));
        }
        let nodata = match d.find_tag(Tag::GdalNodata).map_err(err)? {
            None => None,
            Some(v) => {
                let s = v.into_string().map_err(err)?;
                let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                Some(
                    s.parse::<f64>()
                        .map_err(|_| format!("GDAL_NODATA '{s}' is not a number"))?,
                )
            }
        };
        let f64s =
            |d: &mut Decoder<BufReader<File>>, tag: u16| -> Result<Option<Vec<f64>>, String> {
                let named = |e: tiff::TiffError| format!("tag {tag}: {e}");
                d.find_tag(Tag::Unknown(tag))
                    .map_err(named)?
                    .map(|v| v.into_f64_vec().map_err(named))
                    .transpose()
            };
        let keys = match d
            .find_tag(Tag::Unknown(georef::GEO_KEY_DIRECTORY))
            .map_err(err)?
        {
            Some(v) => georef::geokeys(&v.into_u16_vec().map_err(err)?)?,
            None => return Err("no GeoKey directory: the file has no CRS (not a GeoTIFF)".into()),
        };
        let transform = georef::geotransform(
            f64s(&mut d, georef::MODEL_PIXEL_SCALE)?,
            f64s(&mut d, georef::MODEL_TIEPOINT)?,
            f64s(&mut d, georef::MODEL_TRANSFORMATION)?,
            keys.pixel_is_point,
        )?;
        let crs = Crs::from_keys(&keys)?;
        let _ = skipped;
        Ok(Scene {
            path: path.to_path_buf(),
            decoder: d,
            width,
            height,
            bands,
            bits,
            float,
            nodata,
            transform,
            crs,
            chunk,
            across,
            per_plane,
            planar,
            cache: Vec::new(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples of `bands` (0-based) for rows `r0..r0 + rows`, every column: row-major,
    /// `bands.len()` samples per pixel, as f32.
    pub fn read_rows(&mut self, r0: u32, rows: u32, bands: &[u16]) -> Result<Vec<f32>, String> {
        if bands.iter().any(|&b| b >= self.bands) {
            return Err(format!("a band past the scene's {} bands", self.bands));
        }
        let r1 = r0
            .checked_add(rows)
            .filter(|&r| r <= self.height)
            .ok_or("rows past the scene")?;
        let nb = bands.len();
        let w = self.width as usize;
        let mut out = vec![0f32; rows as usize * w * nb];
        let (cw, ch) = self.chunk;
        let (first, last) = (r0 / ch, (r1.max(r0 + 1) - 1) / ch);
        self.cache.retain(|(cr, _)| *cr >= first);
        for cr in first..=last {
            if !self.cache.iter().any(|(c, _)| *c == cr) {
                let row = self.decode_chunk_row(cr)?;
                self.cache.push((cr, row));
            }
            let Some((_, chunks)) = self.cache.iter().find(|(c, _)| *c == cr) else {
                return Err("chunk row not decoded".into());
            };
            let spp = if self.planar {
                1
            } else {
                usize::from(self.bands)
            };
            for (ca, samples) in chunks.iter().enumerate() {
                // Planes follow one another in a planar chunk row: `across` chunks a plane.
                let (plane, ca) = (ca / self.across as usize, ca % self.across as usize);
                let x0 = ca * cw as usize;
                let cols = (cw as usize).min(w - x0);
                for y in (cr * ch).max(r0)..((cr + 1) * ch).min(r1) {
                    let ly = (y - cr * ch) as usize;
                    let oy = (y - r0) as usize;
                    for (bi, &b) in bands.iter().enumerate() {
                        let (src_band, plane_ok) = if self.planar {
                            (0, usize::from(b) == plane)
                        } else {
                            (usize::from(b), true)
                        };
                        if !plane_ok {
                            continue;
                        }
                        for x in 0..cols {
                            let s = samples
                                .get((ly * cw as usize + x) * spp + src_band)
                                .copied();
                            out[(oy * w + x0 + x) * nb + bi] = s.unwrap_or(f32::NAN);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Decodes chunk row `cr` (every plane of it when planar), each chunk padded to the full
    /// chunk size.
    fn decode_chunk_row(&mut self, cr: u32) -> Result<Vec<Vec<f32>>, String> {
        let planes = if self.planar {
            u32::from(self.bands)
        } else {
            1
        };
        let mut row = Vec::with_capacity((self.across * planes) as usize);
        for plane in 0..planes {
            for ca in 0..self.across {
                let index = plane * self.per_plane + cr * self.across + ca;
                let d = &mut self.decoder;
                let decoded =
                    guard(|| d.read_chunk(index))?.map_err(|e| format!("chunk {index}: {e}"))?;
                let (dw, dh) = guard(|| d.chunk_data_dimensions(index))?;
                row.push(pad(
                    to_f32(decoded),
                    dw,
                    dh,
                    self.chunk.0,
                    if self.planar { 1 } else { self.bands },
                ));
            }
        }
        Ok(row)
    }

    /// Whether the pixel of `samples` (one per band read) is nodata: NaN, or every sample
    /// equal to the nodata value.
    pub fn is_nodata(&self, samples: &[f32]) -> bool {
        samples.iter().any(|s| s.is_nan())
            || self.nodata.is_some_and(|n| {
                samples
                    .iter()
                    .all(|&s| f64::from(s) == n || (s as f64 - n).abs() < 1e-9 * n.abs().max(1.0))
            })
    }
}

/// A chunk's samples as f32, rows padded to `cw` pixels (the decoder returns only the data
/// part of an edge chunk).
fn pad(v: Vec<f32>, dw: u32, dh: u32, cw: u32, spp: u16) -> Vec<f32> {
    if dw == cw {
        return v;
    }
    let (dw, cw, spp) = (dw as usize, cw as usize, usize::from(spp));
    let mut out = vec![f32::NAN; cw * dh as usize * spp];
    for (y, src) in v.chunks(dw * spp).enumerate().take(dh as usize) {
        out[y * cw * spp..y * cw * spp + src.len()].copy_from_slice(src);
    }
    out
}

fn to_f32(r: DecodingResult) -> Vec<f32> {
    match r {
        DecodingResult::U8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::F16(v) => v.into_iter().map(f32::from).collect(),
    }
}

fn find_u64(d: &mut Decoder<BufReader<File>>, tag: Tag) -> Result<Option<u64>, String> {
    d.find_tag_unsigned::<u64>(tag)
        .map_err(|e| format!("tag {tag:?}: {e}"))
}

/// Runs a call into the `tiff` crate, turning a panic on a malformed file (which the
/// crate should not raise, and once did for band-interleaved tiles) into an error.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "the TIFF reader failed on a malformed file".to_string())
}
