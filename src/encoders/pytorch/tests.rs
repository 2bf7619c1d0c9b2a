//! Unit tests of the PyTorch reader: hand-made archives and pickles, hostile ones.

use super::*;
use std::io::Cursor;

/// A pickle of `{"w": tensor(FloatStorage key "0", numel, offset, size, stride)}`.
fn pickle(numel: u8, offset: u8, size: &[u8], stride: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'(', b'X', 1, 0, 0, 0, b'w'];
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    p.extend_from_slice(
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu",
    );
    p.extend_from_slice(&[b'K', numel, b't', b'Q', b'K', offset, b'(']);
    for s in size {
        p.extend_from_slice(&[b'K', *s]);
    }
    p.extend_from_slice(b"t(");
    for s in stride {
        p.extend_from_slice(&[b'K', *s]);
    }
    p.extend_from_slice(b"t\x89ccollections\nOrderedDict\n)RtRu.");
    p
}

fn floats(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

fn convert(bytes: &[u8]) -> Result<Vec<u8>> {
    let f = TorchFile::open(Cursor::new(bytes), bytes.len() as u64)?;
    f.into_safetensors(|k| Some(k.to_string()))
}

#[test]
fn hand_made_file_loads_and_zip64_too() {
    let pkl = pickle(6, 0, &[2, 3], &[3, 1]);
    let data = floats(6);
    for zip64 in [false, true] {
        let z = zip(&[("a/data.pkl", &pkl), ("a/data/0", &data)], zip64);
        let st = convert(&z).expect("loads");
        let st = safetensors::SafeTensors::deserialize(&st).expect("safetensors");
        let t = st.tensor("w").expect("w");
        assert_eq!(t.shape(), [2, 3]);
        assert_eq!(t.data(), &data[..]);
    }
    // A view: 2 elements from offset 3.
    let pkl = pickle(6, 3, &[2], &[1]);
    let z = zip(&[("a/data.pkl", &pkl), ("a/data/0", &data)], false);
    let st = convert(&z).expect("loads");
    let st = safetensors::SafeTensors::deserialize(&st).expect("safetensors");
    assert_eq!(st.tensor("w").expect("w").data(), &data[12..20]);
}

#[test]
fn bad_tensors_are_errors_naming_them() {
    let data = floats(6);
    let cases: [(Vec<u8>, &[u8], &str); 5] = [
        (pickle(6, 0, &[3, 2], &[1, 3]), &data, "not contiguous"),
        (pickle(6, 4, &[3], &[1]), &data, "needs elements 4..7"),
        (pickle(8, 0, &[8], &[1]), &data, "holds 24 bytes"),
        (pickle(6, 0, &[6], &[1, 1]), &data, "sizes and"),
        (pickle(6, 0, &[6], &[1]), &data[..20], "holds 20 bytes"),
    ];
    for (pkl, data, want) in cases {
        let z = zip(&[("a/data.pkl", &pkl), ("a/data/0", data)], false);
        match convert(&z) {
            Err(PtError::Format(m)) => assert!(m.contains(want), "{m}"),
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("loaded: {want}"),
        }
    }
}

#[test]
fn memo_bombs_stay_bounded() {
    // l0 = []; l(i+1) = [l(i), l(i)] ... 60 levels: 2^60 leaves if copied.
    let mut p = vec![0x80, 2, b']', b'q', 0];
    for i in 0..60u8 {
        p.extend_from_slice(&[b'(', b'h', i, b'h', i, b'l', b'q', i + 1]);
    }
    p.extend_from_slice(b"0}(X\x01\x00\x00\x00kh\x3cu.");
    let z = zip(&[("a/data.pkl", &p)], false);
    let f = TorchFile::open(Cursor::new(&z[..]), z.len() as u64).expect("opens");
    assert_eq!(f.entries(), [("k".to_string(), "a list".to_string())]);
    // A memoised tuple copied into many OrderedDicts runs out of budget.
    let mut p = vec![0x80, 2, b']', b'('];
    for _ in 0..2000 {
        p.extend_from_slice(b"X\x01\x00\x00\x00kK\x01\x86");
    }
    p.extend_from_slice(b"e\x94");
    for _ in 0..20000 {
        p.extend_from_slice(b"ccollections\nOrderedDict\nh\x00\x85R0");
    }
    p.extend_from_slice(b"}.");
    match unpickle(&p) {
        Err(PtError::Format(m)) => assert!(m.contains("legitimately"), "{m}"),
        _ => panic!("no budget error"),
    }
}

#[test]
fn objects_stay_small() {
    // Memory is bounded by the pickle's length times these (one object, one stack value
    // per opcode at most).
    assert!(std::mem::size_of::<Obj>() <= 32);
    assert!(std::mem::size_of::<Value>() <= 16);
}

#[test]
fn globals_are_never_called() {
    // {"w": os.system("touch ..."), "n": numpy scalar}: placeholders.
    let p = b"\x80\x02}(X\x01\x00\x00\x00wcos\nsystem\nX\x04\x00\x00\x00echo\x85RX\x01\x00\x00\x00ncnumpy.core.multiarray\nscalar\n)Ru.";
    let z = zip(&[("a/data.pkl", p)], false);
    let f = TorchFile::open(Cursor::new(&z[..]), z.len() as u64).expect("opens");
    let e = f.entries();
    assert_eq!(e[0].1, "an object made by os.system (not run)");
    match f.into_safetensors(|k| Some(k.to_string())) {
        Err(PtError::Format(m)) => assert!(m.contains("os.system (not run), not a tensor"), "{m}"),
        _ => panic!("loaded"),
    }
}

#[test]
fn truncated_and_garbage_inputs_are_errors() {
    let pkl = pickle(6, 0, &[6], &[1]);
    let data = floats(6);
    let z = zip(&[("a/data.pkl", &pkl), ("a/data/0", &data)], false);
    for n in 0..z.len() {
        assert!(convert(&z[..n]).is_err(), "prefix {n}");
    }
    for i in 0..z.len() {
        let mut b = z.clone();
        b[i] ^= 0x55;
        let _ = convert(&b);
    }
    for n in 0..pkl.len() {
        let _ = unpickle(&pkl[..n]);
    }
    assert!(unpickle(b"\x80\x02h\x05.").is_err());
    assert!(unpickle(b"(0R.").is_err());
    assert!(unpickle(b"\x80\x07N.").is_err());
}
