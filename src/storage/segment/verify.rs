//! Checking every byte of a segment (what `sat2cap verify` runs).

use super::*;

/// How far from 1 a stored row's norm may be (fp16 rounding of a unit vector moves it by
/// less than 2^-11 ~ 4.9e-4); a search refuses a score above `1 + UNIT_TOLERANCE`.
pub const UNIT_TOLERANCE: f64 = 1e-3;

impl Segment {
    /// Checks every byte: section CRCs, zero padding, ids strictly increasing, points valid,
    /// payload offsets monotone and UTF-8, fp16 values finite, rows of unit length.
    pub fn verify(&self) -> Result<(), CorruptError> {
        let _in_order = self.whole_read();
        let buf = self.buf();
        let mut sorted = self.sections.clone();
        sorted.sort_by_key(|s| s.offset);
        let mut pos = SEGMENT_HEADER_LEN as usize;
        for s in &sorted {
            let r = range(s);
            if buf[pos..r.start].iter().any(|&x| x != 0) {
                return Err(self.corrupt(pos, "non-zero padding"));
            }
            if crc32c::crc32c(&buf[r.clone()]) != s.crc32c {
                return Err(self.corrupt(r.start, format!("section {} checksum mismatch", s.kind)));
            }
            pos = r.end;
        }
        if buf[pos..self.table_offset as usize].iter().any(|&x| x != 0) {
            return Err(self.corrupt(pos, "non-zero padding"));
        }
        match (self.id_order(), &self.id_order) {
            (Some(order), Some(at)) => {
                let mut seen = vec![0u64; self.rows.div_ceil(64)];
                for (i, r) in order.iter().enumerate() {
                    let r = u32::from_le(*r) as usize;
                    if r >= self.rows || seen[r / 64] & (1 << (r % 64)) != 0 {
                        return Err(self.corrupt(at.start + i * 4, "id order is not a permutation"));
                    }
                    seen[r / 64] |= 1 << (r % 64);
                }
                for rank in 1..self.rows {
                    if self.id_at_rank(rank - 1) >= self.id_at_rank(rank) {
                        return Err(self.corrupt(
                            at.start + rank * 4,
                            "ids not strictly increasing in id order",
                        ));
                    }
                }
            }
            _ => {
                let ids = self.ids();
                for (i, w) in ids.windows(2).enumerate() {
                    if u64::from_le(w[0]) >= u64::from_le(w[1]) {
                        return Err(self
                            .corrupt(self.ids.start + (i + 1) * 8, "ids not strictly increasing"));
                    }
                }
            }
        }
        for row in 0..self.rows {
            self.point(row)?;
            self.payload(row)?;
            let v = self.vector(row);
            if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                return Err(self.corrupt(
                    self.vectors.start + (row * self.dim + j) * 2,
                    "non-finite fp16",
                ));
            }
            if v.iter().all(|x| x.to_f32() == 0.0) {
                return Err(
                    self.corrupt(self.vectors.start + row * self.dim * 2, "all-zero vector")
                );
            }
            // Rows are stored normalised (then rounded to fp16, which moves the norm by
            // less than 2^-11): a norm further from 1 is not a row this engine wrote, and
            // would let a query score above 1.
            let norm = v
                .iter()
                .map(|x| f64::from(x.to_f32()).powi(2))
                .sum::<f64>()
                .sqrt();
            if (norm - 1.0).abs() > UNIT_TOLERANCE {
                return Err(self.corrupt(
                    self.vectors.start + row * self.dim * 2,
                    format!("row {row}: vector norm {norm:.6} is not 1 (rows are unit length)"),
                ));
            }
        }
        if let Some((offs, _, bytes)) = &self.payload {
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[offs.start..offs.start + 8]);
            if u64::from_le_bytes(a) != 0 {
                return Err(self.corrupt(offs.start, "first payload offset is not zero"));
            }
            a.copy_from_slice(&buf[offs.end - 8..offs.end]);
            if u64::from_le_bytes(a) != (bytes.end - bytes.start) as u64 {
                return Err(self.corrupt(offs.end - 8, "last payload offset != payload length"));
            }
        }
        Ok(())
    }
}
