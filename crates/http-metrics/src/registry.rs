//! Where the numbers live: one duration histogram per route, method and
//! status, laid out so that recording a request is a few atomic additions.
//!
//! The layout is decided when the metrics are built. Route templates go into
//! a `matchit` table (the matcher axum itself uses) whose values are indexes
//! into a fixed array of routes, so finding a request's route walks a radix
//! tree and neither hashes nor allocates. Under each route sit ten method rows
//! (the nine standard methods and `_OTHER`), each allocated once, on first
//! use; under each row, sixteen status slots claimed by compare-and-swap. A
//! request therefore touches only atomics and `OnceLock`s that are already
//! initialised, apart from the first request of each route, method and
//! status.
//!
//! The guide's counters (`…_http_request_total` and `…_error_total`) are not
//! stored at all: they are the histogram's counts summed over methods, worked
//! out when the metrics are rendered. Recording costs one histogram
//! observation, and the counters can never disagree with the histogram.

use std::sync::{
    Mutex, OnceLock, PoisonError,
    atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering},
};

use http::Method;

/// Label value of `http_request_method` for methods outside the standard
/// set, so that invented methods cannot create series.
pub(crate) const OTHER_METHOD: &str = "_OTHER";

/// The method label values, in the order of their row index.
pub(crate) const METHODS: [&str; 10] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    OTHER_METHOD,
];

/// The row index of a method; every non-standard method shares the last row.
pub(crate) fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ => 9,
    }
}

/// The status of a request that matches no route.
const UNMATCHED_STATUS: u16 = 404;

/// Distinct statuses a route and method can hold without taking a lock; a
/// service rarely answers one route with more than a handful.
const STATUS_SLOTS: usize = 16;

/// The bucket layout shared by every histogram.
#[derive(Debug)]
pub(crate) struct Buckets {
    /// Upper bounds in nanoseconds, ascending.
    bounds_nanos: Box<[u64]>,
    /// The same bounds as `le` label values, with `+Inf` last.
    pub(crate) labels: Box<[String]>,
}

impl Buckets {
    /// Builds the layout from upper bounds in seconds.
    ///
    /// # Errors
    ///
    /// Fails unless there is at least one bound and the bounds are finite,
    /// positive and strictly increasing.
    pub(crate) fn new(bounds_seconds: &[f64]) -> Result<Self, String> {
        if bounds_seconds.is_empty() {
            return Err("a histogram needs at least one bucket".to_owned());
        }
        if !bounds_seconds
            .iter()
            .all(|bound| bound.is_finite() && *bound > 0.0)
        {
            return Err(format!(
                "bucket bounds must be finite and positive: {bounds_seconds:?}"
            ));
        }
        if !bounds_seconds.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(format!(
                "bucket bounds must increase strictly: {bounds_seconds:?}"
            ));
        }

        let bounds_nanos = bounds_seconds
            .iter()
            .map(|bound| (bound * 1e9).round() as u64)
            .collect();
        let labels = bounds_seconds
            .iter()
            .map(|bound| bound.to_string())
            .chain(std::iter::once("+Inf".to_owned()))
            .collect();
        Ok(Self {
            bounds_nanos,
            labels,
        })
    }

    /// The index of the bucket a duration falls in: the first whose upper
    /// bound it does not exceed, or the `+Inf` bucket past the last.
    fn index(&self, nanos: u64) -> usize {
        self.bounds_nanos.partition_point(|bound| *bound < nanos)
    }
}

