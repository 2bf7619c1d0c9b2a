//! The search API over a real database: several commits, replacements, deletes and a
//! compaction, filtered at selectivities from 100% down to 0.01%, against brute force.

use std::collections::HashSet;
use std::sync::Arc;

use sat2cap::geo::{haversine_km, Point};
use sat2cap::index::flat::dot_f16_f32;
use sat2cap::index::hnsw::{HnswParams, HnswSectionBuilder};
use sat2cap::query::filter::{BBox, Filter, Radius};
use sat2cap::query::planner::{FlatReason, Plan};
use sat2cap::query::QueryError;
use sat2cap::storage::{ExtraSections, SectionBuilder, Segment};
use sat2cap::testing::synth::{generate, query_near, SynthData};
use sat2cap::{Collection, Db, GraphOptions, IndexOptions, NewItem, OpenOptions};

const DIM: usize = 32;
const K: usize = 10;

fn opts() -> OpenOptions {
    OpenOptions::create_new().indexes(IndexOptions {
        graph: Some(GraphOptions {
            m: 16,
            ef_construction: 100,
            min_rows: 1_000,
        }),
        int8: false,
    })
}

fn vec_f32(d: &SynthData, row: usize) -> Vec<f32> {
    d.vectors[row * DIM..(row + 1) * DIM]
        .iter()
        .map(|x| x.to_f32())
        .collect()
}

fn add_row(db: &mut Db, d: &SynthData, id: u64, row: usize) {
    let v = vec_f32(d, row);
    let t = d.times[row];
    db.add(
        "c",
        NewItem {
            id,
            vector: &v,
            point: d.points[row],
            time: (t != i64::MIN).then_some(t),
            payload: Some(&format!("row {row}")),
        },
    )
    .unwrap();
}

