//! Fuzz-target body for the PyTorch reader (`torch.save` zip archives, the pickle VM, the
//! state-dict checks and the Lightning renames): `pytorch_load`.

use std::path::Path;

use crate::encoders::clip_text::ClipTextModel;
use crate::encoders::clip_vision::ClipVisionModel;
use crate::encoders::dynamic::{GeoNet, Sat2CapDynamic};
use crate::encoders::pytorch::{storages_in_pickle, zip};
use crate::encoders::weights::{expected_tensors, Loader, WeightsFile};
use crate::encoders::CpuBackend;

use super::encoders::{fuzz_geo_config, fuzz_text_config, fuzz_vision_config};

/// Storages larger than this are left out of the archive a bare pickle is wrapped in.
const MAX_WRAPPED_STORAGE: u64 = 1 << 16;

/// Reads `data` as a `torch.save` file (bytes starting with a zip local header) or, for any
/// other bytes, as a bare `data.pkl` wrapped in an archive that holds the storages it names
/// (so mutations of the pickle are not all stopped by the CRC). Either a one-line error
/// blamed on the file, or a table whose every float tensor reads back with its shape's
/// element count; then the fuzz models (the text tower when the file has `text_model.*`,
/// the vision tower, GeoNet when it has `geo_encoder.*`) load through the strict
/// [`Loader`]: a typed error, or the file holds exactly their tensors.
pub fn pytorch_load(data: &[u8]) {
    let path = Path::new("fuzz/pytorch_model.bin");
    let result = if data.starts_with(b"PK\x03\x04") {
        WeightsFile::from_pytorch_bytes(path, data)
    } else {
        let mut storages: Vec<(String, Vec<u8>)> = Vec::new();
        for (key, bytes) in storages_in_pickle(data) {
            if bytes <= MAX_WRAPPED_STORAGE && !storages.iter().any(|(k, _)| *k == key) {
                let fill = (0..bytes).map(|i| (i % 251) as u8).collect();
                storages.push((key, fill));
            }
        }
        let names: Vec<String> = storages
            .iter()
            .map(|(k, _)| format!("archive/data/{k}"))
            .collect();
        let mut entries: Vec<(&str, &[u8])> = vec![("archive/data.pkl", data)];
        for (name, (_, bytes)) in names.iter().zip(&storages) {
            entries.push((name, bytes));
        }
        WeightsFile::from_pytorch_bytes(path, &zip(&entries, data.len() % 2 == 1))
    };
    let file = match result {
        Ok(f) => f,
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "a multi-line error: {msg}");
            assert!(e.is_bad_input(), "an error not blamed on the file: {e:?}");
            return;
        }
    };
    let tensors: Vec<(String, Vec<usize>)> = file
        .tensors()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    for (name, shape) in &tensors {
        if let Ok((values, got)) = file.read_tensor(name) {
            assert_eq!(&got, shape, "{name}");
            assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
        }
    }
    let device = Default::default();
    let text = file.has_prefix("text_model.");
    let geo = file.has_prefix("geo_encoder.");
    let mut want = Vec::new();
    let mut loader = Loader::new(&file);
    if text {
        let m = ClipTextModel::<CpuBackend>::init(&fuzz_text_config(), &device);
        want.extend(expected_tensors(&m));
        let _ = loader.load(m);
    }
    let m = ClipVisionModel::<CpuBackend>::init(&fuzz_vision_config(), &device);
    want.extend(expected_tensors(&m));
    let _ = loader.load(m);
    if geo {
        let m = Sat2CapDynamic::<CpuBackend> {
            geo_encoder: GeoNet::init(&fuzz_geo_config(), &device),
        };
        want.extend(expected_tensors(&m));
        let _ = loader.load(m);
    }
    let want = want.into_iter().map(|t| (t.name, t.shape)).collect();
    super::encoders::check_loaded(loader.finish(), tensors, want);
}