/// One histogram: per-bucket counts (not cumulative, so an observation adds
/// to one bucket only) and the sum of durations in whole nanoseconds, which
/// adds exactly where a float sum would drift.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(buckets: &Buckets) -> Self {
        let slots = buckets.labels.len();
        Self {
            buckets: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, buckets: &Buckets, nanos: u64) {
        self.buckets[buckets.index(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Cumulative bucket counts, as exposed; the last is the total count.
    pub(crate) fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().scan(0, |total, bucket| {
            *total += bucket.load(Ordering::Relaxed);
            Some(*total)
        })
    }

    /// Number of observations.
    pub(crate) fn count(&self) -> u64 {
        self.buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .sum()
    }

    /// Sum of observations, in seconds.
    pub(crate) fn sum_seconds(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// A status slot: free while `status` is 0, claimed for good once set.
#[derive(Debug, Default)]
struct StatusSlot {
    status: AtomicU16,
    histogram: OnceLock<Histogram>,
}

/// The histograms of one route and method, one per status answered.
#[derive(Debug, Default)]
pub(crate) struct StatusRow {
    slots: [StatusSlot; STATUS_SLOTS],
    /// Statuses beyond the slots; reaching it takes a lock, which no
    /// service with a sane number of statuses per route ever does.
    overflow: Mutex<Vec<(u16, Histogram)>>,
}

impl StatusRow {
    fn record(&self, buckets: &Buckets, status: u16, nanos: u64) {
        for slot in &self.slots {
            let claimed = slot.status.load(Ordering::Acquire);
            let ours = claimed == status
                || (claimed == 0
                    && match slot.status.compare_exchange(
                        0,
                        status,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => true,
                        Err(winner) => winner == status,
                    });
            if ours {
                slot.histogram
                    .get_or_init(|| Histogram::new(buckets))
                    .observe(buckets, nanos);
                return;
            }
        }

        let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        match overflow.iter().find(|(claimed, _)| *claimed == status) {
            Some((_, histogram)) => histogram.observe(buckets, nanos),
            None => {
                let histogram = Histogram::new(buckets);
                histogram.observe(buckets, nanos);
                overflow.push((status, histogram));
            }
        }
    }

    /// Creates the histogram of `status` at zero, if it does not exist.
    fn touch(&self, buckets: &Buckets, status: u16) {
        for slot in &self.slots {
            if slot
                .status
                .compare_exchange(0, status, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
                || slot.status.load(Ordering::Acquire) == status
            {
                slot.histogram.get_or_init(|| Histogram::new(buckets));
                return;
            }
        }
    }

    /// Calls `visit` with each status and its histogram, ascending by status.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(u16, &Histogram)) {
        let mut statuses: Vec<(u16, &Histogram)> = self
            .slots
            .iter()
            .filter_map(|slot| {
                let status = slot.status.load(Ordering::Acquire);
                slot.histogram
                    .get()
                    .filter(|_| status != 0)
                    .map(|histogram| (status, histogram))
            })
            .collect();
        let overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        statuses.extend(
            overflow
                .iter()
                .map(|(status, histogram)| (*status, histogram)),
        );
        statuses.sort_unstable_by_key(|(status, _)| *status);
        for (status, histogram) in statuses {
            visit(status, histogram);
        }
    }
}

/// Everything recorded for one route template.
#[derive(Debug)]
pub(crate) struct Route {
    /// The template, escaped for use as a label value.
    pub(crate) label: Box<str>,
    /// One row per method index, allocated on first use.
    rows: [OnceLock<Box<StatusRow>>; METHODS.len()],
}

impl Route {
    fn new(template: &str) -> Self {
        Self {
            label: escape_label_value(template).into(),
            rows: Default::default(),
        }
    }

    fn row(&self, method: usize) -> &StatusRow {
        self.rows[method].get_or_init(Box::default)
    }

    /// The rows that exist, with their method label.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (&'static str, &StatusRow)> {
        METHODS
            .iter()
            .zip(&self.rows)
            .filter_map(|(method, row)| row.get().map(|row| (*method, &**row)))
    }
}

/// Where a request was routed: an index into the route array.
pub(crate) type RouteIndex = usize;

/// All routes, the in-flight gauge and the bucket layout.
#[derive(Debug)]
pub(crate) struct Registry {
    matcher: matchit::Router<RouteIndex>,
    /// The declared routes in declaration order, then the unmatched route.
    pub(crate) routes: Box<[Route]>,
    pub(crate) buckets: Buckets,
    active: AtomicI64,
}

/// A route declared by the user, with the method and status pairs to
/// create at zero.
pub(crate) struct RouteDeclaration {
    pub(crate) template: String,
    pub(crate) expected: Vec<(Method, u16)>,
}

impl Registry {
    /// Builds the table.
    ///
    /// # Errors
    ///
    /// Fails when a template is not valid matchit syntax or collides with
    /// another.
    pub(crate) fn new(
        declarations: &[RouteDeclaration],
        unmatched_label: &str,
        buckets: Buckets,
    ) -> Result<Self, matchit::InsertError> {
        let mut matcher = matchit::Router::new();
        for (index, declaration) in declarations.iter().enumerate() {
            matcher.insert(declaration.template.clone(), index)?;
        }

        let routes: Box<[Route]> = declarations
            .iter()
            .map(|declaration| Route::new(&declaration.template))
            .chain(std::iter::once(Route::new(unmatched_label)))
            .collect();
        for (route, declaration) in routes.iter().zip(declarations) {
            for (method, status) in &declaration.expected {
                route.row(method_index(method)).touch(&buckets, *status);
            }
        }

        // A path that matches no route is answered 404 whatever its method,
        // so creating those rows now means a flood of invented paths and
        // methods finds every series it touches already there.
        let unmatched = &routes[routes.len() - 1];
        for method in 0..METHODS.len() {
            unmatched.row(method).touch(&buckets, UNMATCHED_STATUS);
        }

        Ok(Self {
            matcher,
            routes,
            buckets,
            active: AtomicI64::new(0),
        })
    }

    /// The route a path belongs to; the unmatched route when none fits.
    pub(crate) fn route_of(&self, path: &str) -> RouteIndex {
        self.matcher
            .at(path)
            .map_or(self.routes.len() - 1, |found| *found.value)
    }

    /// Records one answered request.
    pub(crate) fn record(&self, route: RouteIndex, method: usize, status: u16, nanos: u64) {
        self.routes[route]
            .row(method)
            .record(&self.buckets, status, nanos);
    }

    /// Counts a request as started.
    pub(crate) fn begin(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request as finished, answered or not.
    pub(crate) fn end(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests in flight now.
    pub(crate) fn active(&self) -> i64 {
        self.active.load(Ordering::Relaxed)
    }
}

/// Escapes a label value for the text formats: backslash, double quote and
/// line feed.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets() -> Buckets {
        Buckets::new(&[0.005, 0.01, 0.1, 1.0]).expect("valid bounds")
    }

    #[test]
    fn a_duration_on_a_bound_falls_in_that_bucket() {
        let buckets = buckets();
        let cases = [
            (0, 0),
            (5_000_000, 0),
            (5_000_001, 1),
            (10_000_000, 1),
            (2_000_000_000, 4),
        ];
        for (nanos, expected) in cases {
            assert_eq!(buckets.index(nanos), expected, "{nanos} ns");
        }
    }

    #[test]
    fn bucket_labels_are_the_bounds_and_inf() {
        assert_eq!(&*buckets().labels, ["0.005", "0.01", "0.1", "1", "+Inf"]);
    }

    #[test]
    fn unordered_bounds_are_refused() {
        assert!(Buckets::new(&[0.1, 0.05]).is_err_and(|error| error.contains("increase strictly")));
    }

    #[test]
    fn every_status_is_kept_even_beyond_the_lock_free_slots() {
        let buckets = buckets();
        let row = StatusRow::default();

        for status in 200..240 {
            row.record(&buckets, status, 1_000);
            row.record(&buckets, status, 1_000);
        }

        let mut seen = Vec::new();
        row.for_each(|status, histogram| seen.push((status, histogram.count())));
        let expected: Vec<(u16, u64)> = (200..240).map(|status| (status, 2)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn non_standard_methods_share_the_other_row() {
        let invented = Method::from_bytes(b"BREW").expect("a valid token");

        assert_eq!(METHODS[method_index(&invented)], OTHER_METHOD);
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