/// Exact top-k ids over the live items (ties by lower id), from the snapshot's items.
fn brute(c: &Collection<'_>, q: &[f32], f: &Filter, k: usize) -> Vec<u64> {
    let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    let qn: Vec<f32> = q.iter().map(|x| x / norm).collect();
    let mut all: Vec<(f32, u64)> = c
        .iter()
        .map(|r| r.unwrap())
        .filter(|it| f.matches(it.point, it.time))
        .map(|it| (dot_f16_f32(it.vector, &qn), it.id))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

/// Builds: 3 graph segments, one small segment without a graph, replacements and deletes.
fn build(dir: &std::path::Path, d: &SynthData) -> Db {
    let mut db = Db::open(dir, opts()).unwrap();
    db.create_collection("c", DIM).unwrap();
    for r in 0..4_000 {
        add_row(&mut db, d, r as u64, r);
    }
    db.commit().unwrap();
    for r in 4_000..8_000 {
        add_row(&mut db, d, r as u64, r);
    }
    db.commit().unwrap();
    // Replace ids 0..400 with other rows' vectors and places.
    for i in 0..400 {
        add_row(&mut db, d, i as u64, 8_000 + i);
    }
    for r in 8_400..9_600 {
        add_row(&mut db, d, r as u64, r);
    }
    db.commit().unwrap();
    for id in 1_000..1_500u64 {
        db.delete("c", id).unwrap();
    }
    db.commit().unwrap();
    // A small segment: below min_rows, no graph.
    for r in 9_600..9_900 {
        add_row(&mut db, d, r as u64, r);
    }
    db.commit().unwrap();
    db
}

/// A radius around `center` holding about `target` live items (at least 1).
fn radius_for(c: &Collection<'_>, center: Point, target: usize) -> Filter {
    let mut ds: Vec<f64> = c
        .iter()
        .map(|r| haversine_km(center, r.unwrap().point))
        .collect();
    ds.sort_by(f64::total_cmp);
    let km = ds[target.clamp(1, ds.len()) - 1] + 1e-6;
    Filter::new().radius(Radius::new(center.lat(), center.lon(), km).unwrap())
}

fn check_buckets(c: &Collection<'_>, d: &SynthData, label: &str) {
    let live: Vec<Point> = c.iter().map(|r| r.unwrap().point).collect();
    let n = live.len();
    for &sel in &[1.0, 0.5, 0.1, 0.01, 0.001, 0.0001] {
        let (mut found, mut wanted) = (0usize, 0usize);
        for qi in 0..16usize {
            let q = query_near(d, qi % 20, 1_000 + qi as u64);
            let f = if sel == 1.0 {
                Filter::new()
            } else {
                let target = ((n as f64) * sel).round() as usize;
                radius_for(c, live[(qi * 613) % n], target)
            };
            let truth = brute(c, &q, &f, K);
            let res = c.search(&q).k(K).filter(f.clone()).run().unwrap();
            assert!(res.hits.len() <= K);
            assert_eq!(
                res.hits.len(),
                truth.len(),
                "{label} sel {sel}: short result"
            );
            let got: HashSet<u64> = res.ids().into_iter().collect();
            found += truth.iter().filter(|id| got.contains(id)).count();
            wanted += truth.len();
            // Best first, ties by lower id; every hit passes the filter.
            for w in res.hits.windows(2) {
                assert!(w[0].score > w[1].score || (w[0].score == w[1].score && w[0].id < w[1].id));
            }
            for h in &res.hits {
                assert!(f.matches(h.point, h.time));
                assert!(c.contains(h.id), "{label}: hit {} is not live", h.id);
            }
            // Plans: tiny filters scan exactly; unfiltered walks every graph.
            for p in &res.explain {
                match (sel, p.has_graph) {
                    (_, false) => {
                        assert!(matches!(p.plan, Plan::Flat { .. }), "{label}: {p:?}")
                    }
                    (s, true) if s <= 0.001 => assert!(
                        matches!(
                            p.plan,
                            Plan::Flat {
                                reason: FlatReason::FewCandidates,
                                ..
                            }
                        ),
                        "{label} sel {sel}: {p:?}"
                    ),
                    (s, true) if s == 1.0 && p.live == p.rows => {
                        assert!(matches!(p.plan, Plan::Graph { .. }), "{label}: {p:?}")
                    }
                    _ => {}
                }
            }
            // Exact mode equals brute force.
            let ex = c.search(&q).k(K).filter(f).exact(true).run().unwrap();
            assert_eq!(ex.ids(), truth, "{label} sel {sel}: exact differs");
        }
        let recall = found as f64 / wanted.max(1) as f64;
        eprintln!("{label}: selectivity {sel}: recall@10 {recall:.3}");
        assert!(recall >= 0.95, "{label} sel {sel}: recall {recall}");
    }
}

#[test]
fn cross_segment_search_matches_brute_force() {
    let d = generate(10_000, DIM, 20, 7);
    let dir = tempfile::tempdir().unwrap();
    let mut db = build(dir.path(), &d);
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    // Model: 9,900 ids, 500 deleted.
    assert_eq!(c.len(), 8_000 + 1_200 + 300 - 500); // ids 8000..8400 never added
    assert_eq!(c.storage().segments().len(), 4);
    assert!(c
        .storage()
        .segments()
        .iter()
        .any(|s| s.live_len() < s.len()));
    check_buckets(&c, &d, "multi-segment");
    // The same with the int8 rows of every segment resident.
    let r = c.make_resident().unwrap();
    if cfg!(target_os = "linux") {
        let with_int8 = c
            .storage()
            .segments()
            .iter()
            .filter(|s| s.section(sat2cap::index::quant::QUANT_KIND).is_some())
            .count();
        assert_eq!(r.segments, with_int8, "{r:?}");
    }
    check_buckets(&c, &d, "multi-segment, resident");
    // Replaced ids carry the new row's payload.
    let q = vec_f32(&d, 8_000 + 7);
    let top = c.search(&q).k(1).run().unwrap();
    assert_eq!(top.hits[0].id, 7);
    assert_eq!(top.hits[0].payload.as_deref(), Some("row 8007"));
    // Deleted ids never come back, even asked for everything.
    let all = c.search(&q).k(1_000_000).run().unwrap();
    assert_eq!(all.hits.len(), c.len());
    assert!(all.hits.iter().all(|h| !(1_000..1_500).contains(&h.id)));

    // The derived data is kept with the segment and reused by the next snapshot that
    // shares it.
    let first = c.prepared_address(0).expect("cache filled");
    add_row(&mut db, &d, 20_000, 3);
    db.commit().unwrap();
    let snap_next = db.snapshot();
    assert_eq!(
        snap_next.collection("c").unwrap().prepared_address(0),
        Some(first)
    );
    db.compact("c").unwrap();
    let snap2 = db.snapshot();
    let c2 = snap2.collection("c").unwrap();
    assert_eq!(c2.storage().segments().len(), 1);
    assert!(c2.prepared_address(0).is_none(), "open does no work");
    c2.prepare().unwrap();
    let prepared = c2.prepared_address(0).expect("prepared");
    check_buckets(&c2, &d, "compacted");
    // Queries reused the prepared data rather than recomputing it.
    assert_eq!(c2.prepared_address(0), Some(prepared));
    // The old snapshot still answers, with its cache intact.
    assert_eq!(c.prepared_address(0), Some(first));
    assert_eq!(c.search(&q).k(1).run().unwrap().hits[0].id, 7);
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let d = generate(300, DIM, 4, 3);
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path(), opts()).unwrap();
    db.create_collection("c", DIM).unwrap();
    db.create_collection("empty", DIM).unwrap();
    for r in 0..300 {
        add_row(&mut db, &d, r as u64, r);
    }
    db.commit().unwrap();
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    let q = vec_f32(&d, 0);
    assert_eq!(c.search(&q).k(0).run(), Err(QueryError::ZeroK));
    let mut nan = q.clone();
    nan[3] = f32::NAN;
    assert!(matches!(
        c.search(&nan).run(),
        Err(QueryError::NonFinite { index: 3 })
    ));
    assert_eq!(c.search(&[0.0; DIM]).run(), Err(QueryError::ZeroVector));
    assert!(matches!(
        c.search(&q[..5]).run(),
        Err(QueryError::Dimension { .. })
    ));
    assert!(matches!(
        c.search(&q).within_radius(91.0, 0.0, 10.0).run(),
        Err(QueryError::Latitude(_))
    ));
    assert!(c.search(&q).within_bbox(0.0, 10.0, 1.0, 5.0).run().is_err());
    assert!(c.search(&q).within_polygon(&[(0.0, 0.0)]).run().is_err());
    assert!(c.search(&q).between(10, 5).run().is_err());
    assert!(c.search(&q).ef(0).run().is_err());
    for bad in [0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, 64.001] {
        assert!(
            matches!(c.search(&q).effort(bad).run(), Err(QueryError::Effort(e)) if e.to_bits() == bad.to_bits()),
            "effort {bad}"
        );
    }
    assert_eq!(
        c.search(&q).ef(32).effort(0.5).run(),
        Err(QueryError::EfAndEffort)
    );
    assert_eq!(c.search(&q).effort(64.0).run().unwrap().hits.len(), K);
    assert!(c.search(&q).geo_ranked(91.0, 0.0, 0.5, 10.0).run().is_err());
    assert!(c.search(&q).geo_ranked(0.0, 0.0, 1.5, 10.0).run().is_err());
    // Huge k: everything, once, best first.
    let all = c.search(&q).k(usize::MAX).run().unwrap();
    assert_eq!(all.hits.len(), 300);
    assert_eq!(all.hits[0].id, 0);
    assert!(
        all.explain.iter().all(|p| !p.has_graph),
        "300 rows: below min_rows"
    );
    // An empty collection answers nothing.
    let e = snap.collection("empty").unwrap();
    assert!(e.search(&q).run().unwrap().hits.is_empty());
    // Geo ranking with alpha = 0 ranks by distance alone.
    let p = d.points[42];
    let g = c
        .search(&q)
        .k(1)
        .geo_ranked(p.lat(), p.lon(), 0.0, 50.0)
        .run()
        .unwrap();
    assert_eq!(haversine_km(g.hits[0].point, p), 0.0);
}

