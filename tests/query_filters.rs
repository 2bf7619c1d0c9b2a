//! Filters against brute force over every point: antimeridian boxes, radius over the poles
//! and across the dateline, polygons, time ranges, and their AND. The planner enumerates
//! candidates through the R-tree's covering rectangles, so these also prove the rectangles
//! never drop a matching row.

mod common;

use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::{haversine_km, Point};
use sat2cap::query::filter::{BBox, Filter, Polygon, Radius, TimeRange};
use sat2cap::query::planner::{search_segment, SearchRequest, SegmentIndex};
use sat2cap::testing::synth::{generate, SynthData};

fn data() -> SynthData {
    generate(6000, 8, 30, 21)
}

/// Rows returned by an exact, unbounded search with `filter` (R-tree candidate path, or the
/// block pass past 1/32 of the rows). Also runs it over the rows stored in Hilbert order (as
/// segments store them), where the block pass takes and skips whole blocks, and checks that
/// both orders select the same rows.
fn selected(data: &SynthData, filter: Filter) -> BTreeSet<u32> {
    let run = |vectors: &[half::f16], points: &[Point], times: &[i64]| -> Vec<u32> {
        let seg = SegmentIndex::new(vectors, data.dim, points, Some(times), None).unwrap();
        let mut q = vec![0.0f32; data.dim];
        q[0] = 1.0;
        let req = SearchRequest::new(q, usize::MAX).with_filter(filter.clone());
        let (hits, _) = search_segment(&seg, &req).unwrap();
        hits.iter().map(|h| h.row).collect()
    };
    let plain: BTreeSet<u32> = run(&data.vectors, &data.points, &data.times)
        .into_iter()
        .collect();
    let mut order: Vec<usize> = (0..data.points.len()).collect();
    order.sort_by_key(|&r| (sat2cap::geo::hilbert_key(data.points[r]), r));
    let vectors: Vec<half::f16> = order
        .iter()
        .flat_map(|&r| {
            data.vectors[r * data.dim..(r + 1) * data.dim]
                .iter()
                .copied()
        })
        .collect();
    let points: Vec<Point> = order.iter().map(|&r| data.points[r]).collect();
    let times: Vec<i64> = order.iter().map(|&r| data.times[r]).collect();
    let sorted: BTreeSet<u32> = run(&vectors, &points, &times)
        .into_iter()
        .map(|row| order[row as usize] as u32)
        .collect();
    assert_eq!(sorted, plain, "Hilbert row order selects other rows");
    plain
}

fn brute(data: &SynthData, keep: impl Fn(Point, i64) -> bool) -> BTreeSet<u32> {
    (0..data.points.len() as u32)
        .filter(|&r| keep(data.points[r as usize], data.times[r as usize]))
        .collect()
}

#[test]
fn bbox_across_antimeridian_matches_brute_force() {
    let d = data();
    let b = BBox::new(175.0, -10.0, -175.0, 70.0).unwrap();
    assert!(b.crosses_antimeridian());
    let want = brute(&d, |p, _| {
        p.lat() >= -10.0 && p.lat() <= 70.0 && (p.lon() >= 175.0 || p.lon() <= -175.0)
    });
    assert!(
        want.len() > 50,
        "fixture populates the dateline: {}",
        want.len()
    );
    assert_eq!(selected(&d, Filter::new().bbox(b)), want);
    // A plain box too.
    let b = BBox::new(-30.0, -20.0, 40.0, 50.0).unwrap();
    let want = brute(&d, |p, _| {
        (-20.0..=50.0).contains(&p.lat()) && (-30.0..=40.0).contains(&p.lon())
    });
    assert_eq!(selected(&d, Filter::new().bbox(b)), want);
}

