//! Tests of the R-tree and the block rectangles.

use super::*;

/// `BlockRects::visit` reports every row inside the rectangles, in ascending disjoint
/// runs, `Covered` only where `covers` allowed it; in Hilbert order most of the region
/// is found without testing rows, in a scattered order every block is tested.
#[test]
fn block_visit_finds_every_row_in_the_rectangles() {
    let scattered: Vec<Point> = (0..20_000)
        .filter_map(|i| {
            let lat = ((i * 37) % 1800) as f64 / 10.0 - 90.0;
            let lon = ((i * 91) % 3600) as f64 / 10.0 - 180.0;
            Point::new(lat, lon).ok()
        })
        .collect();
    let mut sorted = scattered.clone();
    sorted.sort_by_key(|&p| crate::geo::hilbert_key(p));
    let rects = [
        Rect {
            lon_min: -100.0,
            lat_min: -30.0,
            lon_max: 60.0,
            lat_max: 45.0,
        },
        Rect {
            lon_min: 170.0,
            lat_min: 10.0,
            lon_max: 180.0,
            lat_max: 20.0,
        },
    ];
    let north = |r: &Rect| r.lat_min >= 0.0 && rects.iter().any(|x| encloses(x, r));
    let test = |r: &Rect| {
        rects.iter().any(|x| intersects(x, r)).then(|| {
            if north(r) {
                Coverage::Covered
            } else {
                Coverage::Partial
            }
        })
    };
    let whole = |c: &Coverage| *c == Coverage::Covered;
    for (name, points) in [("scattered", &scattered), ("hilbert", &sorted)] {
        let blocks = BlockRects::build(points);
        let mut seen = vec![None; points.len()];
        let mut last_end = 0;
        let mut covered_rows = 0;
        blocks.visit(test, whole, |start, end, c| {
            assert!(start >= last_end && start < end, "{name}: {start}..{end}");
            last_end = end;
            for row in start..end {
                seen[row as usize] = Some(c);
            }
            if c == Coverage::Covered {
                covered_rows += end - start;
            }
            true
        });
        for (row, p) in points.iter().enumerate() {
            let inside = rects.iter().any(|r| r.contains(p.lon(), p.lat()));
            match seen[row] {
                None => assert!(!inside, "{name}: row {row} inside, not reported"),
                Some(Coverage::Covered) => {
                    assert!(inside && p.lat() >= 0.0, "{name}: row {row} covered")
                }
                Some(_) => {}
            }
        }
        let reported = seen.iter().filter(|s| s.is_some()).count();
        let inside = points
            .iter()
            .filter(|p| rects.iter().any(|r| r.contains(p.lon(), p.lat())))
            .count();
        if name == "hilbert" {
            assert!(
                reported < inside * 2,
                "{reported} rows reported, {inside} inside"
            );
            assert!(
                covered_rows as usize > inside / 4,
                "{covered_rows} of {inside} covered"
            );
        } else {
            assert_eq!(covered_rows, 0);
        }
    }
    let empty = BlockRects::build(&[]);
    assert!(empty.visit(test, whole, |_, _, _| panic!("no rows")));
    // Stopping: the first run ends the visit.
    let blocks = BlockRects::build(&sorted);
    let mut runs = 0;
    assert!(!blocks.visit(test, whole, |_, _, _| {
        runs += 1;
        false
    }));
    assert_eq!(runs, 1);
    assert!(blocks.is_compact() && !BlockRects::build(&scattered).is_compact());
    // An index over compact blocks builds no R-tree until a caller asks for one.
    let index = SpatialIndex::build(&sorted);
    assert!(index.uses_blocks());
    let mut want: Vec<u32> = (0..sorted.len() as u32)
        .filter(|&r| rects[1].contains(sorted[r as usize].lon(), sorted[r as usize].lat()))
        .collect();
    let mut got = index.rows_in(&sorted, &rects[1]);
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert!(!index.uses_blocks());
    assert!(!SpatialIndex::build(&scattered)
        .rows_in(&sorted[..5], &rects[0])
        .is_empty());
}