struct Garbage;
impl SectionBuilder for Garbage {
    fn build(
        &self,
        _c: &str,
        _s: &Segment,
    ) -> Result<ExtraSections, Box<dyn std::error::Error + Send + Sync>> {
        Ok(vec![(100, b"S2HG not a graph at all".to_vec())])
    }
}

#[test]
fn corrupt_graph_section_is_a_typed_error() {
    let d = generate(50, DIM, 2, 5);
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(
        dir.path(),
        OpenOptions::create_new()
            .indexes(IndexOptions::none())
            .section_builder(Arc::new(Garbage)),
    )
    .unwrap();
    db.create_collection("c", DIM).unwrap();
    for r in 0..50 {
        add_row(&mut db, &d, r as u64, r);
    }
    db.commit().unwrap();
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    let q = vec_f32(&d, 1);
    for _ in 0..2 {
        let r = c.search(&q).run();
        assert!(matches!(r, Err(QueryError::Corrupt(_))), "{r:?}");
    }
}

#[test]
fn graph_layout_rebuilds_the_same_view() {
    use sat2cap::index::hnsw::{build_graph, GraphView};
    let d = generate(2_000, DIM, 8, 9);
    let p = HnswParams {
        m: 8,
        ef_construction: 32,
        ef_search: 32,
    };
    let bytes = build_graph(&d.vectors, DIM, &p).unwrap();
    let view = GraphView::parse(&bytes, 2_000).unwrap();
    let layout = view.layout(&bytes);
    // A copy of the bytes at another address gives the same graph.
    let copy = bytes.clone();
    let again = layout.view(&copy).expect("same length");
    assert!(view.n_levels() > 1);
    assert_eq!(again.n_levels(), view.n_levels());
    assert_eq!(again.entry(), view.entry());
    for level in 0..view.n_levels() {
        assert_eq!(again.level_len(level), view.level_len(level));
        for row in 0..2_000u32 {
            let a: Vec<u32> = view.neighbours(level, row).iter().collect();
            let b: Vec<u32> = again.neighbours(level, row).iter().collect();
            assert_eq!(a, b);
        }
    }
    assert!(layout.view(&bytes[..bytes.len() - 4]).is_none());
}

/// Index sections of kinds the reader does not know (102 held a calibrated beam in files of
/// an earlier build; 150 is unassigned) are left unread: searches and verify behave as
/// without them.
#[test]
fn unknown_index_sections_are_left_unread() {
    let d = generate(1_200, DIM, 4, 5);
    let build = |builder: Arc<dyn SectionBuilder>| {
        let dir = tempfile::tempdir().unwrap();
        let opts = OpenOptions::create_new()
            .indexes(IndexOptions::none())
            .section_builder(builder);
        let mut db = Db::open(dir.path(), opts).unwrap();
        db.create_collection("c", DIM).unwrap();
        for r in 0..1_200 {
            add_row(&mut db, &d, r as u64, r);
        }
        db.commit().unwrap();
        (dir, db)
    };
    let (_a, with) = build(Arc::new(Edited(|out| {
        assert_eq!(out.len(), 2, "the graph and walk hints sections");
        out.push((102, vec![0xff; 28]));
        out.push((150, b"not an index".to_vec()));
    })));
    let (_b, without) = build(Arc::new(HnswSectionBuilder::default()));
    let (sa, sb) = (with.snapshot(), without.snapshot());
    assert_eq!(
        sa.collection("c").unwrap().storage().segments()[0].section(150),
        Some(&b"not an index"[..])
    );
    sa.verify(&sat2cap::Silent).unwrap();
    for q in 0..20 {
        let v = vec_f32(&d, q * 37);
        let ra = sa.collection("c").unwrap().search(&v).k(10).run().unwrap();
        let rb = sb.collection("c").unwrap().search(&v).k(10).run().unwrap();
        assert_eq!(ra.hits, rb.hits, "query {q}");
        assert!(
            matches!(ra.explain[0].plan, Plan::Graph { .. }),
            "{:?}",
            ra.explain[0].plan
        );
    }
}

