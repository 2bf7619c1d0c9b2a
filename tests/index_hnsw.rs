//! HNSW build, export, parse and in-place search.

mod common;

use common::{exact, fixture, recall, DIM};
use half::f16;
use sat2cap::index::hnsw::layout::{self, GraphError};
use sat2cap::index::hnsw::{build_graph, build_hnsw, export_graph, search, GraphView, HnswParams};
use sat2cap::testing::synth::{generate, query_near};

/// Unfiltered recall@10 of our searcher on the exported graph is >= 0.95 vs the exact scan.
/// The graph is built by parallel insertion (not reproducible); at ef 64 runs gave
/// 0.965-0.98 and, once under heavy machine load, below 0.95, so the beam is 128 here
/// (the database default is 512).
#[test]
fn unfiltered_recall_at_10() {
    let (data, bytes) = fixture();
    let view = GraphView::parse(bytes, (data.vectors.len() / DIM) as u32).expect("parses");
    assert!(view.n_levels() >= 2, "a 20k graph has upper levels");
    let mut total = 0.0;
    let nq = 200;
    for i in 0..nq {
        let q = query_near(data, i, 1000 + i as u64);
        let got = search(&view, &data.vectors, DIM, &q, 10, 128, None);
        let truth = exact(data, &q, 10, |_| true);
        assert_eq!(got.len(), 10);
        assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
        total += recall(&got, &truth);
    }
    let r = total / nq as f64;
    println!("recall@10 {r}");
    assert!(r >= 0.95, "recall@10 {r}");
}

/// In filtered mode only matching rows come back, and recall holds at 10% selectivity.
#[test]
fn filtered_search_returns_only_matches() {
    let (data, bytes) = fixture();
    let view = GraphView::parse(bytes, (data.vectors.len() / DIM) as u32).unwrap();
    let keep = |r: u32| r % 10 == 3;
    let mut total = 0.0;
    for i in 0..100 {
        let q = query_near(data, i, 5000 + i as u64);
        let got = search(&view, &data.vectors, DIM, &q, 10, 200, Some(&keep));
        assert!(got.iter().all(|h| keep(h.row)));
        total += recall(&got, &exact(data, &q, 10, keep));
    }
    assert!(total / 100.0 >= 0.95, "filtered recall {}", total / 100.0);
    // A filter nothing passes returns nothing.
    let none = |_: u32| false;
    let q = query_near(data, 0, 1);
    assert!(search(&view, &data.vectors, DIM, &q, 10, 64, Some(&none)).is_empty());
}

/// The exported graph keeps hnsw_rs's structure: every row on level 0, degrees within the
/// hnsw_rs limits (2m on level 0, m above) and the same level populations.
#[test]
fn export_preserves_hnsw_rs_levels() {
    let data = generate(3000, 16, 10, 3);
    let p = HnswParams {
        m: 8,
        ef_construction: 64,
        ef_search: 32,
    };
    let h = build_hnsw(&data.vectors, 16, &p).unwrap();
    let bytes = export_graph(&h, 3000, 16, &p).unwrap();
    let view = GraphView::parse(&bytes, 3000).unwrap();
    let pi = h.get_point_indexation();
    assert_eq!(view.n_levels() as u8, pi.get_max_level_observed() + 1);
    for l in 0..view.n_levels() {
        // Level l of our layout holds the rows whose hnsw_rs level is >= l.
        let want: usize = (l as usize..=pi.get_max_level_observed() as usize)
            .map(|x| pi.get_layer_nb_point(x))
            .sum();
        assert_eq!(view.level_len(l) as usize, want, "level {l}");
    }
    for row in 0..3000 {
        assert!(view.neighbours(0, row).len() <= 16);
        assert!(!view.neighbours(0, row).is_empty(), "row {row} isolated");
    }
}

/// Empty and single-row segments build, parse and search.
#[test]
fn empty_and_single_row() {
    let bytes = build_graph(&[], 4, &HnswParams::default()).unwrap();
    let view = GraphView::parse(&bytes, 0).unwrap();
    assert_eq!(view.entry(), None);
    assert!(search(&view, &[], 4, &[1.0, 0.0, 0.0, 0.0], 5, 10, None).is_empty());
    let one: Vec<f16> = [0.0f32, 1.0, 0.0, 0.0]
        .iter()
        .map(|&x| f16::from_f32(x))
        .collect();
    let bytes = build_graph(&one, 4, &HnswParams::default()).unwrap();
    let view = GraphView::parse(&bytes, 1).unwrap();
    let hits = search(&view, &one, 4, &[0.0, 1.0, 0.0, 0.0], 5, 10, None);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].row, 0);
    assert!(build_graph(&one, 3, &HnswParams::default()).is_err());
    assert!(build_graph(
        &one,
        4,
        &HnswParams {
            m: 1,
            ..HnswParams::default()
        }
    )
    .is_err());
}

