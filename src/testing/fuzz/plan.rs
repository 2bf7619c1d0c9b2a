//! The `filter_plan` body: query JSONL lines run against a fixed two-segment collection,
//! exactly and through the planner, checked against a brute force over a model.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::geo::Point;
use crate::index::flat::dot_f16_f32;
use crate::io::query_jsonl::parse_query_line;
use crate::query::planner::{normalise_query, PlannerParams};
use crate::testing::MemDirectory;
use crate::{
    Db, Filter, FlatReason, GraphOptions, IndexOptions, NewItem, OpenOptions, Plan, QueryError,
    SearchResults, Snapshot,
};

/// Dimension of the `filter_plan` collection.
pub const PLAN_DIM: usize = 4;

/// What the `filter_plan` collection must hold: id -> (point, time); vectors are read back.
struct PlanFixture {
    snapshot: Snapshot,
    /// Live items: id -> (stored vector, point, time).
    model: BTreeMap<u64, (Vec<f16>, Point, Option<i64>)>,
}

/// Planner knobs small enough that the fixture's segments take the graph path.
pub const PLAN_PARAMS: PlannerParams = PlannerParams {
    flat_max_rows: 8,
    flat_max_fraction: 0.02,
    ef_search: 16,
    max_ef_widening: 8,
    filtered_ef_min: 16,
    walk_budget: 0.25,
    far_gap: 0.3,
    routing_stride: 64,
    hop_slack: true,
    int8_walk: true,
};

fn plan_item(r: &mut ChaCha8Rng) -> (Vec<f32>, Point, Option<i64>) {
    let v: Vec<f32> = (0..PLAN_DIM)
        .map(|_| r.random_range(-1.0f32..1.0))
        .collect();
    // Edges on purpose: poles, the antimeridian (stored at -180), exact integers.
    let (lat, lon) = match r.random_range(0..10) {
        0 => (
            [90.0, -90.0][r.random_range(0..2)],
            r.random_range(-180.0..180.0),
        ),
        1 => (
            r.random_range(-90.0..=90.0),
            [-180.0, 179.999_999][r.random_range(0..2)],
        ),
        2 => (
            f64::from(r.random_range(-90i32..=90)),
            f64::from(r.random_range(-180i32..180)),
        ),
        _ => (r.random_range(-90.0..=90.0), r.random_range(-180.0..180.0)),
    };
    let point = Point::new(lat, lon).unwrap_or_else(|e| panic!("fixture point: {e}"));
    let time = match r.random_range(0..3) {
        0 => None,
        1 => Some(r.random_range(-2_000_000_000i64..4_000_000_000)),
        _ => Some(r.random_range(0..4) * 1_000_000_000),
    };
    (v, point, time)
}

fn build_plan_fixture() -> PlanFixture {
    let opts = OpenOptions::create_new().indexes(IndexOptions {
        graph: Some(GraphOptions {
            m: 8,
            ef_construction: 32,
            min_rows: 32,
        }),
        int8: false,
    });
    let fail = |e: &dyn std::fmt::Display| -> ! { panic!("filter_plan fixture: {e}") };
    let mut db = Db::open_in(Arc::new(MemDirectory::new()), opts).unwrap_or_else(|e| fail(&e));
    db.create_collection("c", PLAN_DIM)
        .unwrap_or_else(|e| fail(&e));
    let mut r = ChaCha8Rng::seed_from_u64(20_261_128);
    let mut pending: BTreeMap<u64, (Vec<f32>, Point, Option<i64>)> = BTreeMap::new();
    // Segment 1: ids 0..400. Segment 2: ids 400..460, replacements of 0..20, deletes of
    // 20..40 (tombstones), so results merge two graphs and skip dead rows.
    let batches: [(std::ops::Range<u64>, std::ops::Range<u64>); 2] =
        [(0..400, 0..0), (400..460, 20..40)];
    for (i, (adds, deletes)) in batches.into_iter().enumerate() {
        let replaced = if i == 1 { 0..20 } else { 0..0 };
        for id in adds.chain(replaced) {
            let (v, point, time) = plan_item(&mut r);
            db.add(
                "c",
                NewItem {
                    id,
                    vector: &v,
                    point,
                    time,
                    payload: None,
                },
            )
            .unwrap_or_else(|e| fail(&e));
            pending.insert(id, (v, point, time));
        }
        for id in deletes {
            db.delete("c", id).unwrap_or_else(|e| fail(&e));
            pending.remove(&id);
        }
        db.commit().unwrap_or_else(|e| fail(&e));
    }
    let snapshot = db.snapshot();
    let coll = snapshot.collection("c").unwrap_or_else(|e| fail(&e));
    assert_eq!(coll.len(), pending.len());
    let mut model = BTreeMap::new();
    for (id, (_, point, time)) in pending {
        let Ok(Some(it)) = coll.get(id) else {
            fail(&format!("id {id} missing"))
        };
        assert_eq!((it.point, it.time), (point, time));
        model.insert(id, (it.vector.to_vec(), point, time));
    }
    PlanFixture { snapshot, model }
}

fn plan_fixture() -> &'static PlanFixture {
    static FIXTURE: OnceLock<PlanFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_plan_fixture)
}

