//! rkubelet's own pause image, provisioned locally with no registry.
//!
//! The pause program (`pause/pause.c`) is compiled statically by `build.rs` and
//! embedded in the rkubelet binary ([`BINARY`]); this module wraps it in a
//! one-file rootfs tarball ([`rootfs_tar`]) that the Docker runtime imports as
//! an image (`docker import` semantics, with [`IMAGE_CHANGES`] applied) when the
//! configured infra image is absent. It owns no Docker calls itself: see
//! `DockerRuntime::ensure_infra_image`.
//!
//! # Using the upstream pause image instead
//!
//! Pass `--pod-infra-container-image registry.k8s.io/pause:3.10`. If that image
//! is present locally (pulled beforehand, or `docker load`ed on an air-gapped
//! machine) it is used as is. If it is absent, rkubelet tries to pull it once,
//! and if that fails it imports its own pause program under that name so pods
//! still start; delete the image (`docker rmi`) and pull it to replace it.

/// The default infra image name, used when `--pod-infra-container-image` is not given.
pub const DEFAULT_IMAGE: &str = concat!(
    "rkubelet/pause:",
    env!("CARGO_PKG_VERSION"),
    "-",
    env!("RKUBELET_PAUSE_SOURCE_HASH")
);

/// The statically linked pause program.
pub const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// Path of the pause program inside the image.
pub const ENTRYPOINT: &str = "/pause";

/// Dockerfile instructions applied when importing the rootfs: an imported
/// image has no ENTRYPOINT or CMD of its own.
pub const IMAGE_CHANGES: &[&str] = &[r#"ENTRYPOINT ["/pause"]"#];

/// Commit message recorded on the imported image (`docker history`).
pub const IMAGE_MESSAGE: &str = concat!(
    "rkubelet ",
    env!("CARGO_PKG_VERSION"),
    " pause image, imported locally"
);

/// An in-memory tarball of the pause image's root filesystem: just `/pause`,
/// mode 0755, owned by root, with a fixed mtime so the image is reproducible.
///
/// Fails only if writing to memory fails (it does not in practice).
pub fn rootfs_tar() -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::with_capacity(BINARY.len() + 2048));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(BINARY.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    builder.append_data(&mut header, ENTRYPOINT.trim_start_matches('/'), BINARY)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The ELF program header types of a 64-bit little-endian binary.
    fn elf64_program_header_types(elf: &[u8]) -> Vec<u32> {
        let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
        let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes"));
        assert_eq!(elf[4], 2, "64-bit ELF");
        assert_eq!(elf[5], 1, "little-endian ELF");
        let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
        (0..phnum).map(|i| u32_at(phoff + i * phentsize)).collect()
    }

    #[test]
    fn the_embedded_pause_program_is_a_static_elf_binary() {
        assert_eq!(&BINARY[..4], b"\x7fELF");
        const PT_LOAD: u32 = 1;
        const PT_DYNAMIC: u32 = 2;
        const PT_INTERP: u32 = 3;
        let types = elf64_program_header_types(BINARY);
        assert!(types.contains(&PT_LOAD), "{types:?}");
        assert!(
            !types.contains(&PT_INTERP) && !types.contains(&PT_DYNAMIC),
            "the pause program must be linked statically: {types:?}"
        );
    }

    #[test]
    fn the_rootfs_tarball_holds_only_an_executable_pause() {
        let bytes = rootfs_tar().expect("tarball");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entries = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mode = entry.header().mode().expect("mode");
            let kind = entry.header().entry_type();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("read");
            entries.push((path, mode, kind, content));
        }
        assert_eq!(entries.len(), 1);
        let (path, mode, kind, content) = &entries[0];
        assert_eq!(path, "pause");
        assert_eq!(*mode, 0o755);
        assert_eq!(*kind, tar::EntryType::Regular);
        assert_eq!(content.as_slice(), BINARY);
    }

    #[test]
    fn the_rootfs_tarball_is_reproducible() {
        assert_eq!(rootfs_tar().expect("a"), rootfs_tar().expect("b"));
    }

    #[test]
    fn the_image_entrypoint_is_the_pause_program() {
        assert_eq!(IMAGE_CHANGES, &[format!(r#"ENTRYPOINT ["{ENTRYPOINT}"]"#)]);
        assert!(DEFAULT_IMAGE.starts_with("rkubelet/pause:"));
    }
}
