//! Where users are kept: the interface the handlers use, and its stores.
//!
//! Handlers see only [`UserStore`], so another database can be added as a
//! new implementation without touching them. The one built in is
//! [`SqliteStore`], an embedded file that needs nothing installed.

mod sqlite;

use std::future::Future;

pub use sqlite::SqliteStore;

use crate::users::{NewUser, Page, PageRequest, User, UserChanges, UserId};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user already has this address, in any letter case.
    #[error("another user already has this email address")]
    DuplicateEmail,

    /// The database failed; the cause chain says how.
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

/// The operations the users API needs from a database.
///
/// Every write is durable when its future resolves: an acknowledged change
/// survives a crash of the process.
pub trait UserStore: Clone + Send + Sync + 'static {
    /// Stores a new user and returns it with its id and timestamps.
    fn create(&self, user: NewUser) -> impl Future<Output = Result<User, StoreError>> + Send;

    /// The user with this id, if there is one.
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// One page of users, newest first.
    fn list(&self, page: PageRequest) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Applies changes to a user and returns it, or `None` if there is no
    /// such user.
    fn update(
        &self,
        id: UserId,
        changes: UserChanges,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Deletes a user; `false` if there was no such user.
    fn delete(&self, id: UserId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Succeeds when the database answers a query.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Finishes pending work and leaves the database tidy, before exit.
    fn close(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
