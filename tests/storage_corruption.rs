//! Corruption: for every file kind (segment, manifest, tombstones) truncation at every length
//! and a flip of every byte give an error from open or verify: never a panic, never a silently
//! different database. Crafted files with valid checksums but bad structure (future version,
//! overlapping sections, overflowing counts) are refused at open with file and offset.

use std::sync::Arc;

use sat2cap::geo::Point;
use sat2cap::storage::{
    kind, AlignedBytes, Directory, ExtraSections, SectionBuildError, SectionBuilder, Segment,
};
use sat2cap::testing::MemDirectory;
use sat2cap::{Db, IndexOptions, NewItem, OpenError, OpenOptions};

struct Extra;
impl SectionBuilder for Extra {
    fn build(&self, _: &str, s: &Segment) -> Result<ExtraSections, SectionBuildError> {
        Ok(vec![(OPAQUE, vec![s.len() as u8; 5])])
    }
}

/// An index section kind no reader of this crate parses (opaque to storage and search).
const OPAQUE: u32 = 150;

/// A small database with two segments (times, payloads, an index section) and a tombstone file.
fn sample() -> MemDirectory {
    let mem = MemDirectory::new();
    let opts = OpenOptions::create_new()
        .indexes(IndexOptions::none())
        .section_builder(Arc::new(Extra));
    let mut db = Db::open_in(Arc::new(mem.clone()), opts).unwrap();
    db.create_collection("c", 5).unwrap();
    for id in 0..9u64 {
        let v = [id as f32 + 1.0, -1.0, 0.5, 0.0, 2.0];
        let p = format!("payload {id}");
        db.add(
            "c",
            NewItem {
                id,
                vector: &v,
                point: Point::new(id as f64 * 9.0, -170.0 + id as f64).unwrap(),
                time: id.is_multiple_of(2).then_some(id as i64),
                payload: (id % 3 != 0).then_some(p.as_str()),
            },
        )
        .unwrap();
    }
    db.commit().unwrap();
    db.delete("c", 4).unwrap();
    db.add(
        "c",
        NewItem {
            id: 5,
            vector: &[1.0; 5],
            point: Point::new(0.0, 0.0).unwrap(),
            time: None,
            payload: None,
        },
    )
    .unwrap();
    db.commit().unwrap();
    mem
}

type Observed = Vec<(u64, Vec<u16>, f64, f64, Option<i64>, Option<String>)>;

fn observe(dir: &MemDirectory) -> Result<Observed, String> {
    let snap = Db::open_in(Arc::new(dir.clone()), OpenOptions::read_only())
        .map(|d| d.snapshot())
        .map_err(|e| e.to_string())?;
    snap.verify(&sat2cap::Silent).map_err(|e| e.to_string())?;
    let c = snap.collection("c").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for it in c.iter() {
        let it = it.map_err(|e| e.to_string())?;
        out.push((
            it.id,
            it.vector.iter().map(|x| x.to_bits()).collect(),
            it.point.lat(),
            it.point.lon(),
            it.time,
            it.payload.map(String::from),
        ));
    }
    Ok(out)
}

fn file_bytes(mem: &MemDirectory, name: &str) -> Vec<u8> {
    (*mem.read(name).unwrap()).as_ref().to_vec()
}

