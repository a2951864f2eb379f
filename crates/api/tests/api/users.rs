//! The users resource, used as a client would.

use std::collections::HashSet;

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn creating_a_user_returns_201_with_its_location() {
    let app = TestApp::spawn().await;

    let response = app.create_user("Ada Lovelace", "ada@example.com").await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let user: Value = response.json().await.expect("JSON");
    assert_eq!(location, format!("/v1/users/{}", user["id"]));
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["email"], "ada@example.com");
    assert!(user["id"].as_i64().is_some_and(|id| id > 0), "{user}");
    assert_eq!(user["created_at"], user["updated_at"]);
}

#[tokio::test]
async fn a_created_user_reads_back_identically() {
    let app = TestApp::spawn().await;
    let created = app.created_user("Ada", "ada@example.com").await;

    let response = app.get_user(&created["id"]).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.expect("JSON"), created);
}

#[tokio::test]
async fn timestamps_are_rfc3339_utc() {
    let app = TestApp::spawn().await;

    let user = app.created_user("Ada", "ada@example.com").await;

    let stamp = user["created_at"].as_str().expect("string");
    let parsed = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339);
    assert!(parsed.is_ok_and(|at| at.offset().is_utc()), "{stamp}");
}

#[tokio::test]
async fn names_and_emails_are_trimmed() {
    let app = TestApp::spawn().await;

    let user = app
        .created_user("  Grace Hopper \t", " grace@example.com ")
        .await;

    assert_eq!(user["name"], "Grace Hopper");
    assert_eq!(user["email"], "grace@example.com");
}

#[tokio::test]
async fn creating_a_user_twice_returns_409_whatever_the_letter_case() {
    let app = TestApp::spawn().await;
    app.created_user("Ada", "ada@example.com").await;

    let response = app.create_user("Another Ada", "ADA@Example.COM").await;

    assert_problem(response, StatusCode::CONFLICT, "duplicate_email").await;
    assert_eq!(app.all_users().await.len(), 1);
}

#[tokio::test]
async fn patching_changes_only_the_fields_given() {
    let app = TestApp::spawn().await;
    let created = app.created_user("Ada", "ada@example.com").await;

    let response = app
        .patch_user(&created["id"], &json!({ "name": "Ada King" }))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let patched: Value = response.json().await.expect("JSON");
    assert_eq!(patched["name"], "Ada King");
    assert_eq!(patched["email"], "ada@example.com");
    assert_eq!(patched["created_at"], created["created_at"]);
    assert_ne!(patched["updated_at"], created["updated_at"]);
    assert_eq!(
        app.get_user(&created["id"])
            .await
            .json::<Value>()
            .await
            .expect("JSON"),
        patched
    );
}

#[tokio::test]
async fn patching_the_email_alone_keeps_the_name() {
    let app = TestApp::spawn().await;
    let created = app.created_user("Ada", "ada@example.com").await;

    let patched: Value = app
        .patch_user(&created["id"], &json!({ "email": "ada@lovelace.org" }))
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(patched["name"], "Ada");
    assert_eq!(patched["email"], "ada@lovelace.org");
}

#[tokio::test]
async fn a_user_may_change_the_case_of_their_own_email() {
    let app = TestApp::spawn().await;
    let created = app.created_user("Ada", "ada@example.com").await;

    let response = app
        .patch_user(&created["id"], &json!({ "email": "Ada@Example.com" }))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn patching_to_a_taken_email_returns_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.created_user("Ada", "ada@example.com").await;
    let grace = app.created_user("Grace", "grace@example.com").await;

    let response = app
        .patch_user(
            &grace["id"],
            &json!({ "name": "Renamed", "email": "ADA@example.com" }),
        )
        .await;

    assert_problem(response, StatusCode::CONFLICT, "duplicate_email").await;
    assert_eq!(
        app.get_user(&grace["id"])
            .await
            .json::<Value>()
            .await
            .expect("JSON"),
        grace
    );
}

#[tokio::test]
async fn deleting_a_user_returns_204_and_the_user_is_gone() {
    let app = TestApp::spawn().await;
    let created = app.created_user("Ada", "ada@example.com").await;

    let response = app.delete_user(&created["id"]).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.text().await.expect("body"), "");
    assert_problem(
        app.get_user(&created["id"]).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_users_email_can_be_used_again_under_a_new_id() {
    let app = TestApp::spawn().await;
    let first = app.created_user("Ada", "ada@example.com").await;
    app.delete_user(&first["id"]).await;

    let second = app.created_user("Ada", "ada@example.com").await;

    assert!(
        second["id"].as_i64() > first["id"].as_i64(),
        "ids are never reused"
    );
}

#[tokio::test]
async fn the_list_is_newest_first() {
    let app = TestApp::spawn().await;
    for n in 1..=3 {
        app.created_user(&format!("User {n}"), &format!("user{n}@example.com"))
            .await;
    }

    let page: Value = app.list_users("").await.json().await.expect("JSON");

    let names: Vec<&str> = page["users"]
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["User 3", "User 2", "User 1"]);
    assert!(
        page.get("next_cursor").is_none(),
        "a single page has no next cursor: {page}"
    );
}

#[tokio::test]
async fn pagination_visits_every_user_exactly_once() {
    let app = TestApp::spawn().await;
    let mut created = HashSet::new();
    for n in 1..=7 {
        let user = app
            .created_user(&format!("User {n}"), &format!("user{n}@example.com"))
            .await;
        created.insert(user["id"].as_i64().expect("id"));
    }

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page: Value = app.list_users(&query).await.json().await.expect("JSON");
        let ids: Vec<i64> = page["users"]
            .as_array()
            .expect("array")
            .iter()
            .map(|u| u["id"].as_i64().expect("id"))
            .collect();
        pages.push(ids.len());
        seen.extend(ids);
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(pages, [3, 3, 1]);
    assert!(
        seen.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first: {seen:?}"
    );
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), created);
}

#[tokio::test]
async fn a_page_that_ends_exactly_at_the_last_user_has_no_next_cursor() {
    let app = TestApp::spawn().await;
    for n in 1..=4 {
        app.created_user(&format!("User {n}"), &format!("user{n}@example.com"))
            .await;
    }

    let first: Value = app.list_users("?limit=2").await.json().await.expect("JSON");
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second: Value = app
        .list_users(&format!("?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(second["users"].as_array().expect("array").len(), 2);
    assert!(second.get("next_cursor").is_none(), "{second}");
}

#[tokio::test]
async fn concurrent_creates_with_one_email_store_exactly_one_user() {
    let app = TestApp::spawn().await;

    let attempts = (0..20).map(|n| {
        let client = app.client.clone();
        let url = app.url("/v1/users");
        tokio::spawn(async move {
            // The same address, in two spellings.
            let email = if n % 2 == 0 {
                "race@example.com"
            } else {
                "RACE@Example.com"
            };
            let body = json!({ "name": format!("Racer {n}"), "email": email });
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("request sent")
                .status()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("task"));
    }

    let created = statuses
        .iter()
        .filter(|status| **status == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|status| **status == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 19), "{statuses:?}");
    assert_eq!(app.all_users().await.len(), 1);
}

#[tokio::test]
async fn head_requests_are_answered_like_get_without_a_body() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .head(app.url("/v1/users"))
        .send()
        .await
        .expect("request sent");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.expect("body"), "");
}
