//! Where a GeoTIFF's pixels are: the GeoTIFF 1.1 georeferencing tags (ModelPixelScale +
//! ModelTiepoint, or ModelTransformation), the GeoKey directory (model type, raster type,
//! the EPSG code of the CRS), and the CRS itself through `proj4rs` (its proj string from
//! the EPSG registry of `crs-definitions`), turning pixel positions into longitude and
//! latitude on WGS 84.

use proj4rs::proj::Proj;

/// GeoTIFF tag numbers.
pub(crate) const MODEL_PIXEL_SCALE: u16 = 33550;
pub(crate) const MODEL_TIEPOINT: u16 = 33922;
pub(crate) const MODEL_TRANSFORMATION: u16 = 34264;
pub(crate) const GEO_KEY_DIRECTORY: u16 = 34735;

/// GeoKeys read.
const GT_MODEL_TYPE: u16 = 1024;
const GT_RASTER_TYPE: u16 = 1025;
const GEOGRAPHIC_TYPE: u16 = 2048;
const PROJECTED_CS_TYPE: u16 = 3072;
/// The GeoKey value meaning "user-defined" (a CRS spelled out key by key, no code).
const USER_DEFINED: u16 = 32767;

/// Pixel -> model coordinates: `x = a + b*col + c*row`, `y = d + e*col + f*row` (GDAL's
/// geotransform order), for `(col, row)` at a pixel's outer corner (`(0, 0)` is the upper
/// left corner of the upper left pixel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoTransform(pub [f64; 6]);

impl GeoTransform {
    /// The model coordinates of pixel position `(col, row)`.
    pub fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        let g = &self.0;
        (
            g[0] + g[1] * col + g[2] * row,
            g[3] + g[4] * col + g[5] * row,
        )
    }

    /// Pixel size in model units: (width, height), both positive.
    pub fn pixel_size(&self) -> (f64, f64) {
        let g = &self.0;
        (g[1].hypot(g[4]), g[2].hypot(g[5]))
    }
}

/// The georeferencing of a scene from its tags (`None` where a tag is missing).
pub(crate) fn geotransform(
    scale: Option<Vec<f64>>,
    tiepoint: Option<Vec<f64>>,
    matrix: Option<Vec<f64>>,
    pixel_is_point: bool,
) -> Result<GeoTransform, String> {
    // PixelIsPoint: the tiepoint names a pixel's centre; shift to its corner.
    let half = if pixel_is_point { 0.5 } else { 0.0 };
    let g = if let Some(m) = matrix {
        if m.len() != 16 {
            return Err(format!(
                "ModelTransformation has {} values, not 16",
                m.len()
            ));
        }
        let (a, b, c, d, e, f) = (m[3], m[0], m[1], m[7], m[4], m[5]);
        [a - half * (b + c), b, c, d - half * (e + f), e, f]
    } else {
        let s = scale.ok_or(
            "no ModelPixelScale and no ModelTransformation: the file is not georeferenced",
        )?;
        let t = tiepoint
            .ok_or("a ModelPixelScale without a ModelTiepoint: the file is not georeferenced")?;
        if s.len() < 2 || t.len() < 6 {
            return Err("ModelPixelScale or ModelTiepoint too short".into());
        }
        if t.len() > 6 {
            return Err(format!(
                "{} tiepoints (a warped grid); give a file with one tiepoint and a pixel scale",
                t.len() / 6
            ));
        }
        let (sx, sy) = (s[0], s[1]);
        let (i, j, x, y) = (t[0], t[1], t[3], t[4]);
        [x - (i + half) * sx, sx, 0.0, y + (j + half) * sy, 0.0, -sy]
    };
    if !g.iter().all(|v| v.is_finite()) {
        return Err("the georeferencing holds a value that is not a finite number".into());
    }
    let gt = GeoTransform(g);
    let (w, h) = gt.pixel_size();
    if !(w > 0.0 && h > 0.0) {
        return Err("the pixel size is zero".into());
    }
    Ok(gt)
}

/// The GeoKeys that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GeoKeys {
    pub(crate) model_type: Option<u16>,
    pub(crate) pixel_is_point: bool,
    pub(crate) geographic: Option<u16>,
    pub(crate) projected: Option<u16>,
}

/// Reads the key directory (`[version, revision, minor, count, (key, location, count,
/// value) x count]`); keys whose value lives in another tag are not needed here.
pub(crate) fn geokeys(dir: &[u16]) -> Result<GeoKeys, String> {
    if dir.len() < 4 {
        return Err("the GeoKey directory is shorter than its header".into());
    }
    if dir[0] != 1 {
        return Err(format!(
            "GeoKey directory version {} (only 1 exists)",
            dir[0]
        ));
    }
    let n = usize::from(dir[3]);
    if dir.len() < 4 + 4 * n {
        return Err(format!(
            "the GeoKey directory promises {n} keys and holds fewer"
        ));
    }
    let mut k = GeoKeys::default();
    for e in dir[4..4 + 4 * n].chunks_exact(4) {
        let (key, location, value) = (e[0], e[1], e[3]);
        if location != 0 {
            continue;
        }
        match key {
            GT_MODEL_TYPE => k.model_type = Some(value),
            GT_RASTER_TYPE => k.pixel_is_point = value == 2,
            GEOGRAPHIC_TYPE => k.geographic = Some(value),
            PROJECTED_CS_TYPE => k.projected = Some(value),
            _ => {}
        }
    }
    Ok(k)
}

/// A scene's coordinate reference system.
pub struct Crs {
    /// Its EPSG code.
    pub epsg: u16,
    proj: Proj,
    wgs84: Proj,
    geographic: bool,
}