/// A change to the sections `HnswSectionBuilder` writes (`(kind, bytes)` pairs: 100 the
/// graph, 104 the walk hints).
type Edit = fn(&mut ExtraSections);

/// The graph sections as `HnswSectionBuilder` writes them, then changed by an [`Edit`].
struct Edited(Edit);
impl SectionBuilder for Edited {
    fn build(
        &self,
        c: &str,
        s: &Segment,
    ) -> Result<ExtraSections, Box<dyn std::error::Error + Send + Sync>> {
        let mut out = HnswSectionBuilder::default().build(c, s)?;
        (self.0)(&mut out);
        Ok(out)
    }
}

/// A database of the 2,500 rows of `d` whose graph sections `edit` changed.
fn edited_db(d: &SynthData, edit: Edit) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::create_new()
        .indexes(IndexOptions::none())
        .section_builder(Arc::new(Edited(edit)));
    let mut db = Db::open(dir.path(), opts).unwrap();
    db.create_collection("c", DIM).unwrap();
    for r in 0..2_500 {
        add_row(&mut db, d, r as u64, r);
    }
    db.commit().unwrap();
    (dir, db)
}

/// How many hits collection "c" of `snap` gives `q` (top `K`, exact scan or not).
fn hit_count(snap: &sat2cap::Snapshot, q: &[f32], exact: bool) -> usize {
    let c = snap.collection("c").unwrap();
    c.search(q).k(K).exact(exact).run().unwrap().hits.len()
}

/// What `verify` says of `snap`, which must fail.
fn verify_error(snap: &sat2cap::Snapshot) -> String {
    snap.verify(&sat2cap::Silent).unwrap_err().to_string()
}

