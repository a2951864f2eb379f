//! End to end with a real Prometheus: the real `api` binary scraped by the
//! real `prometheus` binary running the project's own configuration and
//! rules, with known traffic, checked through Prometheus' HTTP API.
//!
//! What a dashboard or alert can fail on is checked here on real data: the
//! counters equal the requests sent, latency lands in the right bucket,
//! every recording rule and every dashboard query returns data, every rule
//! evaluates without error, and the target-down alert goes pending when the
//! service stops.

mod harness;
#[path = "../support/tools.rs"]
mod tools;

use std::{collections::BTreeMap, time::Duration};

use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::{
    harness::{Api, Prometheus, eventually, repository},
    tools::find_tool,
};

/// Requests sent, by route template and status.
type Sent = BTreeMap<(String, u16), u64>;

/// Sends requests and keeps count of what was answered.
struct Traffic<'a> {
    api: &'a Api,
    client: reqwest::Client,
    sent: Sent,
}

impl<'a> Traffic<'a> {
    fn new(api: &'a Api) -> Self {
        Self {
            api,
            client: reqwest::Client::new(),
            sent: Sent::new(),
        }
    }

    /// Sends one request, checks its status, and counts it under `route`.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        route: &str,
        expected: u16,
    ) -> Value {
        let mut request = self.client.request(method.clone(), self.api.url(path));
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the api answers");

        assert_eq!(response.status().as_u16(), expected, "{method} {path}");
        *self.sent.entry((route.to_owned(), expected)).or_default() += 1;
        response.json().await.unwrap_or(Value::Null)
    }

    async fn set_faults(&mut self, settings: Value) {
        self.send(
            Method::PUT,
            "/admin/faults",
            Some(settings),
            "/admin/faults",
            200,
        )
        .await;
    }

    /// Successes on every route, client errors of several kinds, unmatched
    /// paths, server errors and latency through fault injection.
    async fn drive(mut self) -> Sent {
        for (path, times) in [("/", 3), ("/health", 2), ("/ready", 2), ("/version", 1)] {
            for _ in 0..times {
                self.send(Method::GET, path, None, path, 200).await;
            }
        }

        let mut ids = Vec::new();
        for n in 0..5 {
            let user =
                json!({ "name": format!("User {n}"), "email": format!("user{n}@example.com") });
            let created = self
                .send(Method::POST, "/v1/users", Some(user), "/v1/users", 201)
                .await;
            ids.push(created["id"].as_i64().expect("id"));
        }
        let duplicate = json!({ "name": "Again", "email": "USER0@example.com" });
        self.send(Method::POST, "/v1/users", Some(duplicate), "/v1/users", 409)
            .await;
        for invalid in [
            json!({ "name": "" }),
            json!({ "name": "X", "email": "nope" }),
        ] {
            self.send(Method::POST, "/v1/users", Some(invalid), "/v1/users", 422)
                .await;
        }
        self.send(Method::POST, "/v1/users", None, "/v1/users", 415)
            .await;
        self.send(Method::GET, "/v1/users?limit=0", None, "/v1/users", 400)
            .await;
        for _ in 0..2 {
            self.send(Method::GET, "/v1/users", None, "/v1/users", 200)
                .await;
        }

        let user = format!("/v1/users/{}", ids[0]);
        for _ in 0..4 {
            self.send(Method::GET, &user, None, "/v1/users/{id}", 200)
                .await;
        }
        self.send(Method::GET, "/v1/users/99999", None, "/v1/users/{id}", 404)
            .await;
        self.send(Method::GET, "/v1/users/abc", None, "/v1/users/{id}", 400)
            .await;
        let rename = json!({ "name": "Renamed" });
        self.send(Method::PATCH, &user, Some(rename), "/v1/users/{id}", 200)
            .await;
        self.send(Method::PUT, &user, None, "/v1/users/{id}", 405)
            .await;
        let last = format!("/v1/users/{}", ids[4]);
        self.send(Method::DELETE, &last, None, "/v1/users/{id}", 204)
            .await;

        for path in ["/nope", "/wp-login.php", "/.env"] {
            self.send(Method::GET, path, None, "unmatched", 404).await;
        }
        self.send(Method::POST, "/cgi-bin/test", None, "unmatched", 404)
            .await;

        self.set_faults(json!({ "error_ratio": 1.0, "error_status": 500 }))
            .await;
        for _ in 0..3 {
            self.send(Method::GET, "/v1/users", None, "/v1/users", 500)
                .await;
        }
        self.set_faults(json!({ "error_status": 503 })).await;
        for _ in 0..2 {
            self.send(Method::GET, "/v1/users", None, "/v1/users", 503)
                .await;
        }
        self.set_faults(json!({ "error_ratio": 0, "latency_ms": 300 }))
            .await;
        for _ in 0..2 {
            self.send(Method::GET, "/v1/users", None, "/v1/users", 200)
                .await;
        }
        self.set_faults(json!({ "latency_ms": 0 })).await;

        self.sent
    }
}