/// Every truncation and every single-byte flip of `name` is rejected by open or verify.
fn mutate_all(name: &str) -> usize {
    let mem = sample();
    let good = observe(&mem).unwrap();
    assert_eq!(good.len(), 8);
    let orig = file_bytes(&mem, name);
    let mut checked = 0;
    for len in 0..orig.len() {
        mem.put(name, &orig[..len]);
        let r = observe(&mem);
        assert!(r.is_err(), "{name} truncated to {len} bytes was accepted");
        checked += 1;
    }
    for at in 0..orig.len() {
        for x in [0x01u8, 0x80, 0xFF] {
            let mut bad = orig.clone();
            bad[at] ^= x;
            mem.put(name, &bad);
            match observe(&mem) {
                Err(e) => assert!(
                    e.contains(name) || e.contains("mem:"),
                    "error names no file: {e}"
                ),
                Ok(o) => panic!(
                    "{name}: flip {x:#x} at byte {at} accepted (same result: {})",
                    o == good
                ),
            }
            checked += 1;
        }
    }
    // Appended garbage.
    let mut long = orig.clone();
    long.extend_from_slice(&[0; 64]);
    mem.put(name, &long);
    assert!(observe(&mem).is_err());
    mem.put(name, &orig);
    assert_eq!(observe(&mem).unwrap(), good);
    checked
}

fn names(mem: &MemDirectory, suffix: &str) -> Vec<String> {
    mem.list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .collect()
}

#[test]
fn every_segment_byte() {
    let mem = sample();
    let segs = names(&mem, ".s2seg");
    assert_eq!(segs.len(), 2);
    for s in segs {
        assert!(mutate_all(&s) > 1000);
    }
}

#[test]
fn every_manifest_byte() {
    assert!(mutate_all("MANIFEST") > 300);
}

#[test]
fn every_tombstone_byte() {
    let mem = sample();
    let t = names(&mem, ".s2tomb");
    assert_eq!(t.len(), 1);
    mutate_all(&t[0]);
}

#[test]
fn missing_files_are_errors() {
    for name in [
        "MANIFEST",
        "seg-0000000000000001.s2seg",
        "tomb-0000000000000004.s2tomb",
    ] {
        let mem = sample();
        if !mem.exists(name).unwrap() {
            continue;
        }
        let r = mem.reboot(sat2cap::testing::RebootMode::AllEntries);
        r.remove(name).unwrap();
        assert!(observe(&r).is_err(), "{name} missing was accepted");
    }
}

// ---- crafted files with valid checksums ----

fn reseal(seg: &mut [u8]) {
    let h = crc32c::crc32c(&seg[..56]);
    seg[56..60].copy_from_slice(&h.to_le_bytes());
    let len = seg.len();
    let t = u64::from_le_bytes(seg[40..48].try_into().unwrap()) as usize;
    let meta = crc32c::crc32c_append(crc32c::crc32c(&seg[..64]), &seg[t..len - 32]);
    seg[len - 20..len - 16].copy_from_slice(&meta.to_le_bytes());
}

fn open(bytes: &[u8]) -> Result<Segment, OpenError> {
    Segment::open(Arc::new(AlignedBytes::from_slice(bytes)), "crafted.s2seg")
}

fn a_segment() -> Vec<u8> {
    let mem = sample();
    file_bytes(&mem, &names(&mem, ".s2seg")[0])
}

