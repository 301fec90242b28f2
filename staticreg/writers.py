"""Write the registry's documents for a model into a staging folder."""

from __future__ import annotations

from pathlib import Path

from staticreg import documents, layout, upstream_meta
from staticreg.config import Config
from staticreg.errors import BuildError
from staticreg.model import Package, Registry
from staticreg.output import Staging
from staticreg.readmes import ReadmeStore


def write_documents(registry: Registry, staging: Staging, config: Config, readmes: ReadmeStore) -> None:
    staging.write(layout.PING, documents.dumps(documents.PING_DOCUMENT))
    if config.index_html:
        staging.write(layout.NOJEKYLL, b"")  # GitHub Pages: serve folders starting with _ as they are
    for package in registry.packages.values():
        write_package(package, staging, config, readmes)


def write_package(package: Package, staging: Staging, config: Config, readmes: ReadmeStore) -> None:
    name = package.name
    full = layout.packument_path(name)
    readme_id = package.latest.record.readme
    readme = readmes.get(readme_id) if readme_id else None
    made = documents.version_manifests(package)  # each normalised once, for all the documents below
    staging.write(full, documents.dumps(documents.packument(package, made, readme)))
    staging.write(layout.abbreviated_path(name), documents.dumps(documents.abbreviated(package, made)))
    staging.write(layout.dist_tags_path(name), documents.dumps(documents.dist_tags_document(package)))
    paths = [full]
    for version in package.versions:
        path = layout.version_document_path(name, version)
        staging.write(path, documents.dumps(made[version]))
        paths.append(path)
    for tag, version in package.dist_tags.items():
        if tag not in package.versions:
            path = layout.version_document_path(name, tag)
            staging.write(path, documents.dumps(made[version]))
            paths.append(path)
    if config.index_html:
        for path in paths:
            staging.link(path, layout.zero_config_copy(path))


def write_attestations(registry: Registry, staging: Staging, input_dir: Path) -> None:
    """Each mirrored version's attestation bundle, as the upstream served it (see upstream_meta)."""
    for package in registry.packages.values():
        for version, entry in package.versions.items():
            if entry.upstream is None or not entry.upstream.has_bundle:
                continue
            try:
                bundle = upstream_meta.bundle_of(input_dir, entry.record.source, entry.upstream)
            except upstream_meta.SidecarProblem as exc:
                raise BuildError(f"{entry.record.source}{upstream_meta.SUFFIX}: {exc}") from None
            staging.write(layout.attestation_path(package.name, version), documents.dumps(bundle))
