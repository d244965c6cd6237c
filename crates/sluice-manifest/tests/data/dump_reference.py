"""Writes the reference's resolved tree of manifests as JSON, for tests/resolve_reference.rs.

Runs the two stages the reference (airbyte-cdk) applies to every manifest it reads: reference
resolution, then type and $parameters propagation, after defaulting the top-level type.

    /tmp/ref/bin/python dump_reference.py OUT_DIR MANIFEST.yaml...

Each MANIFEST is written to OUT_DIR/<name>.resolved.json, <name> being the manifest's folder
name (or file stem when the file is not called manifest.yaml).
"""

import json
import pathlib
import sys

import yaml
from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import (
    ManifestComponentTransformer,
)
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import (
    ManifestReferenceResolver,
)


def resolved(manifest_path: pathlib.Path) -> dict:
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest.setdefault("type", "DeclarativeSource")
    tree = ManifestReferenceResolver().preprocess_manifest(manifest)
    return ManifestComponentTransformer().propagate_types_and_parameters("", tree, {})


def main() -> None:
    out_dir = pathlib.Path(sys.argv[1])
    for arg in sys.argv[2:]:
        path = pathlib.Path(arg)
        name = path.parent.name if path.name == "manifest.yaml" else path.stem
        text = json.dumps(resolved(path), indent=1, ensure_ascii=False, default=str)
        (out_dir / f"{name}.resolved.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
