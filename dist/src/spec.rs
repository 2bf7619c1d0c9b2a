//! What a plan asks of every shard, as plain data, so that a plan carrying it can be sent
//! to another process: a [`SearchSpec`] (one combined search) or a [`MapSpec`] (every tile
//! of a region scored against some queries), each within a [`Region`].

use sat2cap::{BBox, Collection, Filter, Polygon, Radius, SearchResults, TimeRange};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Location and time conditions: the rows that pass all of them (every row when none is
/// set).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// `[west, south, east, north]`, degrees (west > east crosses the antimeridian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// `[lat, lon, radius_km]`: great-circle distance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<[f64; 3]>,
    /// One ring of `(lon, lat)` vertices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<Vec<(f64, f64)>>,
    /// An area of interest as GeoJSON text: Polygons and MultiPolygons with holes, in a
    /// Feature or FeatureCollection, [lon, lat] positions (as `sat2cap --aoi` reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aoi: Option<String>,
    /// `[t0, t1]`, Unix seconds, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<[i64; 2]>,
}

impl Region {
    /// The conditions as a [`Filter`] (checked: bad coordinates are an error).
    pub fn filter(&self) -> Result<Filter, Error> {
        let mut f = Filter::new();
        if let Some([w, s, e, n]) = self.bbox {
            f = f.bbox(BBox::new(w, s, e, n)?);
        }
        if let Some([lat, lon, km]) = self.radius {
            f = f.radius(Radius::new(lat, lon, km)?);
        }
        if let Some(ring) = &self.polygon {
            f = f.polygon(Polygon::new(ring)?);
        }
        if let Some([t0, t1]) = self.time {
            f = f.time(TimeRange::new(t0, t1)?);
        }
        if let Some(g) = &self.aoi {
            let area = sat2cap::jobs::parse_area(g.as_bytes())
                .map_err(|e| Error::Input(format!("the area of interest: {e}")))?;
            f = f.and(area);
        }
        Ok(f)
    }

    /// The conditions in words, for plan displays: `none`, or e.g.
    /// `bbox [5, 45, 11, 48] AND time [0, 86400]`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.bbox {
            parts.push(format!("bbox {b:?}"));
        }
        if let Some(r) = self.radius {
            parts.push(format!("radius {r:?}"));
        }
        if let Some(p) = &self.polygon {
            parts.push(format!("polygon of {} vertices", p.len()));
        }
        if let Some(t) = self.time {
            parts.push(format!("time {t:?}"));
        }
        if let Some(g) = &self.aoi {
            parts.push(format!("area of {} bytes of GeoJSON", g.len()));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" AND ")
        }
    }
}

/// Checks that `v` can be a query: not empty, every value finite.
fn check_vector(v: &[f32], what: &str) -> Result<(), Error> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return Err(Error::Input(format!(
            "{what} is empty or holds a value that is not finite"
        )));
    }
    Ok(())
}

/// A search every shard runs: the same as a [`sat2cap::SearchBuilder`] with these settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// The query vector (any length; normalised by the search).
    pub vector: Vec<f32>,
    /// Results wanted over all shards.
    pub k: usize,
    /// The rows searched among.
    #[serde(default)]
    pub region: Region,
    /// Exact scans instead of graph walks (recall 1.0).
    #[serde(default)]
    pub exact: bool,
    /// The graph walk's beam width (`None`: the library's default rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    /// How far graph walks go, as a multiple of each shard's hop slack (`None`: 1; see
    /// [`sat2cap::SearchBuilder::effort`]). Not with `ef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<f32>,
}

impl SearchSpec {
    /// A search for the `k` rows most like `vector`, no conditions.
    pub fn new(vector: Vec<f32>, k: usize) -> SearchSpec {
        SearchSpec {
            vector,
            k,
            ..SearchSpec::default()
        }
    }

    /// The conditions as a [`Filter`] (checked: bad coordinates are an error).
    pub fn filter(&self) -> Result<Filter, Error> {
        self.region.filter()
    }

    /// Checks what can be checked without data: `k`, the vector, the walk knobs
    /// ([`sat2cap::check_walk_knobs`]) and the conditions.
    pub fn check(&self) -> Result<(), Error> {
        if self.k == 0 {
            return Err(Error::Input("k must be at least 1".into()));
        }
        check_vector(&self.vector, "the query vector")?;
        sat2cap::check_walk_knobs(self.ef, self.effort).map_err(|e| Error::Input(e.to_string()))?;
        self.filter().map(drop)
    }