#[test]
fn radius_over_poles_and_dateline_matches_brute_force() {
    let d = data();
    let cases = [
        (89.0, 0.0, 400.0),    // contains the north pole
        (88.0, 170.0, 500.0),  // pole and dateline
        (-89.9, -50.0, 300.0), // south pole
        (0.0, 179.9, 250.0),   // dateline at the equator
        (64.0, -179.5, 300.0), // dateline at high latitude (lon offset > radius in degrees)
        (10.0, 20.0, 0.0),     // zero radius
        (0.0, 0.0, 30_000.0),  // the whole sphere
    ];
    for (lat, lon, km) in cases {
        let r = Radius::new(lat, lon, km).unwrap();
        let c = Point::new(lat, lon).unwrap();
        let want = brute(&d, |p, _| haversine_km(c, p) <= km);
        assert_eq!(
            selected(&d, Filter::new().radius(r)),
            want,
            "{lat},{lon},{km}"
        );
    }
    let r = Radius::new(89.0, 0.0, 400.0).unwrap();
    assert!(
        !selected(&d, Filter::new().radius(r)).is_empty(),
        "pole cluster populated"
    );
}

#[test]
fn random_boxes_and_circles_match_brute_force() {
    let d = data();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..60 {
        let lat = rng.random_range(-90.0..=90.0);
        let lon = rng.random_range(-180.0..180.0);
        let km = rng.random_range(0.0..3000.0);
        let c = Point::new(lat, lon).unwrap();
        let want = brute(&d, |p, _| haversine_km(c, p) <= km);
        let r = Radius::new(lat, lon, km).unwrap();
        assert_eq!(
            selected(&d, Filter::new().radius(r)),
            want,
            "{lat},{lon},{km}"
        );
        let (w, e): (f64, f64) = (
            rng.random_range(-180.0..180.0),
            rng.random_range(-180.0..180.0),
        );
        let (s, n) = {
            let a: f64 = rng.random_range(-90.0..90.0);
            let b: f64 = rng.random_range(-90.0..90.0);
            (a.min(b), a.max(b))
        };
        let b = BBox::new(w, s, e, n).unwrap();
        let want = brute(&d, |p, _| {
            let lon_ok = if w <= e {
                p.lon() >= w && p.lon() <= e
            } else {
                p.lon() >= w || p.lon() <= e
            };
            lon_ok && p.lat() >= s && p.lat() <= n
        });
        assert_eq!(selected(&d, Filter::new().bbox(b)), want, "{w},{s},{e},{n}");
    }
}

