//! An in-memory [`ContainerRuntime`](super::ContainerRuntime) for unit tests of pod logic.
