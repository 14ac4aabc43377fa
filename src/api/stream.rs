//! The authenticated port's streaming and lifecycle verbs (exec, attach,
//! port-forward, restart).

use axum::Router;

use super::ApiState;

/// The verbs' routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
}
