//! Image decoding and the preprocessing pipelines.
//!
//! * Ground-level photos, [`GroundResize::Squash`] (the default): the whole photo resized to
//!   224 x 224 with PIL bilinear, whatever its shape (torchvision `Resize((224, 224))` on a
//!   PIL image, as Sat2Cap's evaluation data path computes its ground targets and galleries,
//!   mvrl/Sat2Cap `sat2cap/multidata.py` `valid_img_transforms`; its `CenterCrop(224)` after
//!   the resize changes nothing), `/ 255`, CLIP mean/std.
//! * Ground-level photos, [`GroundResize::ClipCrop`] (CLIP's own, transformers
//!   `CLIPImageProcessor`, PIL path): the shortest side resized to 224 with PIL bicubic (the
//!   long side to `int(224 * long / short)`), centre-cropped to 224 (`top = (h - 224) // 2`),
//!   `/ 255`, CLIP mean/std.
//! * Overhead tiles: the whole tile resized to 224 x 224 with PIL bilinear (Sat2Cap's
//!   `valid_imo_transforms`), `/ 255`, overhead mean/std. [`OverheadPreprocess::crop`]
//!   optionally takes a centred square of at most that side first; it never pads, so a tile
//!   smaller than the crop (a 256 px XYZ tile) is resized whole, never put in a black frame.
//!
//! Resampling is a port of Pillow's `ImagingResample` (src/libImaging/Resample.c, Pillow
//! 10-12): separable, horizontal pass first, support scaled by the downscale factor
//! (antialiasing), coefficients in 22-bit fixed point, each pass rounded to 8 bits.

use std::io::Cursor;
use std::ops::Range;

/// CLIP's normalisation mean (RGB).
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's normalisation std (RGB).
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
/// Sat2Cap's overhead normalisation mean (RGB).
pub const OVERHEAD_MEAN: [f32; 3] = [0.3670, 0.3827, 0.3338];
/// Sat2Cap's overhead normalisation std (RGB).
pub const OVERHEAD_STD: [f32; 3] = [0.2209, 0.1975, 0.1988];

/// Largest width or height [`Image::decode`] accepts, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Most bytes [`Image::decode`] lets a decoder allocate for the decoded pixels (256 MiB:
/// a 9,400 x 9,400 RGB or 8,100 x 8,100 RGBA image at 8 bits per channel). Checked from the
/// header before any pixel buffer is allocated, so a small file declaring a huge image
/// (a decompression bomb) is refused without allocating it.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// A decoded 8-bit RGB image (width and height >= 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// Why an image cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The bytes could not be decoded.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// Zero width or height, or a buffer of the wrong length.
    #[error("bad image geometry: {0}")]
    Geometry(String),
    /// The image is larger than [`MAX_IMAGE_SIDE`] or needs more than [`MAX_IMAGE_BYTES`].
    #[error("image too large: {0} (limits: {MAX_IMAGE_SIDE} px a side, {mib} MiB decoded)", mib = MAX_IMAGE_BYTES >> 20)]
    TooLarge(String),
}

/// The decoder limits [`Image::decode`] sets.
pub fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    limits
}

fn decode_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(l) => ImageError::TooLarge(l.to_string()),
        e => ImageError::Decode(e.to_string()),
    }
}

