//! The `/v1/users` resource: create, read, list, change and delete users.
//!
//! Handlers turn request bodies into validated values (collecting every
//! invalid field into one 422 answer), call the store, and shape its answer.

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{Method, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde::{Deserialize, Serialize};

use super::RouteSeries;
use crate::{
    error::{ApiError, InvalidField},
    extract::{JsonBody, UserIdParam},
    state::AppState,
    storage::UserStore,
    users::{Cursor, Email, NewUser, PageRequest, User, UserChanges, UserName},
};

const USERS: &str = "/v1/users";
const USER: &str = "/v1/users/{id}";

/// The routes below with the status each method answers on success.
pub(super) const ROUTE_SERIES: [RouteSeries; 2] = [
    (USERS, &[(Method::GET, 200), (Method::POST, 201)]),
    (
        USER,
        &[
            (Method::GET, 200),
            (Method::PATCH, 200),
            (Method::DELETE, 204),
        ],
    ),
];

pub(super) fn router<S: UserStore>() -> Router<AppState<S>> {
    Router::new()
        .route(USERS, get(list_users::<S>).post(create_user::<S>))
        .route(
            USER,
            get(get_user::<S>)
                .patch(update_user::<S>)
                .delete(delete_user::<S>),
        )
}

/// The body of a create or a change. Both fields are optional here so that
/// a missing one is reported with the others, not as a parse failure; a
/// field not listed is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: Option<String>,
    email: Option<String>,
}

/// The query of the list.
#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// One page of the list, as sent.
#[derive(Debug, Serialize)]
struct UserPage {
    users: Vec<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn create_user<S: UserStore>(
    State(state): State<AppState<S>>,
    JsonBody(body): JsonBody<UserBody>,
) -> Result<impl IntoResponse, ApiError> {
    let user = new_user(body)?;

    let user = state.store.create(user).await?;

    let location = format!("/v1/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(user),
    ))
}

async fn get_user<S: UserStore>(
    State(state): State<AppState<S>>,
    UserIdParam(id): UserIdParam,
) -> Result<Json<User>, ApiError> {
    let user = state
        .store
        .get(id)
        .await?
        .ok_or(ApiError::UserNotFound(id))?;
    Ok(Json(user))
}

async fn list_users<S: UserStore>(
    State(state): State<AppState<S>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UserPage>, ApiError> {
    let Query(params) =
        params.map_err(|rejection| ApiError::InvalidParameter(rejection.body_text()))?;
    let request = page_request(params)?;

    let page = state.store.list(request).await?;

    Ok(Json(UserPage {
        users: page.users,
        next_cursor: page.next.map(Cursor::encode),
    }))
}

async fn update_user<S: UserStore>(
    State(state): State<AppState<S>>,
    UserIdParam(id): UserIdParam,
    JsonBody(body): JsonBody<UserBody>,
) -> Result<Json<User>, ApiError> {
    let changes = user_changes(body)?;

    let user = state
        .store
        .update(id, changes)
        .await?
        .ok_or(ApiError::UserNotFound(id))?;
    Ok(Json(user))
}

async fn delete_user<S: UserStore>(
    State(state): State<AppState<S>>,
    UserIdParam(id): UserIdParam,
) -> Result<StatusCode, ApiError> {
    if state.store.delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::UserNotFound(id))
    }
}

/// Validates a create: both fields present and valid.
fn new_user(body: UserBody) -> Result<NewUser, ApiError> {
    let mut invalid = Vec::new();
    let name = required(body.name, "name", &mut invalid)
        .and_then(|raw| check(UserName::parse(&raw), "name", &mut invalid));
    let email = required(body.email, "email", &mut invalid)
        .and_then(|raw| check(Email::parse(&raw), "email", &mut invalid));

    match (name, email) {
        (Some(name), Some(email)) => Ok(NewUser { name, email }),
        _ => Err(ApiError::Validation(invalid)),
    }
}

/// Validates a change: at least one field, each present one valid.
fn user_changes(body: UserBody) -> Result<UserChanges, ApiError> {
    if body.name.is_none() && body.email.is_none() {
        let detail = "give at least one of name and email";
        return Err(ApiError::Validation(vec![InvalidField {
            pointer: "#".into(),
            detail: detail.into(),
        }]));
    }

    let mut invalid = Vec::new();
    let name = body
        .name
        .and_then(|raw| check(UserName::parse(&raw), "name", &mut invalid));
    let email = body
        .email
        .and_then(|raw| check(Email::parse(&raw), "email", &mut invalid));

    if invalid.is_empty() {
        Ok(UserChanges { name, email })
    } else {
        Err(ApiError::Validation(invalid))
    }
}

fn required(value: Option<String>, field: &str, invalid: &mut Vec<InvalidField>) -> Option<String> {
    if value.is_none() {
        invalid.push(InvalidField::new(field, "is required"));
    }
    value
}

fn check<T>(parsed: Result<T, &str>, field: &str, invalid: &mut Vec<InvalidField>) -> Option<T> {
    parsed
        .map_err(|reason| invalid.push(InvalidField::new(field, reason)))
        .ok()
}

fn page_request(params: ListParams) -> Result<PageRequest, ApiError> {
    let limit = match params.limit {
        None => PageRequest::DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=PageRequest::MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "limit must be an integer from 1 to {}",
                    PageRequest::MAX_LIMIT
                ))
            })?,
    };
    let cursor = params
        .cursor
        .map(|token| Cursor::decode(&token))
        .transpose()
        .map_err(|reason| ApiError::InvalidParameter(reason.to_owned()))?;
    Ok(PageRequest { limit, cursor })
}