fn small_graph() -> (Vec<f16>, Vec<u8>) {
    let data = generate(300, 8, 6, 11);
    let p = HnswParams {
        m: 4,
        ef_construction: 16,
        ef_search: 16,
    };
    let bytes = build_graph(&data.vectors, 8, &p).unwrap();
    (data.vectors, bytes)
}

/// Every strict prefix of a real graph is rejected with an error, never a panic.
#[test]
fn parse_rejects_every_truncation() {
    let (_, bytes) = small_graph();
    GraphView::parse(&bytes, 300).expect("full graph parses");
    for len in 0..bytes.len() {
        assert!(
            GraphView::parse(&bytes[..len], 300).is_err(),
            "prefix {len} accepted"
        );
    }
    // And a trailing byte is refused too.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        GraphView::parse(&longer, 300),
        Err(GraphError::Trailing { .. })
    ));
}

/// Flipping any bit pattern in any byte yields an error or a graph that still searches
/// without panicking and only returns rows < n.
#[test]
fn parse_survives_every_byte_flip() {
    let (vectors, bytes) = small_graph();
    let q = [0.5f32, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0];
    let (mut ok, mut err) = (0, 0);
    for pos in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[pos] ^= mask;
            match GraphView::parse(&b, 300) {
                Ok(view) => {
                    ok += 1;
                    let hits = search(&view, &vectors, 8, &q, 10, 32, None);
                    assert!(hits.iter().all(|h| h.row < 300));
                }
                Err(_) => err += 1,
            }
        }
    }
    // Header, directory and offsets flips must be caught (not everything is survivable).
    assert!(err > 0 && ok > 0, "ok {ok} err {err}");
}

/// Header checks report what and where.
#[test]
fn parse_reports_bad_headers() {
    let (_, bytes) = small_graph();
    assert!(matches!(
        GraphView::parse(&bytes, 301),
        Err(GraphError::Field { field: "n", .. })
    ));
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(
        GraphView::parse(&b, 300),
        Err(GraphError::Magic { .. })
    ));
    let mut b = bytes.clone();
    b[4] = 2;
    assert!(matches!(
        GraphView::parse(&b, 300),
        Err(GraphError::Version { found: 2 })
    ));
    let mut b = bytes.clone();
    b[24..28].copy_from_slice(&300u32.to_le_bytes());
    assert!(matches!(
        GraphView::parse(&b, 300),
        Err(GraphError::Field { field: "entry", .. })
    ));
    // A neighbour id out of range in level 0, reported with its byte offset.
    let view = GraphView::parse(&bytes, 300).unwrap();
    let n_levels = view.n_levels() as usize;
    let level0_edges_at = layout::HEADER_LEN + 8 * n_levels + 4 * 301;
    let mut b = bytes.clone();
    b[level0_edges_at..level0_edges_at + 4].copy_from_slice(&300u32.to_le_bytes());
    match GraphView::parse(&b, 300) {
        Err(GraphError::Id {
            level: 0,
            offset,
            id: 300,
            ..
        }) => {
            assert_eq!(offset as usize, level0_edges_at)
        }
        other => panic!("{other:?}"),
    }
    // Unaligned placement parses and searches the same.
    let mut shifted = vec![0u8; 1];
    shifted.extend_from_slice(&bytes);
    assert!(GraphView::parse(&shifted[1..], 300).is_ok());
}

