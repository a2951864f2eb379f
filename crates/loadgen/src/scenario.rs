//! What to send: the mix of operations, the requests that carry them, and
//! the data that keeps them meaningful.
//!
//! Each worker owns a [`Scenario`] that picks the next operation by weight
//! and shapes its request; the answers feed back into it. Creates add their
//! ids to an [`IdPool`] shared by every worker, from which gets, updates and
//! deletes draw, so that most of them hit users that exist. Sending and
//! timing are left to [`crate::client`] and [`crate::runner`].

use std::{
    fmt,
    str::FromStr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use http::{Method, Uri};
use serde::{Deserialize, Serialize};

/// The operations of the mix, in the order `--mix` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A page of `GET /v1/users`, following the previous page's cursor.
    List,
    /// `GET /v1/users/{id}` of a known user.
    Get,
    /// `POST /v1/users` with a fresh, unique email.
    Create,
    /// `PATCH /v1/users/{id}` of a known user: name, email or both.
    Update,
    /// `DELETE /v1/users/{id}` of a known user, which leaves the pool.
    Delete,
    /// Input the service must refuse with a 4xx; see [`BadInput`].
    Bad,
}

impl Operation {
    /// Every operation, in `--mix` order.
    pub const ALL: [Self; 6] = [
        Self::List,
        Self::Get,
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Bad,
    ];

    /// The operation's name in `--mix`.
    pub fn name(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Get => "get",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Bad => "bad",
        }
    }

    /// Whether the operation needs a known user id.
    fn needs_user(self) -> bool {
        matches!(self, Self::Get | Self::Update | Self::Delete)
    }
}

/// The relative weights of the operations, from `--mix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// One weight per operation, indexed like [`Operation::ALL`].
    weights: [u32; Operation::ALL.len()],
}

impl Mix {
    /// The weight of `operation`.
    pub fn weight(&self, operation: Operation) -> u32 {
        self.weights[operation as usize]
    }

    /// An operation drawn with probability proportional to its weight.
    fn pick(&self, rng: &mut fastrand::Rng) -> Operation {
        let total: u32 = self.weights.iter().sum();
        let mut ticket = rng.u32(0..total);
        for operation in Operation::ALL {
            let weight = self.weight(operation);
            if ticket < weight {
                return operation;
            }
            ticket -= weight;
        }
        // The tickets above cover 0..total exactly, so this is not reached.
        Operation::List
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let mut weights = [0_u32; Operation::ALL.len()];
        for pair in raw
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (name, weight) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not name=weight"))?;
            let operation = Operation::ALL
                .into_iter()
                .find(|operation| operation.name() == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown operation `{name}`: use list, get, create, update, delete, bad"
                    )
                })?;
            weights[operation as usize] = weight
                .trim()
                .parse()
                .map_err(|_| format!("the weight of `{name}` must be a whole number"))?;
        }

        // The sum is drawn from with `u32`, so it must fit and not be zero.
        let total = weights
            .iter()
            .try_fold(0_u32, |sum, weight| sum.checked_add(*weight));
        match total {
            Some(1..) => Ok(Self { weights }),
            Some(0) => Err("at least one operation needs a weight above zero".to_owned()),
            None => Err("the weights add up to more than 4294967295".to_owned()),
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = Operation::ALL
            .into_iter()
            .filter(|operation| self.weight(*operation) > 0)
            .map(|operation| format!("{}={}", operation.name(), self.weight(operation)));
        f.write_str(&pairs.collect::<Vec<_>>().join(","))
    }
}

/// The route a request belongs to, named like the service's metrics name
/// it, so that the two can be compared line by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Route {
    /// `/v1/users`.
    #[serde(rename = "/v1/users")]
    Users,
    /// `/v1/users/{id}`.
    #[serde(rename = "/v1/users/{id}")]
    User,
    /// A path the service does not serve; `unmatched`, as in its metrics.
    #[serde(rename = "unmatched")]
    Unmatched,
}

impl Route {
    /// The route's template, or `unmatched`.
    pub fn template(self) -> &'static str {
        match self {
            Self::Users => "/v1/users",
            Self::User => "/v1/users/{id}",
            Self::Unmatched => "unmatched",
        }
    }
}

