//! The request timeout: a request still unanswered after the limit is
//! answered 503 and its handler's future dropped.
//!
//! Written here rather than taken from `axum::middleware::from_fn` or
//! `tower::timeout`: the first boxes a future and clones the inner service
//! on every request, the second answers with an error that needs another
//! layer to become a response. This one polls the handler first and arms
//! the timer only if the handler is not done at once, so a request that
//! never waits never touches the timer wheel.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::context::Failure;
use crate::error::ApiError;

/// Wraps a service in [`RequestTimeout`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestTimeoutLayer {
    limit: Duration,
}

impl RequestTimeoutLayer {
    /// A layer that gives every request at most `limit`.
    pub(crate) fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            limit: self.limit,
        }
    }
}

/// A service that answers 503 for requests its inner service takes longer
/// than the limit to answer.
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<Request> for RequestTimeout<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        TimeoutFuture {
            inner: self.inner.call(request),
            deadline: None,
            limit: self.limit,
        }
    }
}

pin_project! {
    /// The answer of [`RequestTimeout`]: the inner answer, or a 503 once
    /// the limit has passed.
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        // Armed on the first poll that finds the handler still working;
        // boxed so that the common case carries no timer at all.
        deadline: Option<Pin<Box<Sleep>>>,
        limit: Duration,
    }
}

impl<F> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }

        let limit = *this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        ready!(deadline.as_mut().poll(cx));

        let mut response = ApiError::Timeout.into_response();
        response.extensions_mut().insert(Failure::TimedOut(limit));
        Poll::Ready(Ok(response))
    }
}