impl Image {
    /// Decodes JPEG / PNG / WebP / TIFF bytes to 8-bit RGB (grey replicated, alpha dropped as
    /// PIL's `convert("RGB")` does, 16-bit scaled to 8-bit). Images over the
    /// limits ([`MAX_IMAGE_SIDE`], [`MAX_IMAGE_BYTES`]) are refused ([`ImageError::TooLarge`]) before their pixels are
    /// allocated.
    pub fn decode(bytes: &[u8]) -> Result<Self, ImageError> {
        let mut reader = image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ImageError::Decode(e.to_string()))?;
        reader.limits(decode_limits());
        let img = reader.decode().map_err(decode_error)?;
        let (w, h) = (img.width(), img.height());
        // The RGB copy below is not counted by the decoder's allocation limit.
        if w > MAX_IMAGE_SIDE
            || h > MAX_IMAGE_SIDE
            || u64::from(w) * u64::from(h) * 3 > MAX_IMAGE_BYTES
        {
            return Err(ImageError::TooLarge(format!("{w}x{h}")));
        }
        let rgb = img.to_rgb8();
        let (w, h) = rgb.dimensions();
        Self::from_rgb8(w as usize, h as usize, rgb.into_raw())
    }

    /// Wraps interleaved RGB bytes (`width * height * 3` of them).
    pub fn from_rgb8(width: usize, height: usize, rgb: Vec<u8>) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Geometry(format!("{width}x{height}")));
        }
        let expected = width
            .checked_mul(height)
            .and_then(|p| p.checked_mul(3))
            .ok_or_else(|| ImageError::Geometry(format!("{width}x{height} overflows")))?;
        if rgb.len() != expected {
            return Err(ImageError::Geometry(format!(
                "{width}x{height} needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        Ok(Self { width, height, rgb })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Interleaved RGB bytes.
    pub fn as_rgb8(&self) -> &[u8] {
        &self.rgb
    }

    /// Centre crop to `cw x ch` at offsets `(left, top)` (may be negative: zero padding).
    fn crop(&self, left: i64, top: i64, cw: usize, ch: usize) -> Image {
        let mut out = vec![0u8; cw * ch * 3];
        for y in 0..ch {
            let sy = top + y as i64;
            if sy < 0 || sy >= self.height as i64 {
                continue;
            }
            for x in 0..cw {
                let sx = left + x as i64;
                if sx < 0 || sx >= self.width as i64 {
                    continue;
                }
                let s = (sy as usize * self.width + sx as usize) * 3;
                let d = (y * cw + x) * 3;
                out[d..d + 3].copy_from_slice(&self.rgb[s..s + 3]);
            }
        }
        Image {
            width: cw,
            height: ch,
            rgb: out,
        }
    }
}

/// A PIL resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `Image.BILINEAR` (triangle, support 1).
    Bilinear,
    /// `Image.BICUBIC` (Keys cubic, a = -0.5, support 2).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the output indices in `range`:
/// per output index, the first input index and the fixed-point weights.
fn coeffs(
    in_size: usize,
    out_size: usize,
    range: Range<usize>,
    filter: Filter,
) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;
    range
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin);
            let mut k: Vec<f64> = (0..n)
                .map(|x| filter.eval((x as f64 + xmin as f64 - center + 0.5) * ss))
                .collect();
            let ww: f64 = k.iter().sum();
            if ww != 0.0 {
                for w in &mut k {
                    *w /= ww;
                }
            }
            let one = f64::from(1u32 << PRECISION_BITS);
            let ki = k
                .iter()
                .map(|&w| {
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            (xmin, ki)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Pillow-compatible resize of an 8-bit RGB image (`Image.resize((w, h), filter)`).
pub fn resize(img: &Image, out_w: usize, out_h: usize, filter: Filter) -> Image {
    resize_window(img, out_w, out_h, 0..out_w, 0..out_h, filter)
}

/// The window `xs x ys` of `resize(img, out_w, out_h, filter)`, computed without the rest
/// (so a 1 x 10000 image resized to 224 x 2240000 and cropped costs a 224 x 224 output).
/// Ranges are clamped to the output size.
pub fn resize_window(
    img: &Image,
    out_w: usize,
    out_h: usize,
    xs: Range<usize>,
    ys: Range<usize>,
    filter: Filter,
) -> Image {
    let xs = xs.start.min(out_w)..xs.end.min(out_w);
    let ys = ys.start.min(out_h)..ys.end.min(out_h);
    let (w, h) = (img.width, img.height);
    // Horizontal pass (Pillow does it first), on every input row, only the window columns.
    let cw = xs.len();
    let mut mid = vec![0u8; cw * h * 3];
    if out_w != w {
        let cs = coeffs(w, out_w, xs.clone(), filter);
        for y in 0..h {
            let row = &img.rgb[y * w * 3..(y + 1) * w * 3];
            for (x, (xmin, k)) in cs.iter().enumerate() {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &wt) in k.iter().enumerate() {
                        ss += i64::from(row[(xmin + i) * 3 + c]) * i64::from(wt);
                    }
                    mid[(y * cw + x) * 3 + c] = clip8(ss);
                }
            }
        }
    } else {
        for y in 0..h {
            let src = &img.rgb[(y * w + xs.start) * 3..(y * w + xs.end) * 3];
            mid[y * cw * 3..(y + 1) * cw * 3].copy_from_slice(src);
        }
    }
    // Vertical pass, only the window rows.
    let ch = ys.len();
    let mut out = vec![0u8; cw * ch * 3];
    if out_h != h {
        let cs = coeffs(h, out_h, ys.clone(), filter);
        for (y, (ymin, k)) in cs.iter().enumerate() {
            for x in 0..cw {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &wt) in k.iter().enumerate() {
                        ss += i64::from(mid[((ymin + i) * cw + x) * 3 + c]) * i64::from(wt);
                    }
                    out[(y * cw + x) * 3 + c] = clip8(ss);
                }
            }
        }
    } else {
        out.copy_from_slice(&mid[ys.start * cw * 3..ys.end * cw * 3]);
    }
    Image {
        width: cw,
        height: ch,
        rgb: out,
    }
}

