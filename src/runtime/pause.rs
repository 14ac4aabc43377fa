//! rkubelet's own pause image, provisioned locally with no registry.
//!
//! The pause program (`pause/pause.c`) is compiled statically by `build.rs` and
//! embedded in the rkubelet binary; this module wraps it in a one-file rootfs
//! tarball that the runtime imports as an image.

/// The default infra image name, used when `--pod-infra-container-image` is not given.
pub const DEFAULT_IMAGE: &str = concat!("rkubelet/pause:", env!("CARGO_PKG_VERSION"));
