//! The authenticated port's pod lifecycle verbs.

use axum::Router;

use super::ApiState;

/// The verbs' routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
}
