//! The image archive: one tar holding both an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) and Docker's `manifest.json` pointing into the same blobs, as `docker
//! save` writes since Docker 25. `docker load` and `podman load` read it; so do `skopeo` and other
//! OCI tools (`oci-archive:`). The layer is stored uncompressed: its digest is then also its diff
//! id, and old Docker versions load it too.

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// What the platform and container runtimes read from the image's config.
#[derive(Debug)]
pub struct ImageConfig {
    /// `repository:tag` the loaded image gets.
    pub tag: String,
    pub env: Vec<(String, String)>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
}

/// Docker's name for a file inside the archive, and what `docker load` reads first.
pub const DOCKER_MANIFEST: &str = "manifest.json";

/// The creation time written into the image: fixed, so that the same inputs give the same image.
const CREATED: &str = "1970-01-01T00:00:00Z";

/// The `sha256:<hex>` digest of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// The image's config blob (OCI image config, which Docker reads as its own).
pub fn config_json(config: &ImageConfig, layer_digest: &str) -> Value {
    let env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "User": config.user,
            "Env": env,
            "Entrypoint": config.entrypoint,
            "WorkingDir": config.working_dir,
            "Labels": config.labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": CREATED, "created_by": "cargo xtask image"}],
    })
}

/// Writes the archive to `path` and returns its image's manifest digest.
pub fn write(path: &Path, config: &ImageConfig, layer: &[u8]) -> anyhow::Result<String> {
    let layer_digest = digest(layer);
    let config_bytes = to_bytes(&config_json(config, &layer_digest))?;
    let config_digest = digest(&config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    });
    let manifest_bytes = to_bytes(&manifest)?;
    let manifest_digest = digest(&manifest_bytes);
    let (_, reference) = config
        .tag
        .rsplit_once(':')
        .unwrap_or((&config.tag, "latest"));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {
                "io.containerd.image.name": qualified_name(&config.tag),
                "org.opencontainers.image.ref.name": reference,
            },
        }],
    });
    let docker_manifest = json!([{
        "Config": blob_path(&config_digest),
        "RepoTags": [config.tag],
        "Layers": [blob_path(&layer_digest)],
    }]);

    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(bytes.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, bytes)
            .with_context(|| format!("cannot add {name} to the archive"))
    };
    add(&blob_path(&config_digest), &config_bytes)?;
    add(&blob_path(&layer_digest), layer)?;
    add(&blob_path(&manifest_digest), &manifest_bytes)?;
    add("index.json", &to_bytes(&index)?)?;
    add(DOCKER_MANIFEST, &to_bytes(&docker_manifest)?)?;
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let archive = builder.into_inner()?;
    std::fs::write(path, archive).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(manifest_digest)
}

/// `docker.io/library/x:t` for `x:t`, as containerd names images in `index.json`.
fn qualified_name(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or_default();
    let has_registry = tag.contains('/') && (first.contains('.') || first.contains(':'));
    match (has_registry, tag.contains('/')) {
        (true, _) => tag.to_owned(),
        (false, true) => format!("docker.io/{tag}"),
        (false, false) => format!("docker.io/library/{tag}"),
    }
}

fn to_bytes(value: &Value) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

/// The Dockerfile that builds the same image from the root filesystem written beside it, for
/// users who build with Docker (`docker build -t TAG DIR`).
pub fn dockerfile(config: &ImageConfig, rootfs_dir: &str, owned_by_airbyte: &[&str]) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut text = String::from(
        "# Written by `cargo xtask image`: the same image as the archive beside it, built from the\n\
         # root filesystem in this directory (`docker build -t NAME .`).\n\
         FROM scratch\n",
    );
    text.push_str(&format!("COPY {rootfs_dir}/ /\n"));
    // COPY keeps modes but not owners.
    let owned: Vec<String> = owned_by_airbyte.iter().map(|p| format!("/{p}")).collect();
    text.push_str(&format!(
        "RUN [\"/bin/sh\", \"-c\", \"chown 1000:1000 {} && chmod 1777 /tmp\"]\n",
        owned.join(" ")
    ));
    for (key, value) in &config.env {
        text.push_str(&format!("ENV {key}={}\n", quote(value)));
    }
    for (key, value) in &config.labels {
        text.push_str(&format!("LABEL {key}={}\n", quote(value)));
    }
    text.push_str(&format!("WORKDIR {}\n", config.working_dir));
    text.push_str(&format!("USER {}\n", config.user));
    let entrypoint: Vec<String> = config.entrypoint.iter().map(|s| quote(s)).collect();
    text.push_str(&format!("ENTRYPOINT [{}]\n", entrypoint.join(", ")));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_as_containerd_does() {
        assert_eq!(qualified_name("sluice:1"), "docker.io/library/sluice:1");
        assert_eq!(qualified_name("a/b:1"), "docker.io/a/b:1");
        assert_eq!(qualified_name("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
        assert_eq!(qualified_name("localhost:5000/b:1"), "localhost:5000/b:1");
    }
}