/// The kinds of bad input in the `bad` share, drawn with equal chance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadInput {
    /// A create whose body is cut short: 400.
    MalformedJson,
    /// A create with an empty name and an invalid email: 422.
    InvalidFields,
    /// A create declared as text rather than JSON: 415.
    NotJson,
    /// A get of an id the service never assigned: 404.
    UnknownId,
    /// A get with an id that is not a number: 400.
    MalformedId,
    /// A list with a limit out of range: 400.
    BadQuery,
    /// A path no route serves: 404.
    UnknownPath,
}

impl BadInput {
    const ALL: [Self; 7] = [
        Self::MalformedJson,
        Self::InvalidFields,
        Self::NotJson,
        Self::UnknownId,
        Self::MalformedId,
        Self::BadQuery,
        Self::UnknownPath,
    ];
}

/// Ids at and above this are never assigned by the service in practice
/// (its ids count up from 1), so they stand for unknown users.
const UNKNOWN_ID_BASE: i64 = 9_000_000_000_000_000_000;

/// What to read from an answer once it has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Nothing.
    None,
    /// The new user's id, for the pool.
    CreatedId,
    /// The cursor of the next page, for this worker's next list.
    NextCursor,
}

/// One request, ready to be sent.
#[derive(Debug, Clone)]
pub struct PlannedRequest {
    /// The HTTP method.
    pub method: Method,
    /// The route it is counted under.
    pub route: Route,
    /// The path and query, as sent.
    pub path: Uri,
    /// The body and its content type, if any.
    pub body: Option<(&'static str, Bytes)>,
    /// What to read from the answer.
    pub follow_up: FollowUp,
}

/// The ids of users created in this run and not deleted since.
///
/// A std mutex, because the lock is held for a push or a swap and never
/// across an await.
#[derive(Debug, Default)]
pub struct IdPool {
    ids: Mutex<Vec<i64>>,
}

impl IdPool {
    fn insert(&self, id: i64) {
        self.lock().push(id);
    }

    /// A known id, left in the pool.
    fn pick(&self, rng: &mut fastrand::Rng) -> Option<i64> {
        let ids = self.lock();
        (!ids.is_empty()).then(|| ids[rng.usize(0..ids.len())])
    }

    /// A known id, taken out of the pool so that no one else uses it.
    fn take(&self, rng: &mut fastrand::Rng) -> Option<i64> {
        let mut ids = self.lock();
        let count = ids.len();
        (count > 0).then(|| ids.swap_remove(rng.usize(0..count)))
    }

    /// How many ids are known.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no id is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<i64>> {
        // A panic while holding the lock leaves the vector whole.
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The source of emails that no other create of this run, nor of an
/// earlier run, has used: a random run tag and a shared counter.
#[derive(Debug)]
pub struct Emails {
    run_tag: u64,
    next: AtomicU64,
}

impl Emails {
    /// A source with a fresh random tag (not derived from `--seed`, so that
    /// a repeated seeded run does not collide with the first).
    pub fn new() -> Self {
        Self {
            run_tag: fastrand::Rng::new().u64(..),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        format!("lg-{:016x}.{number}@loadgen.example", self.run_tag)
    }
}

impl Default for Emails {
    fn default() -> Self {
        Self::new()
    }
}

/// What every worker's scenario shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The operations' weights.
    pub mix: Mix,
    /// Users known to exist.
    pub pool: Arc<IdPool>,
    /// Unique addresses for creates and updates.
    pub emails: Arc<Emails>,
}

/// One worker's stream of requests.
#[derive(Debug)]
pub struct Scenario {
    shared: Shared,
    rng: fastrand::Rng,
    /// Where this worker's next list page starts; `None` for the first.
    cursor: Option<String>,
}

/// First names for the users, so that lists look like data.
const NAMES: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken",
];

/// Page sizes a list asks for.
const PAGE_SIZES: [u32; 3] = [10, 20, 50];

/// The body of a create or an update.
#[derive(Serialize)]
struct UserBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

/// The part of a created user that is kept.
#[derive(Deserialize)]
struct Created {
    id: i64,
}

/// The part of a list page that is kept.
#[derive(Deserialize)]
struct Page {
    next_cursor: Option<String>,
}

impl Scenario {
    /// A worker's scenario; `seed` makes its choices repeatable.
    pub fn new(shared: Shared, seed: u64) -> Self {
        Self {
            shared,
            rng: fastrand::Rng::with_seed(seed),
            cursor: None,
        }
    }