/// `[3, H, W]` planar, `(v / 255 - mean) / std`.
pub fn normalise(img: &Image, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let n = img.width * img.height;
    let mut out = vec![0f32; 3 * n];
    for p in 0..n {
        for c in 0..3 {
            let v = f32::from(img.rgb[p * 3 + c]) * (1.0 / 255.0);
            out[c * n + p] = (v - mean[c]) / std[c];
        }
    }
    out
}

/// How a ground-level photo becomes a `size x size` image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroundResize {
    /// The whole photo resized to `size x size` (PIL bilinear): how Sat2Cap computed its
    /// ground-level targets and galleries. The default.
    #[default]
    Squash,
    /// CLIP's own: the shortest side resized to `size` (PIL bicubic), then the centre
    /// `size x size` cropped (transformers `CLIPImageProcessor`).
    ClipCrop,
}

impl GroundResize {
    /// The name recorded with the embeddings and taken by `--ground-resize`.
    pub fn name(self) -> &'static str {
        match self {
            GroundResize::Squash => "squash",
            GroundResize::ClipCrop => "clip-crop",
        }
    }
}

/// Ground-level preprocessing: `[3, size, size]` normalised floats (CLIP mean/std).
pub fn ground_pixels(img: &Image, size: usize, resize_mode: GroundResize) -> Vec<f32> {
    normalise(&ground_image(img, size, resize_mode), CLIP_MEAN, CLIP_STD)
}

/// The 8-bit `size x size` image that [`ground_pixels`] normalises.
pub fn ground_image(img: &Image, size: usize, resize_mode: GroundResize) -> Image {
    match resize_mode {
        GroundResize::Squash => resize(img, size, size, Filter::Bilinear),
        GroundResize::ClipCrop => clip_crop(img, size),
    }
}

/// CLIP's resize + centre crop.
fn clip_crop(img: &Image, size: usize) -> Image {
    // transformers get_resize_output_image_size(default_to_square=False)
    let (w, h) = (img.width, img.height);
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((size as f64) * (long as f64) / (short as f64)) as usize;
    let (nw, nh) = if w <= h {
        (size, new_long.max(1))
    } else {
        (new_long.max(1), size)
    };
    // transformers image_transforms.center_crop: top = (h - crop) // 2 (floor). Both sides
    // are >= size after the resize, so the crop is a window of the resized image.
    let top = nh.saturating_sub(size) / 2;
    let left = nw.saturating_sub(size) / 2;
    let win = resize_window(
        img,
        nw,
        nh,
        left..left + size,
        top..top + size,
        Filter::Bicubic,
    );
    if win.width == size && win.height == size {
        win
    } else {
        // Only for size 0-like degenerate configs; pad as transformers does.
        win.crop(0, 0, size, size)
    }
}