fn section_mut(out: &mut ExtraSections, kind: u32) -> &mut Vec<u8> {
    &mut out.iter_mut().find(|(k, _)| *k == kind).expect("section").1
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Where a walk hints section's prefixes end (see FORMAT.md).
fn hints_prefixes_end(h: &[u8]) -> usize {
    let (dims, count) = (get_u32(h, 20) as usize, get_u32(h, 24) as usize);
    32 + 4 * count + 2 * count * dims
}

/// Where a walk hints section's int8 rows start (see FORMAT.md).
fn hints_int8_at(h: &[u8]) -> usize {
    hints_prefixes_end(h).next_multiple_of(64)
}

/// Where level 0's offsets and neighbours start in a graph section (see FORMAT.md).
fn level0_at(graph: &[u8]) -> (usize, usize) {
    let (n, levels) = (get_u32(graph, 8) as usize, get_u32(graph, 20) as usize);
    let offsets = 32 + 8 * levels;
    (offsets, offsets + 4 * (n + 1))
}

#[test]
fn walk_hints_give_the_answers_of_the_values_worked_out_without_them() {
    use sat2cap::index::hnsw::GraphView;
    use sat2cap::query::planner::{search_segment, PlannerParams, SearchRequest, SegmentIndex};
    let d = generate(2_500, DIM, 6, 21);
    let (_dir, db) = edited_db(&d, |_| {});
    let snap = db.snapshot();
    // verify works the slack and the sample out again and compares.
    snap.verify(&sat2cap::Silent).unwrap();
    let c = snap.collection("c").unwrap();
    let seg = &c.storage().segments()[0];
    let hints = seg.section(104).expect("walk hints");
    let graph = GraphView::parse(seg.section(100).unwrap(), 2_500).unwrap();
    let points = seg.points().unwrap();
    let params = PlannerParams {
        hop_slack: true,
        ..PlannerParams::default()
    };
    let index = |with_hints: bool| {
        let i = SegmentIndex::new(seg.vectors(), DIM, &points, None, Some(graph.clone()))
            .unwrap()
            .with_params(params);
        if with_hints {
            i.with_walk_hints(hints)
        } else {
            i
        }
    };
    let (a, b) = (index(true), index(false));
    let wide = Filter::new().radius(Radius::new(0.0, 0.0, 8_000.0).unwrap());
    for q in 0..30 {
        let v = query_near(&d, q % 6, q as u64);
        for filter in [Filter::new(), wide.clone()] {
            let req = SearchRequest {
                query: v.clone(),
                k: K,
                filter,
                exact: false,
                ef: None,
                effort: None,
            };
            let (ra, rb) = (
                search_segment(&a, &req).unwrap(),
                search_segment(&b, &req).unwrap(),
            );
            assert_eq!(ra, rb, "query {q}");
        }
    }
}

#[test]
fn walks_steered_by_the_int8_copy_return_f16_scores_and_the_same_neighbours() {
    use sat2cap::index::hnsw::{build_graph, GraphView};
    use sat2cap::index::quant::{build_quantized, QuantView};
    use sat2cap::query::planner::{search_segment, PlannerParams, SearchRequest, SegmentIndex};
    let n = 4_000;
    let d = generate(n, DIM, 12, 24);
    let p = HnswParams {
        m: 12,
        ef_construction: 64,
        ef_search: 32,
    };
    let graph_bytes = build_graph(&d.vectors, DIM, &p).unwrap();
    let graph = GraphView::parse(&graph_bytes, n as u32).unwrap();
    let quant_bytes = build_quantized(&d.vectors, DIM);
    let quant = QuantView::parse(&quant_bytes, n, DIM).unwrap();
    let index = |int8_walk: bool| {
        let params = PlannerParams {
            hop_slack: true,
            int8_walk,
            ..PlannerParams::default()
        };
        SegmentIndex::new(&d.vectors, DIM, &d.points, None, Some(graph.clone()))
            .unwrap()
            .with_quantized(quant)
            .with_params(params)
    };
    let (int8, f16) = (index(true), index(false));
    let wide = Filter::new().radius(Radius::new(0.0, 0.0, 9_000.0).unwrap());
    let (mut same, mut total) = (0usize, 0usize);
    for q in 0..40 {
        let v = query_near(&d, q % 12, 100 + q as u64);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (filter, ef) in [
            (Filter::new(), None),
            (Filter::new(), Some(48)),
            (wide.clone(), None),
        ] {
            let req = SearchRequest {
                query: v.clone(),
                k: K,
                filter,
                exact: false,
                ef,
                effort: None,
            };
            let unfiltered = req.filter.is_empty();
            let (a, plan) = search_segment(&int8, &req).unwrap();
            assert!(
                !unfiltered || matches!(plan, Plan::Graph { .. }),
                "{plan:?}"
            );
            let (b, _) = search_segment(&f16, &req).unwrap();
            assert_eq!(a.len(), K);
            // Every score is the f16 one (as the f16 walk gives it; within float rounding
            // of this test's own dot product), best first.
            let unit: Vec<f32> = v.iter().map(|x| x / norm).collect();
            for h in &a {
                let row = &d.vectors[h.row as usize * DIM..(h.row as usize + 1) * DIM];
                assert!(
                    (h.score - dot_f16_f32(row, &unit)).abs() < 1e-6,
                    "query {q}"
                );
                if let Some(g) = b.iter().find(|g| g.row == h.row) {
                    assert_eq!(h.score.to_bits(), g.score.to_bits(), "query {q}");
                    same += 1;
                }
            }
            assert!(a.windows(2).all(|w| w[0].score >= w[1].score));
            total += K;
        }
    }
    // The int8 error moves a walk only where rows nearly tie.
    let overlap = same as f64 / total as f64;
    assert!(overlap >= 0.97, "overlap with the f16 walk {overlap}");
}

#[test]
fn damaged_walk_hints_are_errors() {
    let d = generate(2_500, DIM, 6, 22);
    let q = vec_f32(&d, 7);
    // Unreadable: the walk that reads them fails, naming the section; verify too.
    let unreadable: [Edit; 6] = [
        |out| section_mut(out, 104)[12..16].copy_from_slice(&f32::NAN.to_le_bytes()),
        |out| section_mut(out, 104).truncate(100),
        |out| {
            let h = section_mut(out, 104);
            put_u32(h, 32, 2_500); // the first sample row: not a row
        },
        |out| {
            let h = section_mut(out, 104);
            let at = hints_prefixes_end(h) - 2; // the last prefix value
            h[at..at + 2].copy_from_slice(&half::f16::INFINITY.to_bits().to_le_bytes());
        },
        |out| {
            let h = section_mut(out, 104);
            let at = hints_int8_at(h) + 64; // the first sample row's int8 scale
            h[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        },
        |out| {
            let h = section_mut(out, 104);
            let at = hints_int8_at(h) + 16; // the int8 rows' count
            put_u32(h, at, 7);
        },
    ];
    for (i, edit) in unreadable.into_iter().enumerate() {
        let (_dir, db) = edited_db(&d, edit);
        let snap = db.snapshot();
        let r = snap.collection("c").unwrap().search(&q).k(K).run();
        match r {
            Err(QueryError::Corrupt(m)) => assert!(m.contains("walk hints section"), "{i}: {m}"),
            other => panic!("{i}: {other:?}"),
        }
        let e = verify_error(&snap);
        assert!(e.contains("walk hints section"), "{i}: {e}");
    }
    // Readable but not what the data gives (a slack of 0.5, a sample row moved): searches
    // use them; verify, which works them out again, reports the difference.
    let wrong: [Edit; 3] = [
        |out| section_mut(out, 104)[12..16].copy_from_slice(&0.5f32.to_le_bytes()),
        |out| {
            let h = section_mut(out, 104);
            let r = get_u32(h, 32);
            put_u32(h, 32, r + 1);
        },
        |out| {
            let h = section_mut(out, 104);
            let last = h.len() - 1; // the last sample row's last int8 code
            h[last] = if h[last] == 3 { 4 } else { 3 };
        },
    ];
    for (i, edit) in wrong.into_iter().enumerate() {
        let (_dir, db) = edited_db(&d, edit);
        let snap = db.snapshot();
        assert_eq!(hit_count(&snap, &q, false), K);
        let e = verify_error(&snap);
        assert!(e.contains("walk hints section"), "{i}: {e}");
    }
    // The largest finite slack, times the largest effort, still expands every candidate
    // (it does not overflow into a slack the walk would take as none).
    let (_dir, db) = edited_db(&d, |out| {
        section_mut(out, 104)[12..16].copy_from_slice(&f32::MAX.to_le_bytes())
    });
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    let narrow = c.search(&q).k(K).effort(0.01).run().unwrap();
    let r = c.search(&q).k(K).effort(64.0).run().unwrap();
    for (r, slack) in [(&narrow, f32::MAX * 0.01), (&r, f32::MAX)] {
        match r.explain[0].plan {
            Plan::Graph {
                slack: Some(s),
                scored,
                ..
            } => {
                assert_eq!(s, slack);
                assert!(
                    scored >= 2_000,
                    "{scored} of 2,500 rows scored at slack {s}"
                );
            }
            ref p => panic!("{p:?}"),
        }
    }
    assert_eq!(r.ids(), brute(&c, &q, &Filter::new(), K));
}

#[test]
fn damaged_level0_lists_are_errors_of_the_walks_that_read_them() {
    use sat2cap::index::hnsw::GraphView;
    let d = generate(2_500, DIM, 6, 23);
    let q = vec_f32(&d, 11);
    let damaged: [(Edit, &str); 2] = [
        // Every list's first neighbour out of range.
        (
            |out| {
                let g = section_mut(out, 100);
                let (offsets, edges) = level0_at(g);
                for row in 0..2_500 {
                    let first = get_u32(g, offsets + 4 * row) as usize;
                    if first < get_u32(g, offsets + 4 * (row + 1)) as usize {
                        put_u32(g, edges + 4 * first, 2_500 + row as u32);
                    }
                }
            },
            "neighbour id >= n",
        ),
        // Every list ending past the neighbour array.
        (
            |out| {
                let g = section_mut(out, 100);
                let (offsets, _) = level0_at(g);
                for row in 1..=2_500 {
                    put_u32(g, offsets + 4 * row, u32::MAX - 2_500 + row as u32);
                }
            },
            "offset past the neighbour array",
        ),
    ];
    for (edit, why) in damaged {
        let (_dir, db) = edited_db(&d, edit);
        let snap = db.snapshot();
        let seg = &snap.collection("c").unwrap().storage().segments()[0];
        let graph = seg.section(100).unwrap();
        // Opening reads no level-0 list; the whole check refuses the section.
        assert!(GraphView::open(graph, 2_500).is_ok());
        assert!(GraphView::parse(graph, 2_500).is_err());
        let r = snap
            .collection("c")
            .unwrap()
            .search(&q)
            .k(K)
            .exact(false)
            .run();
        match r {
            Err(QueryError::Corrupt(m)) => {
                assert!(m.contains("graph section") && m.contains(why), "{m}")
            }
            other => panic!("{why}: {other:?}"),
        }
        // The exact scan does not read the graph.
        assert_eq!(hit_count(&snap, &q, true), K);
        let e = verify_error(&snap);
        assert!(e.contains("graph section"), "{e}");
    }
}

#[test]
fn upper_levels_are_read_by_verify_not_by_searches() {
    use sat2cap::query::planner::PlannerParams;
    // Walks start on level 0 from seeds (the routing sample's best rows, or a sample of the
    // filter's rows): damage on the levels above is verify's to find, and changes no
    // answer. A walk without seeds (no routing sample) descends: it reads them, and fails.
    let d = generate(2_500, DIM, 6, 29);
    let (_a, whole) = edited_db(&d, |_| {});
    let (_b, damaged) = edited_db(&d, |out| {
        let g = section_mut(out, 100);
        let levels = get_u32(g, 20) as usize;
        assert!(levels > 1, "2,500 rows make more than one level");
        let (_, edges0) = level0_at(g);
        let level1 = edges0 + 4 * get_u32(g, 36) as usize;
        let nodes1 = get_u32(g, 40) as usize;
        put_u32(g, level1 + 4 * nodes1 + 4 * (nodes1 + 1), 2_500 + 5);
    });
    let (whole, damaged) = (whole.snapshot(), damaged.snapshot());
    let e = verify_error(&damaged);
    assert!(
        e.contains("graph section") && e.contains("neighbour"),
        "{e}"
    );
    let (a, b) = (
        whole.collection("c").unwrap(),
        damaged.collection("c").unwrap(),
    );
    // The search builder's settings, with filters of more than 50 rows walked.
    let walked = PlannerParams {
        ef_search: 64,
        hop_slack: true,
        flat_max_rows: 50,
        flat_max_fraction: 0.0,
        ..PlannerParams::default()
    };
    let boxes = [
        None,
        Some(BBox::new(-180.0, -90.0, 180.0, 90.0).unwrap()),
        Some(BBox::new(-180.0, -90.0, 0.0, 90.0).unwrap()),
    ];
    let mut walks = 0;
    for (row, bbox) in (0..40).flat_map(|r| boxes.iter().map(move |b| (r * 61, b))) {
        let q = vec_f32(&d, row);
        let run = |c: &Collection<'_>, params: PlannerParams| {
            let s = c.search(&q).k(K).exact(false).planner(params);
            match bbox {
                Some(b) => s.filter(Filter::new().bbox(*b)),
                None => s,
            }
            .run()
        };
        let (ra, rb) = (run(&a, walked).unwrap(), run(&b, walked).unwrap());
        assert_eq!(ra.hits, rb.hits, "row {row} box {bbox:?}");
        walks += usize::from(matches!(rb.explain[0].plan, Plan::Graph { .. }));
        // No routing sample: the unfiltered walk descends.
        let descends = PlannerParams {
            routing_stride: 0,
            ..walked
        };
        if bbox.is_none() {
            assert_eq!(run(&a, descends).unwrap().hits.len(), K);
            match run(&b, descends) {
                Err(QueryError::Corrupt(m)) => assert!(m.contains("graph section"), "{m}"),
                other => panic!("a descent through damaged levels: {other:?}"),
            }
        }
    }
    // Every unfiltered query and most filtered ones walked.
    assert!(walks >= 80, "{walks} of 120 searches walked");
}

#[test]
fn ties_break_by_id_when_rows_are_stored_in_spatial_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path(), opts()).unwrap();
    db.create_collection("c", 4).unwrap();
    let same = [1.0f32, 0.0, 0.0, 0.0];
    let worse = [1.0f32, 1.0, 0.0, 0.0];
    for id in 0..300u64 {
        // Ids walk west and south while the Hilbert curve runs its own way: row order is not
        // id order. Every third item scores lower; the rest tie exactly.
        let point = Point::new(80.0 - id as f64 * 0.5, 170.0 - id as f64 * 1.1).unwrap();
        let v = if id % 3 == 0 { &worse } else { &same };
        db.add(
            "c",
            NewItem {
                id,
                vector: v,
                point,
                time: None,
                payload: None,
            },
        )
        .unwrap();
    }
    db.commit().unwrap();
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    let seg = &c.storage().segments()[0];
    assert!(seg.id_order().is_some(), "rows are out of id order");
    let ids = |r: sat2cap::SearchResults| r.hits.iter().map(|h| h.id).collect::<Vec<u64>>();
    let tied: Vec<u64> = (0..300).filter(|i| i % 3 != 0).collect();
    for exact in [false, true] {
        let got = ids(c.search(&same).k(7).exact(exact).run().unwrap());
        assert_eq!(got, tied[..7], "exact {exact}");
    }
    // A radius around the middle of the track: the smallest tied ids inside it.
    let centre = Point::new(80.0 - 150.0 * 0.5, 170.0 - 150.0 * 1.1).unwrap();
    let f = Filter::new().radius(Radius::new(centre.lat(), centre.lon(), 1500.0).unwrap());
    let inside: Vec<u64> = tied
        .iter()
        .copied()
        .filter(|&i| {
            let p = Point::new(80.0 - i as f64 * 0.5, 170.0 - i as f64 * 1.1).unwrap();
            haversine_km(p, centre) <= 1500.0
        })
        .collect();
    assert!(inside.len() > 10, "{}", inside.len());
    let got = ids(c.search(&same).k(5).filter(f).run().unwrap());
    assert_eq!(got, inside[..5]);
    // The same with a deleted tie: the next id takes its place.
    db.delete("c", tied[0]).unwrap();
    db.commit().unwrap();
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    let got = ids(c.search(&same).k(3).run().unwrap());
    assert_eq!(got, tied[1..4]);
}