/// Seeded filtered walk: with a filter whose rows lie away from the query's neighbourhood
/// (a southern region), extra entry points sampled from the matching rows keep recall where
/// the walk from the query's own neighbourhood alone loses it; seeds out of range or repeated
/// are ignored, and only matching rows come back.
#[test]
fn seeded_filtered_walk_finds_a_distant_region() {
    use sat2cap::index::hnsw::search_filtered_seeded;
    let (data, bytes) = fixture();
    let n = (data.vectors.len() / DIM) as u32;
    let view = GraphView::parse(bytes, n).unwrap();
    let keep = |r: u32| data.points[r as usize].lat() < -45.0;
    let matching: Vec<u32> = (0..n).filter(|&r| keep(r)).collect();
    assert!(matching.len() > 500 && matching.len() < n as usize / 3);
    let stride = (matching.len() / 256).max(1);
    let mut seeds: Vec<u32> = matching.iter().step_by(stride).copied().collect();
    seeds.extend([n, n + 7, u32::MAX, seeds[0], seeds[1]]);
    let (mut plain, mut seeded) = (0.0, 0.0);
    let nq = 60;
    for i in 0..nq {
        let q = query_near(data, i, 7000 + i as u64);
        let truth = exact(data, &q, 10, keep);
        let a = search(&view, &data.vectors, DIM, &q, 10, 32, Some(&keep));
        let b = search_filtered_seeded(&view, &data.vectors, DIM, &q, 10, 32, Some(keep), &seeds);
        assert!(b.iter().all(|h| keep(h.row)));
        assert!(b.windows(2).all(|w| w[0].score >= w[1].score));
        plain += recall(&a, &truth);
        seeded += recall(&b, &truth);
    }
    let (plain, seeded) = (plain / nq as f64, seeded / nq as f64);
    println!("ef 32, lat < -45: recall@10 plain {plain:.3}, seeded {seeded:.3}");
    // Observed 0.973-0.978 (plain 0.940-0.952); the graph build is not reproducible, so the
    // bound leaves a margin.
    assert!(seeded >= 0.93, "seeded recall {seeded}");
    assert!(seeded + 0.01 >= plain, "seeded {seeded} < plain {plain}");
}

/// A walk whose steps are slow (here a filter that sleeps; in use, rows read from disk)
/// asks ahead for the pages of each step's rows: same answers as the same walk at speed.
#[test]
fn a_walk_slowed_as_by_the_disk_gives_the_same_answers() {
    let (data, bytes) = fixture();
    let n = (data.vectors.len() / DIM) as u32;
    let view = GraphView::parse(bytes, n).unwrap();
    let keep = |r: u32| r % 4 != 1;
    let slow = |r: u32| {
        std::thread::sleep(std::time::Duration::from_micros(60));
        keep(r)
    };
    for i in 0..3 {
        let q = query_near(data, i, 9100 + i as u64);
        let fast = search(&view, &data.vectors, DIM, &q, 10, 32, Some(&keep));
        let slowed = search(&view, &data.vectors, DIM, &q, 10, 32, Some(&slow));
        assert_eq!(fast, slowed, "query {i}");
        assert_eq!(fast.len(), 10);
    }
}

/// Upper-level membership: a level's nodes must be nodes of the level below, and its
/// edges must point at its own nodes; both are reported, a consistent graph parses.
#[test]
fn parse_checks_upper_level_membership() {
    use sat2cap::index::hnsw::layout::{GraphHeader, LevelLists};
    let n = 10u32;
    let header = GraphHeader {
        n,
        dim: 2,
        m: 2,
        entry: 4,
        ef_construction: 2,
    };
    let ring: Vec<Vec<u32>> = (0..n).map(|r| vec![(r + 1) % n]).collect();
    let level0 = LevelLists {
        nodes: Vec::new(),
        adjacency: ring,
    };
    let level = |nodes: Vec<u32>, adjacency: Vec<Vec<u32>>| LevelLists { nodes, adjacency };
    let write = |levels: &[LevelLists]| layout::write(header, levels).unwrap();
    let good = write(&[
        level0.clone(),
        level(vec![2, 4, 7], vec![vec![4], vec![7], vec![2]]),
        level(vec![4, 7], vec![vec![7], vec![4]]),
    ]);
    let view = GraphView::parse(&good, n).unwrap();
    assert_eq!(view.n_levels(), 3);
    assert_eq!(view.neighbours(2, 7).iter().collect::<Vec<_>>(), vec![4]);
    let reason_of = |bytes: &[u8]| match GraphView::parse(bytes, n) {
        Err(GraphError::Id { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    // Row 5 is on level 2 but not on level 1.
    let missing = write(&[
        level0.clone(),
        level(vec![2, 4, 7], vec![vec![4], vec![7], vec![2]]),
        level(vec![4, 5], vec![vec![5], vec![4]]),
    ]);
    assert_eq!(reason_of(&missing), "node missing from the level below");
    // A level-1 edge to row 3, which is not on level 1.
    let stray = write(&[
        level0,
        level(vec![2, 4, 7], vec![vec![4], vec![3], vec![2]]),
        level(vec![4, 7], vec![vec![7], vec![4]]),
    ]);
    assert_eq!(reason_of(&stray), "neighbour is not a node of this level");
}