/// Rows of a query result as (first label, second label) -> value.
fn by_labels(rows: &[Value], first: &str, second: &str) -> BTreeMap<(String, u16), f64> {
    rows.iter()
        .map(|row| {
            let metric = &row["metric"];
            let key = metric[first].as_str().expect("first label").to_owned();
            let status = metric[second]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("status label");
            let value = row["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .expect("value");
            ((key, status), value)
        })
        .collect()
}

/// Every series must hold exactly what was sent, zero where nothing was.
fn assert_counts(what: &str, observed: &BTreeMap<(String, u16), f64>, sent: &Sent) {
    for (key, count) in sent {
        assert_eq!(observed.get(key), Some(&(*count as f64)), "{what}: {key:?}");
    }
    for (key, value) in observed {
        if !sent.contains_key(key) {
            assert_eq!(*value, 0.0, "{what}: {key:?} was never sent");
        }
    }
}

/// The names of every recording rule in the project's rule files.
fn recording_rules() -> Vec<String> {
    let folder = repository().join("prometheus/rules");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&folder).expect("read the rules folder") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read a rule file");
        names.extend(text.lines().filter_map(|line| {
            let name = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("record:")?;
            Some(
                name.trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_owned(),
            )
        }));
    }
    assert!(
        !names.is_empty(),
        "no recording rules found in {}",
        folder.display()
    );
    names
}

/// Every query of every provisioned dashboard, with Grafana's variables
/// replaced as Grafana would for a recent short range.
fn dashboard_queries() -> Vec<(String, String)> {
    let folder = repository().join("grafana/dashboards");
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(&folder).expect("read the dashboards folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a dashboard");
        let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
        let title = dashboard["title"].as_str().unwrap_or_default().to_owned();
        collect_exprs(&dashboard, &mut |expr| {
            queries.push((format!("{title}: {expr}"), substitute_variables(expr)));
        });
    }
    assert!(
        !queries.is_empty(),
        "no dashboard queries found in {}",
        folder.display()
    );
    queries
}

fn collect_exprs(value: &Value, found: &mut impl FnMut(&str)) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(expr)) = object.get("expr") {
                found(expr);
            }
            object
                .values()
                .for_each(|child| collect_exprs(child, found));
        }
        Value::Array(items) => items.iter().for_each(|child| collect_exprs(child, found)),
        _ => {}
    }
}

/// The series selectors of a query: each `metric{matchers}` in it.
fn selectors(expr: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(open) = expr[rest..].find('{').map(|at| at + rest) {
        let close = expr[open..]
            .find('}')
            .map(|at| at + open)
            .expect("balanced braces");
        let start = expr[..open]
            .rfind(|c: char| !is_name(c))
            .map_or(0, |at| at + 1);
        found.push(expr[start..=close].to_owned());
        rest = close + 1;
    }
    found
}