    /// The conditions in words (see [`Region::describe`]).
    pub fn describe_filter(&self) -> String {
        self.region.describe()
    }

    /// Runs the search on one collection.
    pub fn run(&self, coll: &Collection<'_>) -> Result<SearchResults, Error> {
        let mut b = coll
            .search(&self.vector)
            .k(self.k)
            .filter(self.filter()?)
            .exact(self.exact);
        if let Some(ef) = self.ef {
            b = b.ef(ef);
        }
        if let Some(e) = self.effort {
            b = b.effort(e);
        }
        Ok(b.run()?)
    }
}

/// A map every shard draws its part of: each tile of the region scored against each query
/// (see [`sat2cap::jobs::score_tiles`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSpec {
    /// One query vector per prompt (the prompts' embeddings).
    pub queries: Vec<Vec<f32>>,
    /// The tiles drawn.
    #[serde(default)]
    pub region: Region,
    /// At a date and hours: the tiles re-encoded with the dynamic encoder where each shard
    /// lives (`None`: their stored vectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<MapAt>,
}

/// A map at a date and hours (see [`sat2cap::jobs::score_tiles_at`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapAt {
    /// The date and hour on the local wall clock, as written (`sat2cap map --datetime`);
    /// `None`: each tile's own time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<String>,
    /// Hours of the day, one panel per prompt and hour (none: the date's hour).
    #[serde(default)]
    pub hours: Vec<u32>,
    /// The encoders, loaded where the shards are (the same weights path on every executor).
    pub model: ModelSpec,
}

impl MapAt {
    /// The date and hour on the wall clock, checked.
    pub fn wall(&self) -> Result<Option<sat2cap::time::DateTime>, Error> {
        match &self.datetime {
            None => Ok(None),
            Some(s) => sat2cap::time::parse_wall(s)
                .map(|(_, w)| Some(w))
                .map_err(|e| Error::Input(format!("bad --datetime: {e}"))),
        }
    }
}

impl MapSpec {
    /// Checks what can be checked without data: at least one query, each a vector of the
    /// same length, and the conditions.
    pub fn check(&self) -> Result<(), Error> {
        let Some(first) = self.queries.first() else {
            return Err(Error::Input("a map needs at least one query".into()));
        };
        for (i, q) in self.queries.iter().enumerate() {
            check_vector(q, &format!("query {i}"))?;
            if q.len() != first.len() {
                return Err(Error::Input(format!(
                    "query {i} has {} values, query 0 has {}",
                    q.len(),
                    first.len()
                )));
            }
        }
        if let Some(at) = &self.at {
            at.wall()?;
            if let Some(h) = at.hours.iter().find(|&&h| h > 23) {
                return Err(Error::Input(format!(
                    "--hours: {h} is not an hour (0..=23)"
                )));
            }
        }
        self.region.filter().map(drop)
    }

    /// Scores each tile holds: one per query, at each hour.
    pub fn scores_per_tile(&self) -> usize {
        let hours = self.at.as_ref().map_or(1, |a| a.hours.len().max(1));
        self.queries.len() * hours
    }
}

/// The model an executor loads to encode tiles (see [`sat2cap::jobs::ModelOptions`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The weights folder, at the same path on every executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<std::path::PathBuf>,
    /// Without weights, seeded random encoders.
    #[serde(default)]
    pub random: bool,
    /// The tiny test shapes.
    #[serde(default)]
    pub tiny: bool,
}

/// A tile folder encoded into shards: each shard's task encodes the tiles whose centre lies
/// in its quadkey tile (see [`sat2cap::jobs::TilePart`]) into a new database at the task's
/// path.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSpec {
    /// The tile folder (`{lat}_{lon}` or `z/x/y` images), at the same path on every executor.
    pub dir: std::path::PathBuf,
    /// The quadkey level the shards are tiles of.
    pub level: u8,
    /// The collection each shard holds.
    pub collection: String,
    /// Footprint side for `{lat}_{lon}` names (inferred from the whole folder if `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile_deg: Option<f64>,
    /// The capture time on the local wall clock, as written (`sat2cap ingest-tiles
    /// --datetime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<String>,
    /// The encoders.
    pub model: ModelSpec,
    /// Tiles that do not decode are left out and reported (else they fail the ingest).
    #[serde(default)]
    pub skip_bad: bool,
}