    /// The next request of the mix.
    ///
    /// An operation that needs a known user becomes a create while the
    /// pool is empty, as at the start of a run on an empty service.
    pub fn next_request(&mut self) -> PlannedRequest {
        let mut operation = self.shared.mix.pick(&mut self.rng);
        if operation.needs_user() && self.shared.pool.is_empty() {
            operation = Operation::Create;
        }
        self.request_for(operation)
    }

    /// Reads what the plan asked for from a successful answer's body.
    pub fn observe(&mut self, follow_up: FollowUp, status: u16, body: &[u8]) {
        match follow_up {
            FollowUp::None => {}
            FollowUp::CreatedId if status == 201 => {
                if let Ok(created) = serde_json::from_slice::<Created>(body) {
                    self.shared.pool.insert(created.id);
                }
            }
            FollowUp::NextCursor if status == 200 => {
                let page = serde_json::from_slice::<Page>(body).ok();
                // Cursors are URL-safe base64; anything else is dropped
                // rather than escaped, and the next list starts over.
                self.cursor = page.and_then(|page| page.next_cursor).filter(|cursor| {
                    cursor
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || b"-_=".contains(&byte))
                });
            }
            FollowUp::CreatedId | FollowUp::NextCursor => {}
        }
    }

    fn request_for(&mut self, operation: Operation) -> PlannedRequest {
        match operation {
            Operation::List => self.list(),
            Operation::Create => self.create(),
            Operation::Get => match self.shared.pool.pick(&mut self.rng) {
                Some(id) => plan(Method::GET, Route::User, user_path(id), None),
                None => self.create(),
            },
            Operation::Update => match self.shared.pool.pick(&mut self.rng) {
                Some(id) => self.update(id),
                None => self.create(),
            },
            Operation::Delete => match self.shared.pool.take(&mut self.rng) {
                Some(id) => plan(Method::DELETE, Route::User, user_path(id), None),
                None => self.create(),
            },
            Operation::Bad => self.bad(),
        }
    }

    fn list(&mut self) -> PlannedRequest {
        let limit = PAGE_SIZES[self.rng.usize(0..PAGE_SIZES.len())];
        let path = match self.cursor.take() {
            Some(cursor) => format!("/v1/users?limit={limit}&cursor={cursor}"),
            None => format!("/v1/users?limit={limit}"),
        };
        PlannedRequest {
            follow_up: FollowUp::NextCursor,
            ..plan(Method::GET, Route::Users, path, None)
        }
    }

    fn create(&mut self) -> PlannedRequest {
        let name = self.name();
        let email = self.shared.emails.next();
        let body = json_body(Some(&name), Some(&email));
        PlannedRequest {
            follow_up: FollowUp::CreatedId,
            ..plan(
                Method::POST,
                Route::Users,
                "/v1/users".to_owned(),
                Some(body),
            )
        }
    }

    fn update(&mut self, id: i64) -> PlannedRequest {
        // Renames are the common change; an address change is rarer.
        let name = self.rng.u8(0..4).ne(&0).then(|| self.name());
        let email = (name.is_none() || self.rng.bool()).then(|| self.shared.emails.next());
        let body = json_body(name.as_deref(), email.as_deref());
        plan(Method::PATCH, Route::User, user_path(id), Some(body))
    }