/// Grafana's built-in variables, fixed: rates over 30 s (the run lasts
/// longer, with a scrape every second), ranges over 5 minutes.
fn substitute_variables(expr: &str) -> String {
    [
        ("$__rate_interval", "30s"),
        ("${__rate_interval}", "30s"),
        ("$__interval", "5s"),
        ("${__interval}", "5s"),
        ("$__range", "5m"),
        ("${__range}", "5m"),
        ("${job}", "api"),
        ("$job", "api"),
    ]
    .iter()
    .fold(expr.to_owned(), |expr, (variable, value)| {
        expr.replace(variable, value)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_exactly_the_traffic_sent_and_every_query_has_data() {
    let Some(binary) = find_tool("prometheus", "prometheus_sees_exactly_the_traffic_sent") else {
        return;
    };
    let api = Api::start().await;
    let prometheus = Prometheus::start(&binary, api.port).await;
    prometheus
        .wait_for_value(r#"up{job="api"}"#, 1.0, Duration::from_secs(30))
        .await;

    let sent = Traffic::new(&api).drive().await;
    let total: u64 = sent.values().sum();
    let scraped = "sum(api_http_request_total) + sum(api_http_request_error_total)";
    prometheus
        .wait_for_value(scraped, total as f64, Duration::from_secs(15))
        .await;

    // The target is healthy and its scrapes carry no error.
    let targets = prometheus.api("targets", &[]).await;
    let api_target = targets["activeTargets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|target| target["labels"]["job"] == "api")
        .cloned()
        .expect("the api target");
    assert_eq!(api_target["health"], "up", "{api_target}");
    assert_eq!(api_target["lastError"], "", "{api_target}");

    // The guide's counters hold exactly the requests sent.
    let successes = prometheus.query("api_http_request_total").await;
    let errors = prometheus.query("api_http_request_error_total").await;
    let mut counters = by_labels(&successes, "path", "status");
    counters.extend(by_labels(&errors, "path", "status"));
    assert_counts("the guide's counters", &counters, &sent);

    // The histogram counts the same requests.
    let by_route_and_status = "sum by (http_route, http_response_status_code) \
                               (http_server_request_duration_seconds_count)";
    let counts = prometheus.query(by_route_and_status).await;
    let counts = by_labels(&counts, "http_route", "http_response_status_code");
    assert_counts("the histogram's counts", &counts, &sent);

    // The two requests delayed by 300 ms lie above the 0.25 s bucket: of
    // the four answered 200 on the list, only the two fast ones are in it.
    let bucket = |le: &str| {
        let series = r#"http_route="/v1/users",http_response_status_code="200""#;
        format!("sum(http_server_request_duration_seconds_bucket{{{series},le=\"{le}\"}})")
    };
    assert_eq!(
        prometheus.value(&bucket("0.25")).await,
        Some(2.0),
        "at or under 0.25 s"
    );
    assert_eq!(
        prometheus.value(&bucket("0.5")).await,
        Some(4.0),
        "at or under 0.5 s"
    );

    // Every recording rule returns data once it has been evaluated.
    for name in recording_rules() {
        eventually(
            &format!("recording rule {name} to return data"),
            Duration::from_secs(15),
            || {
                let name = name.clone();
                let prometheus = &prometheus;
                async move { (!prometheus.query(&name).await.is_empty()).then_some(()) }
            },
        )
        .await;
    }

    // Every dashboard query returns data, and so does every series
    // selector in it: `or vector(0)` would hide a selector matching nothing.
    // A series born during the traffic (the first 500, say) needs a second
    // scrape before a rate has data, hence the polling.
    for (origin, query) in dashboard_queries() {
        for promql in std::iter::once(query.clone()).chain(selectors(&query)) {
            let what = format!("data for `{promql}` of the dashboard query {origin}");
            eventually(&what, Duration::from_secs(15), || {
                let promql = promql.clone();
                let prometheus = &prometheus;
                async move { (!prometheus.query(&promql).await.is_empty()).then_some(()) }
            })
            .await;
        }
    }

    // Every rule has been evaluated and none failed.
    let rules = prometheus.api("rules", &[]).await;
    for group in rules["groups"].as_array().expect("rule groups") {
        for rule in group["rules"].as_array().expect("rules") {
            assert_eq!(
                rule["health"], "ok",
                "rule {} in {}",
                rule["name"], group["file"]
            );
            assert_eq!(
                rule["lastError"].as_str().unwrap_or_default(),
                "",
                "rule {}",
                rule["name"]
            );
        }
    }
}

/// The alert that must notice the service is gone.
const TARGET_DOWN_ALERT: &str = "ApiTargetDown";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_down_alert_goes_pending_when_the_api_stops() {
    let Some(binary) = find_tool("prometheus", "the_target_down_alert_goes_pending") else {
        return;
    };
    let mut api = Api::start().await;
    let prometheus = Prometheus::start(&binary, api.port).await;
    prometheus
        .wait_for_value(r#"up{job="api"}"#, 1.0, Duration::from_secs(30))
        .await;
    let quiet = prometheus.api("alerts", &[]).await;
    let firing_before: Vec<&Value> = quiet["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|alert| alert["labels"]["alertname"] == TARGET_DOWN_ALERT)
        .collect();
    assert!(
        firing_before.is_empty(),
        "{TARGET_DOWN_ALERT} while the api is up: {quiet}"
    );

    api.stop();

    let state = eventually(
        &format!("{TARGET_DOWN_ALERT} to go pending"),
        Duration::from_secs(30),
        || async {
            let alerts = prometheus.api("alerts", &[]).await;
            alerts["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .find(|alert| alert["labels"]["alertname"] == TARGET_DOWN_ALERT)
                .map(|alert| alert["state"].as_str().unwrap_or_default().to_owned())
        },
    )
    .await;
    assert!(
        state == "pending" || state == "firing",
        "{TARGET_DOWN_ALERT} is {state}"
    );
}
