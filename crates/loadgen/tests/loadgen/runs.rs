//! Runs through the library, checked against what the service counted.

use crate::helpers::{Service, summarised};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_the_same_answers_as_the_service_metrics() {
    let service = Service::start().await;

    let summary = service
        .load(&["--requests", "600", "--connections", "4"])
        .await;

    let counted = service.counted().await;
    assert_eq!(summarised(&summary), counted);
    assert!(
        counted.len() > 5,
        "the default mix should reach many series: {counted:?}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_count_sends_exactly_that_many_requests() {
    let service = Service::start().await;

    let summary = service
        .load(&["--requests", "357", "--connections", "7"])
        .await;

    let answered: u64 = summary.answers.iter().map(|answer| answer.count).sum();
    let counted: u64 = service.counted().await.values().sum();
    assert_eq!(summary.requests, 357);
    assert_eq!(answered, 357);
    assert_eq!(counted, 357, "the service saw a different number");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_share_is_answered_only_with_client_errors() {
    let service = Service::start().await;

    let summary = service.load(&["--requests", "300", "--mix", "bad=1"]).await;

    for answer in &summary.answers {
        assert!((400..500).contains(&answer.status), "{answer:?}");
    }
    let statuses: std::collections::BTreeSet<u16> =
        summary.answers.iter().map(|answer| answer.status).collect();
    assert_eq!(
        statuses,
        [400, 404, 415, 422].into(),
        "every kind of bad input"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_feed_the_pool_so_gets_and_updates_find_their_users() {
    let service = Service::start().await;

    let summary = service
        .load(&["--requests", "400", "--mix", "create=1,get=2,update=1"])
        .await;

    let missing: Vec<_> = summary
        .answers
        .iter()
        .filter(|answer| answer.status >= 400)
        .collect();
    assert!(
        missing.is_empty(),
        "without deletes every user is found: {missing:?}"
    );
    assert!(
        summary
            .answers
            .iter()
            .any(|answer| answer.method == "PATCH")
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_runs_with_one_seed_never_collide_on_emails() {
    let service = Service::start().await;
    let arguments = ["--requests", "100", "--mix", "create=1", "--seed", "7"];

    let first = service.load(&arguments).await;
    let second = service.load(&arguments).await;

    for summary in [first, second] {
        let statuses: Vec<u16> = summary.answers.iter().map(|answer| answer.status).collect();
        assert_eq!(statuses, [201], "{:?}", summary.answers);
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_at_a_modest_rate_completes_without_transport_errors() {
    let service = Service::start().await;

    let summary = service.load(&["--rate", "200", "--duration", "1s"]).await;

    assert!(summary.requests > 0);
    assert_eq!(summary.transport_errors.total, 0, "{summary}");
    assert_eq!(summary.requested_rate, Some(200));
    service.stop().await;
}