/// Every live item of the model passing `filter` with its exact score, best first, then
/// lower id (the request is validated as the search builder does).
fn brute_force(
    fx: &PlanFixture,
    query: &[f32],
    k: usize,
    filter: &Filter,
) -> Result<Vec<(u64, f32)>, QueryError> {
    let q = normalise_query(query, PLAN_DIM)?;
    if k == 0 {
        return Err(QueryError::ZeroK);
    }
    let mut all: Vec<(u64, f32)> = fx
        .model
        .iter()
        .filter(|(_, (_, p, t))| filter.matches(*p, *t))
        .map(|(&id, (v, _, _))| (id, dot_f16_f32(v, &q)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(all)
}

fn pairs(r: &SearchResults) -> Vec<(u64, u32)> {
    r.hits.iter().map(|h| (h.id, h.score.to_bits())).collect()
}

/// Parses `data` (if UTF-8) as a query JSONL line and runs it against a fixed collection of
/// two segments with graphs (ids replaced and deleted), exactly and through the planner (with
/// knobs that make it walk the graphs, and with the defaults). The exact search must equal a
/// brute force over the model; a planned search returns `min(k, matching)` distinct live
/// items, each passing the filter with its exact score, best first then lower id, and equals
/// the exact result when every segment was scanned exactly. Errors must be the request's
/// own (dimension, zero vector, `k` = 0), never a corrupt-segment error.
pub fn filter_plan(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(line) = parse_query_line(text, 1) else {
        return;
    };
    let filter = match line.filter.as_ref().map(|f| f.to_filter()) {
        None => Filter::new(),
        Some(Ok(f)) => f,
        Some(Err(_)) => return,
    };
    let fx = plan_fixture();
    let Ok(coll) = fx.snapshot.collection("c") else {
        panic!("fixture collection missing")
    };
    // The vector as written (wrong lengths must be refused), then fitted to the dimension.
    let mut fitted: Vec<f32> = line.vector.iter().copied().cycle().take(PLAN_DIM).collect();
    if fitted.is_empty() {
        fitted = vec![1.0; PLAN_DIM];
    }
    let k = line.k;
    for query in [&line.vector, &fitted] {
        let want = brute_force(fx, query, k, &filter);
        let exact = coll
            .search(query)
            .k(k)
            .filter(filter.clone())
            .exact(true)
            .run();
        let (all, exact) = match (want, exact) {
            (Err(w), Err(e)) => {
                assert_eq!(w, e, "exact search refused the request for another reason");
                continue;
            }
            (Ok(all), Ok(e)) => {
                let want: Vec<(u64, u32)> = all
                    .iter()
                    .take(k)
                    .map(|&(id, s)| (id, s.to_bits()))
                    .collect();
                assert_eq!(pairs(&e), want, "exact search differs from brute force");
                assert!(e.explain.iter().all(|p| matches!(
                    p.plan,
                    Plan::Flat {
                        reason: FlatReason::Requested,
                        ..
                    }
                )));
                (all, e)
            }
            (w, e) => panic!("brute force {w:?} but exact search {e:?}"),
        };
        let scores: BTreeMap<u64, u32> = all.iter().map(|&(id, s)| (id, s.to_bits())).collect();
        for params in [PLAN_PARAMS, PlannerParams::default()] {
            let planned = coll
                .search(query)
                .k(k)
                .filter(filter.clone())
                .planner(params)
                .run();
            let Ok(planned) = planned else {
                panic!("planned search failed where the exact one ran: {planned:?}")
            };
            check_planned(fx, &planned, &exact, &filter, &scores, k);
        }
    }
}

/// `scores`: id -> exact score bits of every item passing the filter.
fn check_planned(
    fx: &PlanFixture,
    planned: &SearchResults,
    exact: &SearchResults,
    filter: &Filter,
    scores: &BTreeMap<u64, u32>,
    k: usize,
) {
    assert_eq!(
        planned.hits.len(),
        k.min(scores.len()),
        "planned search returned too few: {:?}",
        planned.explain
    );
    let mut seen = HashSet::new();
    for h in &planned.hits {
        assert!(seen.insert(h.id), "id {} returned twice", h.id);
        let Some((_, p, t)) = fx.model.get(&h.id) else {
            panic!("id {} is not live", h.id)
        };
        assert!(filter.matches(*p, *t), "id {} fails the filter", h.id);
        assert_eq!((h.point, h.time), (*p, *t));
        assert_eq!(
            Some(&h.score.to_bits()),
            scores.get(&h.id),
            "id {}: score is not the exact one",
            h.id
        );
    }
    assert!(
        planned.hits.windows(2).all(|w| w[0]
            .score
            .total_cmp(&w[1].score)
            .then(w[1].id.cmp(&w[0].id))
            == Ordering::Greater),
        "hits not sorted by score, then id"
    );
    // Every segment scanned exactly, or k covers every match: nothing left to approximate.
    let all_exact = planned.explain.iter().all(|p| {
        matches!(
            p.plan,
            Plan::Flat { .. }
                | Plan::Graph {
                    fell_back: true,
                    ..
                }
        )
    });
    if all_exact || k >= scores.len() {
        assert_eq!(pairs(planned), pairs(exact), "{:?}", planned.explain);
    }
}
