//! Vector and spatial indexes over plain in-memory (or memory-mapped) slices.
//!
//! - [`flat`]: exact f16 x f32 dot-product scan; the ground truth and the plan for small
//!   candidate sets.
//! - [`hnsw`]: graph built with `hnsw_rs`, exported into our own byte layout
//!   ([`hnsw::GraphView`]) and searched in place, with filter support.
//! - [`quant`]: an int8 copy of the vectors, for exact scans that read half the bytes.
//! - [`spatial`]: block rectangles and an R-tree over row locations, for enumeration.
//!
//! Every index addresses rows by their `u32` position in the segment (row `i` owns
//! `vectors[i * dim..(i + 1) * dim]`).

pub mod flat;
pub mod hnsw;
pub mod quant;
pub mod spatial;

/// The L2 norm of `v`, summed in f64 (so that rows normalised with it are unit length
/// before their fp16 rounding, whatever their scale).
pub(crate) fn norm_f64(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Why an index could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// `dim` is zero or the vector slice is not a whole number of rows.
    #[error("vector slice of {len} values is not a whole number of {dim}-dimensional rows")]
    Shape {
        /// Number of f16 values given.
        len: usize,
        /// Dimension asked for.
        dim: usize,
    },
    /// More rows than fit the `u32` row ids of the on-disk layout.
    #[error("{0} rows do not fit u32 row ids")]
    TooManyRows(usize),
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name}: {reason}")]
    Param {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Checks that `vectors` holds a whole number of `dim`-wide rows addressable by `u32`;
/// returns the row count.
pub fn row_count(len: usize, dim: usize) -> Result<u32, IndexError> {
    if dim == 0 || !len.is_multiple_of(dim) {
        return Err(IndexError::Shape { len, dim });
    }
    let n = len / dim;
    u32::try_from(n).map_err(|_| IndexError::TooManyRows(n))
}