/// `visit_in` reports exactly the rows `rows_in` does, and `covered` only where the
/// `covers` callback allowed it.
#[test]
fn visit_matches_rows_in() {
    let points: Vec<Point> = (0..5000)
        .filter_map(|i| {
            let lat = ((i * 37) % 1800) as f64 / 10.0 - 90.0;
            let lon = ((i * 91) % 3600) as f64 / 10.0 - 180.0;
            Point::new(lat, lon).ok()
        })
        .collect();
    let tree = SpatialIndex::build(&points);
    let rect = Rect {
        lon_min: -100.0,
        lat_min: -30.0,
        lon_max: 60.0,
        lat_max: 45.0,
    };
    let mut want: Vec<u32> = tree.rows_in(&points, &rect);
    want.sort_unstable();
    let north = |r: &Rect| r.lat_min >= 0.0;
    let mut got = Vec::new();
    let mut covered = 0;
    let done = tree.visit_in(&points, &rect, &north, &mut |row, c| {
        got.push(row);
        if c {
            covered += 1;
            assert!(points[row as usize].lat() >= 0.0);
        }
        true
    });
    assert!(done);
    got.sort_unstable();
    assert_eq!(got, want);
    assert!(covered > 0, "some nodes are covered");
    let mut none = 0;
    tree.visit_in(&points, &rect, &|_: &Rect| false, &mut |_, c| {
        none += usize::from(c);
        true
    });
    assert_eq!(none, 0);
    let mut seen = 0;
    assert!(!tree.visit_in(&points, &rect, &north, &mut |_, _| {
        seen += 1;
        seen < 3
    }));
    assert_eq!(seen, 3, "stops when told");
}

/// Whether two closed rectangles share a point.
fn intersects(a: &Rect, b: &Rect) -> bool {
    a.lon_min <= b.lon_max
        && b.lon_min <= a.lon_max
        && a.lat_min <= b.lat_max
        && b.lat_min <= a.lat_max
}

/// Whether `outer` holds all of `inner`.
fn encloses(outer: &Rect, inner: &Rect) -> bool {
    outer.lon_min <= inner.lon_min
        && inner.lon_max <= outer.lon_max
        && outer.lat_min <= inner.lat_min
        && inner.lat_max <= outer.lat_max
}

/// Points read in place are checked as their rectangles are made: any point that is not
/// one `Point::new` makes (NaN, infinities, a latitude past a pole, a longitude at +180 or
/// beyond, the largest and smallest values) refuses the whole build, in any block and at
/// any place in it; valid points give the rectangles of `BlockRects::build`.
#[test]
fn points_read_in_place_are_checked_with_their_rectangles() {
    let raw = |lat: f64, lon: f64| bytemuck::cast::<[f64; 2], Point>([lat, lon]);
    let valid: Vec<Point> = (0..1_000)
        .map(|i| Point::new((i % 181) as f64 - 90.0, (i % 360) as f64 - 180.0).unwrap())
        .chain([
            raw(90.0, 179.999_999_999),
            raw(-90.0, -180.0),
            raw(-0.0, 0.0),
        ])
        .collect();
    let built = BlockRects::build_if_valid(&valid).expect("valid points");
    let plain = BlockRects::build(&valid);
    assert_eq!(format!("{:?}", built), format!("{:?}", plain));
    assert!(SpatialIndex::build_if_valid(&valid).is_some());
    let next_up = |x: f64| f64::from_bits(x.to_bits() + 1);
    let bad = [
        (f64::NAN, 0.0),
        (0.0, f64::NAN),
        (next_up(90.0), 0.0),
        (-next_up(90.0), 0.0),
        (0.0, 180.0),
        (0.0, -next_up(180.0)),
        (f64::INFINITY, 0.0),
        (0.0, f64::NEG_INFINITY),
        (f64::MAX, f64::MIN),
    ];
    for (lat, lon) in bad {
        assert!(!raw(lat, lon).is_valid(), "{lat} {lon}");
        for at in [0, 63, 64, 500, valid.len()] {
            let mut points = valid.clone();
            points.insert(at, raw(lat, lon));
            assert!(
                BlockRects::build_if_valid(&points).is_none(),
                "{lat} {lon} at {at}"
            );
            assert!(SpatialIndex::build_if_valid(&points).is_none());
        }
    }
    assert!(valid.iter().all(Point::is_valid));
    assert!(BlockRects::build_if_valid(&[]).is_some());
}