#[test]
fn crafted_segments_are_refused_with_offsets() {
    let good = a_segment();
    let mut s = good.clone();
    reseal(&mut s);
    assert_eq!(s, good, "reseal is the identity on a good file");
    open(&good).unwrap().verify().unwrap();

    // Future version.
    let mut s = good.clone();
    s[8..12].copy_from_slice(&3u32.to_le_bytes());
    reseal(&mut s);
    assert!(matches!(
        open(&s),
        Err(OpenError::UnsupportedVersion { found: 3, .. })
    ));

    // Row count that overflows the section-size arithmetic.
    let mut s = good.clone();
    s[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut s);
    let e = open(&s).unwrap_err().to_string();
    assert!(e.contains("crafted.s2seg") && e.contains("offset"), "{e}");

    // Overlapping sections: point section 2 (ids) at section 1's offset.
    let t = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
    let mut s = good.clone();
    let vec_off = s[t + 8..t + 16].to_vec();
    s[t + 32 + 8..t + 32 + 16].copy_from_slice(&vec_off);
    reseal(&mut s);
    let e = open(&s).unwrap_err().to_string();
    assert!(e.contains("overlap") || e.contains("bounds"), "{e}");

    // Section past the table, misaligned section, duplicate kind, unknown storage kind.
    for (field, val) in [(8usize, (t as u64) + 64), (8, 65), (0, 1), (0, 50)] {
        let mut s = good.clone();
        let at = t + 32 + field;
        if field == 0 {
            s[at..at + 4].copy_from_slice(&(val as u32).to_le_bytes());
        } else {
            s[at..at + 8].copy_from_slice(&val.to_le_bytes());
        }
        reseal(&mut s);
        assert!(open(&s).is_err(), "field {field} = {val} accepted");
    }

    // Dimension 0 and too large; unknown metric; too many sections.
    for (at, v) in [(16usize, 0u32), (16, 5000), (20, 1), (32, 100_000)] {
        let mut s = good.clone();
        s[at..at + 4].copy_from_slice(&v.to_le_bytes());
        reseal(&mut s);
        assert!(open(&s).is_err(), "header[{at}] = {v} accepted");
    }

    // Data corruption with a valid table: unsorted ids and an invalid point are found by
    // verify (open does not read columns), and accessors report them instead of panicking.
    let seg = open(&good).unwrap();
    let ids = seg.sections().iter().find(|x| x.kind == kind::IDS).unwrap();
    let pts = seg
        .sections()
        .iter()
        .find(|x| x.kind == kind::POINTS)
        .unwrap();
    let mut s = good.clone();
    s[ids.offset as usize..ids.offset as usize + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    s[pts.offset as usize..pts.offset as usize + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let seg = open(&s).unwrap();
    assert!(seg.point(0).is_err());
    let e = seg.verify().unwrap_err();
    assert_eq!(e.offset, ids.offset, "{e}");
}

#[test]
fn crafted_manifest_future_version() {
    let mem = sample();
    let mut m = file_bytes(&mem, "MANIFEST");
    m[8..12].copy_from_slice(&7u32.to_le_bytes());
    let n = m.len();
    let crc = crc32c::crc32c(&m[..n - 8]);
    m[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
    mem.put("MANIFEST", &m);
    assert!(matches!(
        Db::open_in(Arc::new(mem.clone()), OpenOptions::read_only()).map(|d| d.snapshot()),
        Err(OpenError::UnsupportedVersion { found: 7, .. })
    ));
}

#[test]
fn larger_segment_stride_and_every_metadata_byte() {
    let mem = MemDirectory::new();
    let mut db = Db::open_in(
        Arc::new(mem.clone()),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("c", 512).unwrap();
    for id in 0..60u64 {
        let v: Vec<f32> = (0..512)
            .map(|j| ((id * 13 + j) % 23) as f32 - 11.0)
            .collect();
        let p = "z".repeat(id as usize);
        db.add(
            "c",
            NewItem {
                id: id * 2,
                vector: &v,
                point: Point::new(1.0, 2.0).unwrap(),
                time: Some(9),
                payload: Some(&p),
            },
        )
        .unwrap();
    }
    db.commit().unwrap();
    let name = names(&mem, ".s2seg").remove(0);
    let good = file_bytes(&mem, &name);
    assert!(good.len() > 60 * 1024);
    let t = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
    let check = |bad: &[u8], what: &str| {
        let r = open(bad).and_then(|s| s.verify().map_err(OpenError::from));
        assert!(r.is_err(), "{what} accepted");
    };
    // Every byte of the header, the section table and the footer; a stride over the body.
    let positions: Vec<usize> = (0..64)
        .chain(t..good.len())
        .chain((64..t).step_by(97))
        .collect();
    for &at in &positions {
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        check(&bad, &format!("flip at {at}"));
    }
    for len in (0..good.len())
        .step_by(61)
        .chain(good.len() - 100..good.len())
    {
        check(&good[..len], &format!("truncation to {len}"));
    }
}