#[test]
fn id_row_order_writes_no_id_order_section() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts().row_order(sat2cap::RowOrder::Id);
    let mut db = Db::open(dir.path(), o).unwrap();
    db.create_collection("c", 2).unwrap();
    for id in [9u64, 2, 5, 7] {
        let point = Point::new(id as f64 * 3.0, -(id as f64) * 17.0).unwrap();
        let v = [1.0f32, id as f32];
        let item = NewItem {
            id,
            vector: &v,
            point,
            time: None,
            payload: None,
        };
        db.add("c", item).unwrap();
    }
    db.commit().unwrap();
    let snap = db.snapshot();
    let seg = &snap.collection("c").unwrap().storage().segments()[0];
    assert!(seg.id_order().is_none());
    let ids: Vec<u64> = (0..4).map(|r| seg.id(r).unwrap()).collect();
    assert_eq!(ids, [2, 5, 7, 9]);
    snap.verify(&sat2cap::Silent).unwrap();
}

/// Segments with the int8 copy (`QuantSectionBuilder`) answer every exact scan exactly as
/// segments without it: same ids, same scores, at every selectivity and with `exact`.
#[test]
fn int8_copy_gives_the_same_answers() {
    let d = generate(6_000, DIM, 20, 11);
    let make = |quant: bool| {
        let dir = tempfile::tempdir().unwrap();
        let o = opts().indexes(IndexOptions {
            graph: Some(GraphOptions {
                m: 16,
                ef_construction: 100,
                min_rows: 1_000,
            }),
            int8: quant,
        });
        let mut db = Db::open(dir.path(), o).unwrap();
        db.create_collection("c", DIM).unwrap();
        for r in 0..6_000 {
            add_row(&mut db, &d, r as u64, r);
        }
        db.commit().unwrap();
        for id in (0..6_000u64).step_by(13) {
            db.delete("c", id).unwrap();
        }
        db.commit().unwrap();
        (dir, db)
    };
    let (_a, plain) = make(false);
    let (_b, quant) = make(true);
    let (sp, sq) = (plain.snapshot(), quant.snapshot());
    let (cp, cq) = (sp.collection("c").unwrap(), sq.collection("c").unwrap());
    assert!(cq.storage().segments()[0]
        .section(sat2cap::index::quant::QUANT_KIND)
        .is_some());
    sq.verify(&sat2cap::Silent).unwrap();
    let hits = |c: &Collection<'_>, q: &[f32], f: &Filter, exact: bool| {
        let r = c
            .search(q)
            .k(K)
            .filter(f.clone())
            .exact(exact)
            .run()
            .unwrap();
        r.hits
            .iter()
            .map(|h| (h.id, h.score.to_bits()))
            .collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<f32>, Filter)> = [6_000usize, 3_000, 600, 60, 6]
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            let row = i * 997 % 6_000;
            (
                vec_f32(&d, (row + 5) % 6_000),
                radius_for(&cp, d.points[row], target),
            )
        })
        .collect();
    let answers = |c: &Collection<'_>| {
        let mut all = Vec::new();
        for (q, f) in &cases {
            for exact in [false, true] {
                all.push(hits(c, q, f, exact));
            }
        }
        all
    };
    let from_file = answers(&cq);
    assert_eq!(answers(&cp), from_file);
    // A resident copy of the int8 section gives the same answers, bit for bit; a second
    // call copies nothing more; a collection without the int8 copy has nothing to copy.
    let section = cq.storage().segments()[0]
        .section(sat2cap::index::quant::QUANT_KIND)
        .unwrap()
        .len() as u64;
    let mapped = cq.int8_address(0).expect("an int8 section");
    // Searches running while another thread makes the copy answer the same.
    let r = std::thread::scope(|scope| {
        let searching = scope.spawn(|| (0..3).map(|_| answers(&cq)).collect::<Vec<_>>());
        let r = cq.make_resident().unwrap();
        for during in searching.join().unwrap() {
            assert_eq!(during, from_file);
        }
        r
    });
    if cfg!(target_os = "linux") {
        assert_eq!(r.segments, 1);
        assert!(r.bytes >= section && r.bytes < section + (2 << 20), "{r:?}");
        // The searches now read the copy, and so do those of another snapshot sharing
        // the segment.
        let copy = cq.int8_address(0).unwrap();
        assert_ne!(copy, mapped);
        let again = quant.snapshot();
        assert_eq!(again.collection("c").unwrap().int8_address(0), Some(copy));
    }
    assert_eq!(cq.make_resident().unwrap(), r);
    assert_eq!(answers(&cq), from_file);
    let none = cp.make_resident().unwrap();
    assert_eq!((none.bytes, none.segments), (0, 0));
    assert_eq!(cp.int8_address(0), None);
}