    fn bad(&mut self) -> PlannedRequest {
        let kind = BadInput::ALL[self.rng.usize(0..BadInput::ALL.len())];
        let users = || "/v1/users".to_owned();
        let json =
            |text: &'static str| Some(("application/json", Bytes::from_static(text.as_bytes())));
        match kind {
            BadInput::MalformedJson => {
                let body = json(r#"{"name": "Ada", "email": "#);
                plan(Method::POST, Route::Users, users(), body)
            }
            BadInput::InvalidFields => {
                let body = json(r#"{"name": " ", "email": "not-an-address"}"#);
                plan(Method::POST, Route::Users, users(), body)
            }
            BadInput::NotJson => {
                let body = Some(("text/plain", Bytes::from_static(b"name=Ada")));
                plan(Method::POST, Route::Users, users(), body)
            }
            BadInput::UnknownId => {
                let id = UNKNOWN_ID_BASE + self.rng.i64(0..1_000_000_000);
                plan(Method::GET, Route::User, user_path(id), None)
            }
            BadInput::MalformedId => plan(
                Method::GET,
                Route::User,
                "/v1/users/not-a-number".to_owned(),
                None,
            ),
            BadInput::BadQuery => plan(
                Method::GET,
                Route::Users,
                "/v1/users?limit=0".to_owned(),
                None,
            ),
            BadInput::UnknownPath => {
                plan(Method::GET, Route::Unmatched, "/v1/groups".to_owned(), None)
            }
        }
    }

    fn name(&mut self) -> String {
        let first = NAMES[self.rng.usize(0..NAMES.len())];
        format!("{first} {}", self.rng.u16(1..10_000))
    }
}

fn plan(
    method: Method,
    route: Route,
    path: String,
    body: Option<(&'static str, Bytes)>,
) -> PlannedRequest {
    PlannedRequest {
        method,
        route,
        path: origin_form(path),
        body,
        follow_up: FollowUp::None,
    }
}

/// `path` as a request target.
fn origin_form(path: String) -> Uri {
    // Every path here is fixed text, digits or a cursor checked to be
    // URL-safe, so the fallback is never taken; were it taken, the request
    // would show up in the summary under the wrong route.
    Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"))
}

fn user_path(id: i64) -> String {
    format!("/v1/users/{id}")
}

fn json_body(name: Option<&str>, email: Option<&str>) -> (&'static str, Bytes) {
    // Serializing two optional strings cannot fail; an empty body would be
    // answered 400 and show up in the summary if it ever did.
    let body = serde_json::to_vec(&UserBody { name, email }).unwrap_or_default();
    ("application/json", Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(mix: &str) -> Scenario {
        let shared = Shared {
            mix: mix.parse().expect("valid mix"),
            pool: Arc::default(),
            emails: Arc::default(),
        };
        Scenario::new(shared, 7)
    }

    #[test]
    fn mixes_parse_names_and_weights_and_leave_the_rest_at_zero() {
        let mix: Mix = "get=3, create=1".parse().expect("valid");

        assert_eq!(mix.weight(Operation::Get), 3);
        assert_eq!(mix.weight(Operation::Create), 1);
        assert_eq!(mix.weight(Operation::List), 0);
        assert_eq!(mix.to_string(), "get=3,create=1");
    }

    #[test]
    fn bad_mixes_are_refused_with_a_reason() {
        for raw in [
            "",
            "get=0",
            "get",
            "fetch=1",
            "get=-1",
            "get=4294967295,list=1",
        ] {
            assert!(raw.parse::<Mix>().is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn the_mix_is_followed_in_proportion() {
        let mix: Mix = "list=3,bad=1".parse().expect("valid");
        let mut rng = fastrand::Rng::with_seed(1);

        let lists = (0..40_000)
            .filter(|_| mix.pick(&mut rng) == Operation::List)
            .count();

        assert!((29_000..31_000).contains(&lists), "{lists} lists of 40000");
    }

    #[test]
    fn operations_on_users_become_creates_while_none_is_known() {
        let mut scenario = scenario("get=1,update=1,delete=1");

        let request = scenario.next_request();

        assert_eq!(
            (request.method, request.route),
            (Method::POST, Route::Users)
        );
    }

    #[test]
    fn created_ids_feed_gets_and_deletes_take_them_out() {
        let mut scenario = scenario("delete=1");
        scenario.observe(FollowUp::CreatedId, 201, br#"{"id": 42, "name": "Ada"}"#);

        let delete = scenario.next_request();
        let after = scenario.next_request();

        assert_eq!(delete.method, Method::DELETE);
        assert_eq!(delete.path, "/v1/users/42");
        assert_eq!(after.method, Method::POST, "the pool should be empty again");
    }

    #[test]
    fn emails_are_unique_within_a_run() {
        let emails = Emails::new();

        let first = emails.next();
        let second = emails.next();

        assert_ne!(first, second);
        assert!(first.ends_with("@loadgen.example"), "{first}");
    }

    #[test]
    fn lists_follow_the_cursor_of_the_previous_page_then_start_over() {
        let mut scenario = scenario("list=1");
        scenario.observe(
            FollowUp::NextCursor,
            200,
            br#"{"users": [], "next_cursor": "MTA"}"#,
        );

        let second = scenario.next_request();
        let third = scenario.next_request();

        let query = |request: &PlannedRequest| request.path.query().unwrap_or_default().to_owned();
        assert!(query(&second).ends_with("&cursor=MTA"), "{}", second.path);
        assert!(!query(&third).contains("cursor"), "{}", third.path);
    }
}