/// Settings of the overhead pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct OverheadPreprocess {
    /// A centred square of at most this side taken before resizing (`None`, the default:
    /// the whole tile, as Sat2Cap's evaluation path). Never pads: a tile smaller than it
    /// keeps all of its side.
    pub crop: Option<usize>,
    /// Output side (224).
    pub size: usize,
    /// Resampling filter (bilinear: torchvision `Resize` default).
    pub filter: Filter,
    /// Normalisation mean.
    pub mean: [f32; 3],
    /// Normalisation std.
    pub std: [f32; 3],
}

impl Default for OverheadPreprocess {
    fn default() -> Self {
        Self {
            crop: None,
            size: 224,
            filter: Filter::Bilinear,
            mean: OVERHEAD_MEAN,
            std: OVERHEAD_STD,
        }
    }
}

impl OverheadPreprocess {
    /// The name recorded with the embeddings: `resize224`, or `crop800+resize224`.
    pub fn name(&self) -> String {
        match self.crop {
            Some(c) if c > 0 => format!("crop{c}+resize{}", self.size),
            _ => format!("resize{}", self.size),
        }
    }
}

/// Python's `round` (half to even), as torchvision's `int(round(x))`.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2 * (x / 2.0).round() as i64
    } else {
        r as i64
    }
}

/// Overhead preprocessing: `[3, size, size]` normalised floats.
pub fn overhead_pixels(img: &Image, p: &OverheadPreprocess) -> Vec<f32> {
    normalise(&overhead_image(img, p), p.mean, p.std)
}

/// The 8-bit `size x size` image that [`overhead_pixels`] normalises (crop + resize).
pub fn overhead_image(img: &Image, p: &OverheadPreprocess) -> Image {
    let cropped;
    let src = match p.crop {
        Some(c) if c > 0 => {
            // torchvision center_crop offsets, crop_top = int(round((h - c) / 2.0)), on a
            // window that never leaves the tile: a side shorter than `c` is kept whole.
            let (cw, ch) = (c.min(img.width), c.min(img.height));
            let left = round_half_even((img.width - cw) as f64 / 2.0);
            let top = round_half_even((img.height - ch) as f64 / 2.0);
            cropped = img.crop(left, top, cw, ch);
            &cropped
        }
        _ => img,
    };
    resize(src, p.size, p.size, p.filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::fuzz::encoders::png_declaring as png_bomb;

    /// Regression (fuzz target `image_preprocess`): `Image::decode` ran with the image
    /// crate's default limits (no side limit, 512 MiB), so a few hundred bytes declaring a
    /// 12,000 x 12,000 RGB image made the decoder allocate 432 MB before failing.
    #[test]
    fn decompression_bombs_are_refused_before_allocating() {
        for (w, h) in [
            (12_000, 12_000),
            (100_000, 100_000),
            (MAX_IMAGE_SIDE + 1, 1),
            (1, u32::MAX),
        ] {
            let bytes = png_bomb(w, h);
            assert!(bytes.len() < 100);
            match Image::decode(&bytes) {
                Err(ImageError::TooLarge(_)) => {}
                other => panic!("{w}x{h}: {other:?}"),
            }
        }
        let e = Image::decode(&png_bomb(12_000, 12_000)).unwrap_err();
        assert!(
            e.to_string().starts_with("image too large: ")
                && e.to_string()
                    .ends_with("(limits: 16384 px a side, 256 MiB decoded)"),
            "{e}"
        );
    }

    #[test]
    fn images_within_the_limits_decode() {
        let img = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        let d = Image::decode(&bytes).unwrap();
        assert_eq!((d.width(), d.height()), (5, 3));
        assert_eq!(&d.as_rgb8()[..3], &[0, 0, 7]);
        // A header inside the limits over a truncated stream is a decode error.
        assert!(matches!(
            Image::decode(&png_bomb(64, 64)),
            Err(ImageError::Decode(_))
        ));
    }
}