/// Without an `ef`, a walk keeps the best `k` and expands every candidate within the graph's
/// hop slack of the `k`-th (the plan reports the slack, from the data); queries between the
/// clusters (mixtures of rows from two clusters, plus noise) keep recall@10 >= 0.97 against
/// the exact scan. `.ef(n)` still asks for a beam of `n`; `.effort(e)` scales the slack by
/// `e`: the walks score fewer rows below 1 and more above, and miss no fewer below 1 than
/// at 1 and no more above.
#[test]
fn default_walks_go_as_far_as_the_data_says() {
    use sat2cap::index::hnsw::hop_slack;
    use sat2cap::testing::synth::generate_low_rank;
    let n = 6_000;
    let d = generate_low_rank(n, DIM, 40, 31);
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path().join("db"), opts()).unwrap();
    db.create_collection("c", DIM).unwrap();
    for r in 0..n {
        add_row(&mut db, &d, r as u64, r);
    }
    db.commit().unwrap();
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    let seg = &c.storage().segments()[0];
    let graph =
        sat2cap::index::hnsw::GraphView::parse(seg.section(100).unwrap(), n as u32).unwrap();
    let expected = hop_slack(&graph, seg.vectors(), DIM).expect("a graph with edges");
    assert!(expected > 0.0 && expected < 1.0, "{expected}");
    let mut total = 0.0;
    let queries = 40;
    // Per effort (0.1, 1, 2): rows scored and recall summed over the queries.
    let efforts = [0.1f32, 1.0, 2.0];
    let mut scored = [0u64; 3];
    let mut found = [0usize; 3];
    for i in 0..queries {
        let (a, b) = ((i * 131) % n, (i * 977 + 17) % n);
        let mut q: Vec<f32> = vec_f32(&d, a)
            .iter()
            .zip(vec_f32(&d, b))
            .map(|(x, y)| x + 0.7 * y)
            .collect();
        let noise = query_near(&d, i, 1_000 + i as u64);
        q.iter_mut().zip(&noise).for_each(|(x, e)| *x += 0.5 * e);
        let r = c.search(&q).k(K).run().unwrap();
        match r.explain[0].plan {
            Plan::Graph { slack, ef, .. } => {
                assert_eq!(slack, Some(expected));
                assert_eq!(ef, K);
            }
            p => panic!("{p:?}"),
        }
        let truth: HashSet<u64> = brute(&c, &q, &Filter::new(), K).into_iter().collect();
        total += r.ids().iter().filter(|id| truth.contains(id)).count() as f64 / K as f64;
        for (j, &e) in efforts.iter().enumerate() {
            let r = c.search(&q).k(K).effort(e).run().unwrap();
            match r.explain[0].plan {
                Plan::Graph {
                    slack: Some(s),
                    scored: rows,
                    ..
                } => {
                    assert_eq!(s, expected * e);
                    scored[j] += rows;
                }
                p => panic!("{p:?}"),
            }
            found[j] += r.ids().iter().filter(|id| truth.contains(id)).count();
        }
        let beam = c.search(&q).k(K).ef(48).run().unwrap();
        assert!(
            matches!(
                beam.explain[0].plan,
                Plan::Graph {
                    slack: None,
                    ef: 48,
                    ..
                }
            ),
            "{:?}",
            beam.explain[0].plan
        );
    }
    let recall = total / queries as f64;
    assert!(recall >= 0.97, "recall@10 {recall}");
    assert!(
        scored[0] < scored[1] && scored[1] < scored[2],
        "rows scored at efforts {efforts:?}: {scored:?}"
    );
    assert!(
        found[0] <= found[1] && found[1] <= found[2] && found[0] < found[2],
        "true neighbours found at efforts {efforts:?}: {found:?}"
    );
}
