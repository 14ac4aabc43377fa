//! Manifest sources.
