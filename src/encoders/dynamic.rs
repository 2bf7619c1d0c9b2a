//! Sat2Cap's dynamic encoder ("GeoNet"): location, date and hour -> a 512-d offset that is
//! added to the unnormalised overhead embedding.
//!
//! Reference: mvrl/Sat2Cap `geoclip/models/geoencode.py` (`GeoNet`: `fc1 = Linear(12, 64)`,
//! ReLU, `fc2 = Linear(64, 512)`), `geoclip/utils/preprocess.py` (`preprocess_meta`: the 12
//! inputs) and `geoclip/models/geomoco.py` (`forward`: `geo + unnormalized_overhead`, then
//! L2 normalisation).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::config::GeoNetConfig;

/// Where and when an overhead image was taken (for the dynamic encoder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta {
    /// Latitude in degrees, [-90, 90].
    pub lat: f64,
    /// Longitude in degrees, [-180, 180].
    pub lon: f64,
    /// Calendar year (any finite year; the reference encodes `(year - 2015) / 15`).
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=31 (checked against the month and leap years).
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
}

/// Why a [`Meta`] is rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid metadata: {0}")]
pub struct InvalidMeta(pub String);

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap {
                29
            } else {
                28
            }
        }
    }
}

impl Meta {
    /// Checks ranges: finite lat in [-90, 90], lon in [-180, 180], a real calendar date
    /// (the reference parses it with `datetime.strptime`), hour 0..=23.
    pub fn validate(&self) -> Result<(), InvalidMeta> {
        if !self.lat.is_finite() || !(-90.0..=90.0).contains(&self.lat) {
            return Err(InvalidMeta(format!(
                "latitude {} not in [-90, 90]",
                self.lat
            )));
        }
        if !self.lon.is_finite() || !(-180.0..=180.0).contains(&self.lon) {
            return Err(InvalidMeta(format!(
                "longitude {} not in [-180, 180]",
                self.lon
            )));
        }
        if !(1..=9999).contains(&self.year) {
            return Err(InvalidMeta(format!("year {} not in 1..=9999", self.year)));
        }
        if !(1..=12).contains(&self.month) {
            return Err(InvalidMeta(format!("month {} not in 1..=12", self.month)));
        }
        let dim = days_in_month(self.year, self.month);
        if self.day == 0 || self.day > dim {
            return Err(InvalidMeta(format!(
                "day {} not in 1..={dim} for {}-{:02}",
                self.day, self.year, self.month
            )));
        }
        if self.hour > 23 {
            return Err(InvalidMeta(format!("hour {} not in 0..=23", self.hour)));
        }
        Ok(())
    }

    /// The 12 GeoNet inputs, in the reference order (`preprocess_meta`):
    /// sin/cos(pi lat/90), sin/cos(pi lon/180), sin/cos(2 pi (year-2015)/15),
    /// sin/cos(2 pi month/12), sin/cos(2 pi day/31), sin/cos(2 pi hour/23).
    /// Computed in f64 (as numpy does), then rounded to f32.
    pub fn features(&self) -> Result<[f32; 12], InvalidMeta> {
        use std::f64::consts::PI;
        self.validate()?;
        let year = (f64::from(self.year) - 2015.0) / (2015.0 - 2000.0);
        let angles = [
            PI * self.lat / 90.0,
            PI * self.lon / 180.0,
            2.0 * PI * year,
            2.0 * PI * f64::from(self.month) / 12.0,
            2.0 * PI * f64::from(self.day) / 31.0,
            2.0 * PI * f64::from(self.hour) / 23.0,
        ];
        let mut out = [0f32; 12];
        for (i, a) in angles.iter().enumerate() {
            out[2 * i] = a.sin() as f32;
            out[2 * i + 1] = a.cos() as f32;
        }
        Ok(out)
    }
}

/// GeoNet: `fc2(relu(fc1(x)))`; checkpoint names `geo_encoder.fc1.*`, `geo_encoder.fc2.*`.
#[derive(Module, Debug)]
pub struct GeoNet<B: Backend> {
    /// `Linear(12, 64)`.
    pub fc1: Linear<B>,
    /// `Linear(64, 512)`.
    pub fc2: Linear<B>,
}

impl<B: Backend> GeoNet<B> {
    /// A GeoNet with burn's default (random) initialisation.
    pub fn init(config: &GeoNetConfig, device: &B::Device) -> Self {
        Self {
            fc1: LinearConfig::new(12, config.hidden).init(device),
            fc2: LinearConfig::new(config.hidden, config.output).init(device),
        }
    }

    /// `features`: `[batch, 12]` -> `[batch, output]`.
    pub fn forward(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.fc2.forward(relu(self.fc1.forward(features)))
    }

    /// Runs GeoNet on validated metadata rows.
    pub fn forward_meta(
        &self,
        meta: &[Meta],
        device: &B::Device,
    ) -> Result<Tensor<B, 2>, InvalidMeta> {
        let mut flat = Vec::with_capacity(meta.len() * 12);
        for m in meta {
            flat.extend_from_slice(&m.features()?);
        }
        let x = Tensor::<B, 2>::from_data(TensorData::new(flat, [meta.len(), 12]), device);
        Ok(self.forward(x))
    }
}

/// The Sat2Cap overhead tower's learnable parts beside the CLIP vision tower.
#[derive(Module, Debug)]
pub struct Sat2CapDynamic<B: Backend> {
    /// The dynamic encoder.
    pub geo_encoder: GeoNet<B>,
}
