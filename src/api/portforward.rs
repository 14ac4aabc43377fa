//! The authenticated port's port-forward.

use axum::Router;

use super::ApiState;

/// The verbs' routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
}
