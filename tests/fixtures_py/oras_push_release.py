"""Builds a release image (format v1, docs/design.md §3 and docs/format.md) with PyPI's oras
SDK, independently of releasectl's code, and pushes it to a plain-HTTP registry.

Usage: oras_push_release.py HOST REPOSITORY PROJECT COMMIT WORKDIR

Only the format description is followed: the config blob and its media type, a metadata layer
whose resources record names the resources layer's digest, a resources layer that is a
gzip'd tar made by Python's tarfile, and the revision annotation. oras's manifest-level API
(upload_blob + upload_manifest) is used so this script, not oras, chooses the config and the
annotations. Prints the manifest digest oras pushed.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

import oras.provider

CONFIG_MEDIA_TYPE = "application/vnd.releasectl.release.config.v1+json"
METADATA_MEDIA_TYPE = "application/vnd.releasectl.release.metadata.v1+json"
RESOURCES_MEDIA_TYPE = "application/vnd.releasectl.release.resources.v1.tar+gzip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"

# Two files, three objects; one file is multi-document YAML, one is JSON.
FILES = {
    "app/deployment.yaml": (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n  name: web\n  namespace: shop\n"
        "spec:\n  replicas: 1\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata:\n  name: web\n  namespace: shop\n"
        "spec:\n  ports:\n    - port: 80\n"
    ),
    "namespace.json": json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    ),
}
OBJECTS = [
    {"api_version": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
    {"api_version": "v1", "kind": "Namespace", "namespace": None, "name": "shop"},
    {"api_version": "v1", "kind": "Service", "namespace": "shop", "name": "web"},
]
DOCUMENTS = {"app/deployment.yaml": 2, "namespace.json": 1}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def resources_layer() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # Not sorted (releasectl sorts what it writes; a reader must not depend on it), and
        # with a directory entry, which readers allow and ignore.
        for path in ["namespace.json", "app/", "app/deployment.yaml"]:
            info = tarfile.TarInfo(path.rstrip("/"))
            if path.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            data = FILES[path].encode()
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def main() -> None:
    host, repository, project, commit, workdir = sys.argv[1:6]
    resources = resources_layer()
    files = [
        {
            "path": path,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "size": len(text.encode()),
            "documents": DOCUMENTS[path],
        }
        for path, text in sorted(FILES.items())
    ]
    metadata = {
        "format_version": 1,
        "release": {
            "repository": repository,
            "project": project,
            "commit": commit,
            "number": None,
            "aliases": [],
            "created_at": "2026-01-02T03:04:05Z",
        },
        "trigger": {"type": "manual", "branch": None, "tag": None, "triggered_by": "oras-test"},
        "source": None,
        "artifacts": [],
        "resources": {
            "layer_digest": digest(resources),
            "layer_size": len(resources),
            "uncompressed_size": sum(f["size"] for f in files),
            "documents": sum(f["documents"] for f in files),
            "files": files,
            "objects": OBJECTS,
        },
        # Readers ignore fields they do not know.
        "produced_by": "oras-python",
    }
    config = {
        "format_version": 1,
        "repository": repository,
        "project": project,
        "commit": commit,
    }
    blobs = {
        "config.json": (CONFIG_MEDIA_TYPE, json.dumps(config).encode()),
        "metadata.json": (METADATA_MEDIA_TYPE, json.dumps(metadata).encode()),
        "resources.tar.gz": (RESOURCES_MEDIA_TYPE, resources),
        # An extra layer of a type readers do not know (an SBOM, say): ignored by them.
        "sbom.json": ("application/vnd.example.sbom.v1+json", b'{"packages":[]}'),
    }

    registry = oras.provider.Registry(hostname=host, insecure=True)
    target = f"{host}/{repository}/{project}:{commit}"
    container = registry.get_container(target)
    descriptors = {}
    for name, (media_type, data) in blobs.items():
        path = os.path.join(workdir, name)
        with open(path, "wb") as f:
            f.write(data)
        descriptor = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
        if name != "config.json":
            descriptor["annotations"] = {"org.opencontainers.image.title": name}
        response = registry.upload_blob(path, container, descriptor)
        response.raise_for_status()
        descriptors[name] = descriptor

    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptors["config.json"],
        # Readers find layers by media type, in any order.
        "layers": [
            descriptors["sbom.json"],
            descriptors["resources.tar.gz"],
            descriptors["metadata.json"],
        ],
        "annotations": {
            "org.opencontainers.image.revision": commit,
            "org.opencontainers.image.title": project,
            "org.opencontainers.image.created": metadata["release"]["created_at"],
        },
    }
    response = registry.upload_manifest(manifest, container)
    response.raise_for_status()
    print(response.headers["Docker-Content-Digest"])


if __name__ == "__main__":
    main()