/// Even-odd point in polygon, written independently for the test (no dateline handling).
fn pip(ring: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let ((xi, yi), (xj, yj)) = (ring[i], ring[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[test]
fn polygon_matches_brute_force() {
    let d = data();
    // A concave ring away from the dateline.
    let ring = [
        (-60.0, -40.0),
        (60.0, -40.0),
        (0.0, 0.0),
        (60.0, 40.0),
        (-60.0, 40.0),
    ];
    let want = brute(&d, |p, _| pip(&ring, p.lon(), p.lat()));
    assert!(!want.is_empty());
    assert_eq!(
        selected(&d, Filter::new().polygon(Polygon::new(&ring).unwrap())),
        want
    );
    // A ring across the antimeridian given with wrapped longitudes: same rows as the
    // equivalent box.
    let ring = [
        (170.0, -20.0),
        (-170.0, -20.0),
        (-170.0, 80.0),
        (170.0, 80.0),
    ];
    let want = brute(&d, |p, _| {
        let x = if p.lon() < 0.0 {
            p.lon() + 360.0
        } else {
            p.lon()
        };
        pip(
            &[(170.0, -20.0), (190.0, -20.0), (190.0, 80.0), (170.0, 80.0)],
            x,
            p.lat(),
        )
    });
    assert!(want.len() > 20, "{}", want.len());
    assert_eq!(
        selected(&d, Filter::new().polygon(Polygon::new(&ring).unwrap())),
        want
    );
}

#[test]
fn time_range_and_conjunction_match_brute_force() {
    let d = data();
    let (t0, t1) = (1_500_000_000, 1_600_000_000);
    let t = TimeRange::new(t0, t1).unwrap();
    let want = brute(&d, |_, tt| tt != i64::MIN && (t0..=t1).contains(&tt));
    assert!(!want.is_empty());
    assert_eq!(selected(&d, Filter::new().time(t)), want);
    // Rows with no time never match, even the widest range.
    let all = TimeRange::new(i64::MIN, i64::MAX).unwrap();
    let want_all = brute(&d, |_, tt| tt != i64::MIN);
    assert_eq!(selected(&d, Filter::new().time(all)), want_all);
    // AND of box, radius and time.
    let b = BBox::new(-180.0, -90.0, 0.0, 90.0).unwrap();
    let c = Point::new(0.0, 0.0).unwrap();
    let r = Radius::new(0.0, 0.0, 8000.0).unwrap();
    let want = brute(&d, |p, tt| {
        p.lon() <= 0.0 && haversine_km(c, p) <= 8000.0 && tt != i64::MIN && (t0..=t1).contains(&tt)
    });
    assert!(!want.is_empty());
    assert_eq!(selected(&d, Filter::new().bbox(b).radius(r).time(t)), want);
}

#[test]
fn invalid_filters_are_typed_errors() {
    use sat2cap::query::QueryError as E;
    assert!(matches!(
        BBox::new(0.0, 10.0, 5.0, 5.0),
        Err(E::InvertedBBox { .. })
    ));
    assert!(matches!(BBox::new(0.0, 5.0, 0.0, 10.0), Err(E::EmptyBBox)));
    assert!(matches!(BBox::new(0.0, 5.0, 10.0, 5.0), Err(E::EmptyBBox)));
    assert!(matches!(
        BBox::new(0.0, 0.0, 10.0, 91.0),
        Err(E::Latitude(_))
    ));
    assert!(matches!(
        BBox::new(f64::NAN, 0.0, 10.0, 9.0),
        Err(E::Longitude(_))
    ));
    assert!(matches!(
        BBox::new(0.0, 0.0, 181.0, 9.0),
        Err(E::Longitude(_))
    ));
    assert!(matches!(Radius::new(91.0, 0.0, 1.0), Err(E::Latitude(_))));
    assert!(matches!(Radius::new(0.0, 0.0, -1.0), Err(E::Radius(_))));
    assert!(matches!(Radius::new(0.0, 0.0, f64::NAN), Err(E::Radius(_))));
    assert!(matches!(
        Radius::new(0.0, f64::INFINITY, 1.0),
        Err(E::Longitude(_))
    ));
    assert!(matches!(
        Polygon::new(&[(0.0, 0.0), (1.0, 1.0)]),
        Err(E::PolygonTooSmall(2))
    ));
    assert!(matches!(
        Polygon::new(&[(0.0, 0.0), (1.0, 1.0), (0.0, 0.0)]),
        Err(E::PolygonTooSmall(2))
    ));
    assert!(matches!(
        Polygon::new(&[(0.0, 0.0), (1.0, 95.0), (2.0, 0.0)]),
        Err(E::Latitude(_))
    ));
    assert!(matches!(
        TimeRange::new(5, 4),
        Err(E::TimeRange { t0: 5, t1: 4 })
    ));
}

/// `covers_rect` (lets the R-tree enumeration take whole nodes without per-row tests) must
/// never claim a rectangle that holds a point outside the filter. Random rectangles and
/// radii (many large, near the antipodal meridian), each claimed rectangle checked on a
/// 41 x 41 grid. Regression: corners-only checking covered rectangles whose meridian edge
/// bulges beyond the radius (fuzz target `filter_plan`, crash input in its corpus:
/// radius 18,000 km around (-62, -120)).
#[test]
fn covers_rect_never_claims_a_point_outside() {
    use sat2cap::index::spatial::Rect;
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut claimed = 0;
    let fixed = [(-62.0, -120.0, 18_000.0)];
    for t in 0..4000 {
        let (lat, lon, km) = if t < fixed.len() {
            fixed[t]
        } else {
            (
                rng.random_range(-90.0..=90.0),
                rng.random_range(-180.0..180.0),
                rng.random_range(0.0..20_100.0),
            )
        };
        let r = Radius::new(lat, lon, km).unwrap();
        let f = Filter::new().radius(r);
        for _ in 0..8 {
            let (a, b) = (
                rng.random_range(-90.0..=90.0),
                rng.random_range(-90.0..=90.0),
            );
            let (c, d) = (
                rng.random_range(-180.0..=180.0),
                rng.random_range(-180.0..=180.0),
            );
            let rect = Rect {
                lon_min: f64::min(c, d),
                lat_min: f64::min(a, b),
                lon_max: f64::max(c, d),
                lat_max: f64::max(a, b),
            };
            if !f.covers_rect(&rect) {
                continue;
            }
            claimed += 1;
            for i in 0..=40 {
                for j in 0..=40 {
                    let la = rect.lat_min + (rect.lat_max - rect.lat_min) * i as f64 / 40.0;
                    let lo = rect.lon_min + (rect.lon_max - rect.lon_min) * j as f64 / 40.0;
                    let p = Point::new(la, lo).unwrap();
                    assert!(
                        f.matches(p, None),
                        "{rect:?} claimed by radius {km} km around ({lat}, {lon}) but ({la}, {lo}) is {} km away",
                        haversine_km(Point::new(lat, lon).unwrap(), p)
                    );
                }
            }
        }
    }
    assert!(
        claimed > 500,
        "only {claimed} rectangles claimed: the test proves little"
    );
}

/// A random point: `kind` 0 on the north pole, 1 just west of the dateline, else anywhere.
fn point_of_kind(rng: &mut ChaCha8Rng, kind: usize) -> Point {
    match kind {
        0 => Point::new(90.0, rng.random_range(-180.0..180.0)).unwrap(),
        1 => Point::new(rng.random_range(-90.0..=90.0), 179.999_999).unwrap(),
        _ => Point::new(
            rng.random_range(-90.0..=90.0),
            rng.random_range(-180.0..180.0),
        )
        .unwrap(),
    }
}

/// `Radius::contains_unit` (squared chord on f32 unit vectors, exact haversine in a band
/// around the boundary) answers exactly as `Radius::contains`, for points far from the
/// boundary and for points on it (radius = the point's own distance, nudged by a relative
/// 1e-15 .. 1e-3 either way), at the poles and across the dateline.
#[test]
fn unit_vector_radius_test_equals_haversine() {
    use sat2cap::geo::unit_vector_f32 as unit32;
    let mut rng = ChaCha8Rng::seed_from_u64(1234);
    let mut near_boundary = 0;
    for t in 0..20_000 {
        let c = point_of_kind(&mut rng, 2);
        let p = point_of_kind(&mut rng, t % 4);
        let d = haversine_km(c, p);
        let nudges = [
            0.0, 1e-15, -1e-15, 1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6, 1e-3, -1e-3,
        ];
        for km in nudges.iter().map(|e| d * (1.0 + e)).chain([
            rng.random_range(0.0..21_000.0),
            0.0,
            20_015.1,
            25_000.0,
        ]) {
            let Ok(r) = Radius::new(c.lat(), c.lon(), km) else {
                continue;
            };
            let (fast, exact) = (r.contains_unit(p, unit32(p)), r.contains(p));
            assert_eq!(
                fast, exact,
                "radius {km} km around {c:?}, point {p:?} at {d} km"
            );
            near_boundary += usize::from((km - d).abs() <= 1e-6 * d);
        }
    }
    assert!(near_boundary > 100_000, "{near_boundary}");
}

/// `Radius::scan_units` (64-row blocks, verdicts as bit masks) emits exactly the rows
/// `contains_unit` accepts, in order, for block-misaligned lengths and radii on the
/// boundary of some rows.
#[test]
fn block_scan_equals_the_row_test() {
    use sat2cap::geo::unit_vector_f32 as unit32;
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for n in [0usize, 1, 63, 64, 65, 1000, 4097] {
        let points: Vec<Point> = (0..n).map(|i| point_of_kind(&mut rng, i % 7)).collect();
        let units: Vec<[f32; 3]> = points.iter().map(|&p| unit32(p)).collect();
        for t in 0..20 {
            let c = point_of_kind(&mut rng, 2);
            // Every other radius is some row's own distance: that row sits on the boundary.
            let km = match (t % 2, points.get(t * 31 % n.max(1))) {
                (0, Some(&p)) => haversine_km(c, p),
                _ => rng.random_range(0.0..21_000.0),
            };
            let r = Radius::new(c.lat(), c.lon(), km).unwrap();
            let want: Vec<u32> = (0..n as u32)
                .filter(|&i| r.contains_unit(points[i as usize], units[i as usize]))
                .collect();
            let mut got = Vec::new();
            r.scan_units(&points, &units, |row| got.push(row));
            assert_eq!(got, want, "n {n}, radius {km} km around {c:?}");
            let exact: Vec<u32> = (0..n as u32)
                .filter(|&i| r.contains(points[i as usize]))
                .collect();
            assert_eq!(got, exact);
        }
    }
}

/// `Filter::may_pass_within` never rules out a region holding a row that passes: random
/// boxes (across the antimeridian too), radii (over the poles too) and polygons, tested
/// against random regions and every synthetic row inside each; and it does rule out
/// regions far from the filter.
#[test]
fn may_pass_within_never_rules_out_a_passing_row() {
    let data = data();
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let mut ruled_out = 0;
    for i in 0..400 {
        let filter = match i % 3 {
            0 => {
                let (w, e) = (
                    rng.random_range(-180.0..180.0),
                    rng.random_range(-180.0..180.0),
                );
                let s: f64 = rng.random_range(-90.0..80.0);
                Filter::new().bbox(BBox::new(w, s, e, rng.random_range(s..90.0)).unwrap())
            }
            1 => Filter::new().radius(
                Radius::new(
                    rng.random_range(-90.0..90.0),
                    rng.random_range(-180.0..180.0),
                    rng.random_range(10.0..3000.0),
                )
                .unwrap(),
            ),
            _ => {
                let (x, y) = (
                    rng.random_range(-170.0..150.0),
                    rng.random_range(-80.0..60.0),
                );
                let ring = [(x, y), (x + 20.0, y + 3.0), (x + 8.0, y + 15.0)];
                Filter::new().polygon(Polygon::new(&ring).unwrap())
            }
        };
        let (w, e) = (
            rng.random_range(-180.0..180.0),
            rng.random_range(-180.0..180.0),
        );
        let s: f64 = rng.random_range(-90.0..60.0);
        let region = BBox::new(w, s, e, rng.random_range(s..(s + 30.0).min(90.0))).unwrap();
        let passing_inside = data
            .points
            .iter()
            .any(|&p| region.contains(p) && filter.matches(p, None));
        let may = filter.may_pass_within(&region);
        assert!(may || !passing_inside, "{filter:?} ruled out {region:?}");
        ruled_out += usize::from(!may);
    }
    assert!(ruled_out > 100, "only {ruled_out} of 400 regions ruled out");
}

/// `Filter::may_pass_during` never rules out a span of times holding a time that passes, and
/// rules out the spans a time range misses; conditions on location never rule a span out.
#[test]
fn may_pass_during_never_rules_out_a_passing_time() {
    let mut rng = ChaCha8Rng::seed_from_u64(78);
    let mut ruled_out = 0;
    for _ in 0..2000 {
        let t0 = rng.random_range(-1_000i64..1_000);
        let filter = Filter::new()
            .time(TimeRange::new(t0, t0 + rng.random_range(0..300)).unwrap())
            .bbox(BBox::new(-10.0, -10.0, 10.0, 10.0).unwrap());
        let min = rng.random_range(-1_200i64..1_200);
        let max = min + rng.random_range(0..200);
        let p = Point::new(0.0, 0.0).unwrap();
        let passing = (min..=max).any(|t| filter.matches(p, Some(t)));
        let may = filter.may_pass_during(min, max);
        assert_eq!(may, passing, "{filter:?} over {min}..={max}");
        ruled_out += usize::from(!may);
    }
    assert!(ruled_out > 500, "only {ruled_out} of 2000 spans ruled out");
    let anywhere = Filter::new().bbox(BBox::new(50.0, 50.0, 51.0, 51.0).unwrap());
    assert!(anywhere.may_pass_during(i64::MIN + 1, i64::MIN + 1));
    assert!(Filter::new().may_pass_during(0, 0));
}
