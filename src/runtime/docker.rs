//! The Docker implementation of [`ContainerRuntime`](super::ContainerRuntime), through bollard.
