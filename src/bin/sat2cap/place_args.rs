//! Where and when: the filters every search-like command takes, in one place so that each
//! reads them the same way. Coordinates are longitude first wherever two are given together
//! (`--bbox W,S,E,N`, GeoJSON's `[lon, lat]`); a single point is `--lon X --lat Y`.

use std::path::PathBuf;

use clap::Args;
use sat2cap::{Filter, Radius, TimeRange};

use crate::CliError;

/// A box, an area of interest and a time range.
#[derive(Args, Debug, Clone, Default)]
pub struct AreaArgs {
    /// Only items inside W,S,E,N (degrees, longitude first; W > E crosses the antimeridian).
    #[arg(long, allow_hyphen_values = true, value_name = "W,S,E,N")]
    pub bbox: Option<String>,
    /// Only items inside the polygons of a GeoJSON file: a Polygon or MultiPolygon (holes
    /// kept), a Feature, a FeatureCollection; positions [lon, lat] (RFC 7946).
    #[arg(long, value_name = "FILE.geojson")]
    pub aoi: Option<PathBuf>,
    /// Only items with a time from T0 to T1, both included: RFC 3339 (2023-06-01T08:00:00Z,
    /// 2023-06-01T10:00:00+02:00), a date (a T1 date runs to the end of that day) or unix
    /// seconds; no offset means UTC. Items without a time never match.
    #[arg(long, num_args = 2, value_names = ["T0", "T1"], allow_hyphen_values = true)]
    pub between: Vec<String>,
}

/// A point and a radius around it.
#[derive(Args, Debug, Clone, Default)]
pub struct PointArgs {
    /// Longitude (degrees east) of the centre of --radius-km.
    #[arg(long, allow_hyphen_values = true)]
    pub lon: Option<f64>,
    /// Latitude (degrees north) of the centre of --radius-km.
    #[arg(long, allow_hyphen_values = true)]
    pub lat: Option<f64>,
    /// Only items within this many km of --lon/--lat (great-circle distance).
    #[arg(long)]
    pub radius_km: Option<f64>,
    /// Replaced by --lon/--lat (it took latitude first, unlike every other flag).
    #[arg(long, hide = true, allow_hyphen_values = true)]
    pub near: Option<String>,
}

impl AreaArgs {
    /// `filter` with the box, the area and the time range added.
    pub fn add_to(&self, mut filter: Filter) -> Result<Filter, CliError> {
        if let Some(b) = &self.bbox {
            filter = filter.bbox(crate::parse_bbox(b)?);
        }
        if let Some(p) = &self.aoi {
            let area =
                sat2cap::jobs::read_area(p).map_err(|e| CliError::input(format!("--aoi {e}")))?;
            filter = filter.and(area);
        }
        if let [t0, t1] = self.between.as_slice() {
            filter = filter.time(parse_between(t0, t1)?);
        }
        Ok(filter)
    }
}

impl PointArgs {
    /// `filter` with the radius added.
    pub fn add_to(&self, filter: Filter) -> Result<Filter, CliError> {
        if let Some(n) = &self.near {
            return Err(CliError::input(format!(
                "--near is gone: it took LAT,LON while --bbox and GeoJSON take longitude \
                 first; write --lon LON --lat LAT (for --near {n}: --lat {} and --lon {})",
                n.split(',').next().unwrap_or("").trim(),
                n.split(',').nth(1).unwrap_or("").trim()
            )));
        }
        let (lon, lat, km) = match (self.lon, self.lat, self.radius_km) {
            (None, None, None) => return Ok(filter),
            (Some(lon), Some(lat), Some(km)) => (lon, lat, km),
            _ => {
                return Err(CliError::input(
                    "a radius filter takes all three of --lon, --lat and --radius-km",
                ))
            }
        };
        for (v, flag) in [(lon, "--lon"), (lat, "--lat"), (km, "--radius-km")] {
            if !v.is_finite() {
                return Err(CliError::input(format!(
                    "{flag}: {v} is not a finite number"
                )));
            }
        }
        let r = Radius::new(lat, lon, km).map_err(|e| {
            CliError::input(format!("bad --lon {lon} --lat {lat} --radius-km {km}: {e}"))
        })?;
        Ok(filter.radius(r))
    }
}

/// `--between T0 T1`: the instants (see [`AreaArgs::between`]).
fn parse_between(t0: &str, t1: &str) -> Result<TimeRange, CliError> {
    let parse = |s: &str, which: &str| {
        sat2cap::time::parse(s)
            .map_err(|e| CliError::input(format!("--between {which} '{s}': {e}")))
    };
    let a = parse(t0, "T0")?;
    let mut b = parse(t1, "T1")?;
    if is_date_only(t1) {
        b = b.saturating_add(86_399);
    }
    TimeRange::new(a, b)
        .map_err(|_| CliError::input(format!("--between: T0 '{t0}' is after T1 '{t1}'")))
}

/// `YYYY-MM-DD` alone (no time of day).
fn is_date_only(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}
