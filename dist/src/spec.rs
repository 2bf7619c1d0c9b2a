//! [`SearchSpec`]: one combined search (a query vector, `k`, location and time conditions)
//! as plain data, so that a plan carrying it can be sent to another process.

use sat2cap::{BBox, Collection, Filter, Polygon, Radius, SearchResults, TimeRange};
use serde::{Deserialize, Serialize};

use crate::Error;

/// A search every shard runs: the same as a [`sat2cap::SearchBuilder`] with these settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// The query vector (any length; normalised by the search).
    pub vector: Vec<f32>,
    /// Results wanted over all shards.
    pub k: usize,
    /// `[west, south, east, north]`, degrees (west > east crosses the antimeridian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// `[lat, lon, radius_km]`: great-circle distance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<[f64; 3]>,
    /// One ring of `(lon, lat)` vertices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<Vec<(f64, f64)>>,
    /// `[t0, t1]`, Unix seconds, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<[i64; 2]>,
    /// Exact scans instead of graph walks (recall 1.0).
    #[serde(default)]
    pub exact: bool,
    /// The graph walk's beam width (`None`: the library's default rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
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
        Ok(f)
    }

    /// Checks what can be checked without data: `k`, the vector and the conditions.
    pub fn check(&self) -> Result<(), Error> {
        if self.k == 0 {
            return Err(Error::Input("k must be at least 1".into()));
        }
        if self.vector.is_empty() || self.vector.iter().any(|v| !v.is_finite()) {
            return Err(Error::Input(
                "the query vector is empty or holds a value that is not finite".into(),
            ));
        }
        self.filter().map(drop)
    }

    /// The conditions in words, for plan displays: `none`, or e.g.
    /// `bbox [5, 45, 11, 48] AND time [0, 86400]`.
    pub fn describe_filter(&self) -> String {
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
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" AND ")
        }
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
        Ok(b.run()?)
    }
}