impl std::fmt::Debug for Crs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EPSG:{}", self.epsg)
    }
}

impl Crs {
    /// The CRS the keys name.
    pub(crate) fn from_keys(k: &GeoKeys) -> Result<Crs, String> {
        let code = match (k.model_type, k.projected, k.geographic) {
            (Some(1) | None, Some(p), _) => p,
            (Some(2) | None, None, Some(g)) => g,
            (Some(3), _, _) => return Err("a geocentric model (GTModelType 3) is not a map".into()),
            (Some(1), None, _) => {
                return Err("no CRS: a projected model without a ProjectedCSTypeGeoKey".into())
            }
            _ => return Err("no CRS in the GeoKeys (no ProjectedCSType or GeographicType)".into()),
        };
        if code == USER_DEFINED {
            return Err(
                "a user-defined CRS (GeoKey value 32767): only CRSs with an EPSG code are read \
                 (gdalwarp -t_srs EPSG:<code> makes one)"
                    .into(),
            );
        }
        Crs::epsg(code)
    }

    /// The CRS with EPSG code `code`.
    pub fn epsg(code: u16) -> Result<Crs, String> {
        let proj = Proj::from_epsg_code(code).map_err(|e| format!("EPSG:{code}: {e}"))?;
        let wgs84 = Proj::from_proj_string("+proj=longlat +datum=WGS84 +no_defs")
            .map_err(|e| format!("WGS 84: {e}"))?;
        Ok(Crs {
            epsg: code,
            geographic: proj.is_latlong(),
            proj,
            wgs84,
        })
    }

    /// Whether coordinates are degrees (a geographic CRS) rather than projected units.
    pub fn is_geographic(&self) -> bool {
        self.geographic
    }

    /// Model coordinates `(x, y)` (degrees for a geographic CRS, the CRS's unit otherwise)
    /// as `(lon, lat)` degrees on WGS 84.
    pub fn to_lon_lat(&self, x: f64, y: f64) -> Result<(f64, f64), String> {
        let mut p = if self.geographic {
            (x.to_radians(), y.to_radians(), 0.0)
        } else {
            (x, y, 0.0)
        };
        proj4rs::transform::transform(&self.proj, &self.wgs84, &mut p)
            .map_err(|e| format!("EPSG:{} ({x}, {y}) to lon/lat: {e}", self.epsg))?;
        let (lon, lat) = (p.0.to_degrees(), p.1.to_degrees());
        if !(lon.is_finite() && lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(format!("EPSG:{} ({x}, {y}) is not on the earth", self.epsg));
        }
        Ok((crate::geo::wrap_lon(lon), lat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_and_web_mercator_match_known_points() {
        // EPSG:32632 (UTM 32N): 500000 E, 5160715.121 N is 9 E, 46.6 N (gdaltransform).
        let utm = Crs::epsg(32632).unwrap();
        let (lon, lat) = utm.to_lon_lat(500_000.0, 5_160_715.121_163_89).unwrap();
        assert!(
            (lon - 9.0).abs() < 1e-9 && (lat - 46.6).abs() < 1e-9,
            "{lon} {lat}"
        );
        let (lon, lat) = utm
            .to_lon_lat(318_214.801_252_954, 5_154_554.559_415_26)
            .unwrap();
        assert!(
            (lon - 6.63).abs() < 1e-9 && (lat - 46.52).abs() < 1e-9,
            "{lon} {lat}"
        );
        let merc = Crs::epsg(3857).unwrap();
        let (lon, lat) = merc.to_lon_lat(20_037_508.342_789_244, 0.0).unwrap();
        assert!(
            (lon.abs() - 180.0).abs() < 1e-9 && lat.abs() < 1e-9,
            "{lon} {lat}"
        );
        let geo = Crs::epsg(4326).unwrap();
        assert!(geo.is_geographic());
        assert_eq!(geo.to_lon_lat(6.5, 46.5).unwrap(), (6.5, 46.5));
        // South UTM, an unknown code, a point off the earth.
        let (_, lat) = Crs::epsg(32733)
            .unwrap()
            .to_lon_lat(500_000.0, 10_000_000.0)
            .unwrap();
        assert!(lat.abs() < 1e-9);
        assert!(Crs::epsg(1).is_err());
        assert!(merc.to_lon_lat(f64::NAN, 0.0).is_err());
    }

    #[test]
    fn keys_and_transforms() {
        let k = geokeys(&[1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 2, 3072, 0, 1, 32632]).unwrap();
        assert_eq!(
            (k.model_type, k.projected, k.pixel_is_point),
            (Some(1), Some(32632), true)
        );
        assert!(geokeys(&[1, 1, 0, 5, 1024, 0, 1, 1]).is_err());
        let gt = geotransform(
            Some(vec![10.0, 10.0, 0.0]),
            Some(vec![0.0, 0.0, 0.0, 500_000.0, 5_000_000.0, 0.0]),
            None,
            false,
        )
        .unwrap();
        assert_eq!(gt.apply(1.0, 2.0), (500_010.0, 4_999_980.0));
        let pt = geotransform(
            Some(vec![10.0, 10.0, 0.0]),
            Some(vec![0.0, 0.0, 0.0, 500_000.0, 5_000_000.0, 0.0]),
            None,
            true,
        )
        .unwrap();
        assert_eq!(pt.apply(0.0, 0.0), (499_995.0, 5_000_005.0));
        assert!(geotransform(None, None, None, false)
            .unwrap_err()
            .contains("not georeferenced"));
        let user = GeoKeys {
            model_type: Some(1),
            projected: Some(USER_DEFINED),
            ..GeoKeys::default()
        };
        assert!(Crs::from_keys(&user).unwrap_err().contains("user-defined"));
    }
}
