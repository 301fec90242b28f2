"""Write the registry's documents for a model into a staging folder."""

from __future__ import annotations

from pathlib import Path

from staticreg.build.output import FileSink, Staging
from staticreg.build.readmes import ReadmeStore, ReadmeTexts
from staticreg.config import Config, template_digest
from staticreg.errors import BuildError
from staticreg.npm import documents, layout, registry_state, upstream_meta
from staticreg.npm.model import Package, Registry, identity


def write_documents(registry: Registry, staging: Staging, config: Config, readmes: ReadmeStore) -> None:
    staging.write(layout.PING, documents.dumps(documents.PING_DOCUMENT))
    if config.signing is not None and config.signing.keys:
        staging.write(layout.KEYS, documents.dumps(config.signing.keys_document()))
    if config.index_html:
        staging.write(layout.NOJEKYLL, b"")  # GitHub Pages: serve folders starting with _ as they are
    for package in registry.packages.values():
        write_package(package, staging, config, readmes)


def write_package(
    package: Package, staging: FileSink, config: Config, readmes: ReadmeTexts, stored: dict[str, dict] | None = None
) -> None:
    """`stored`: the manifests a hosted registry's document has now (see hosted), whose
    signatures its versions keep as a previous output's would be kept."""
    name = package.name
    full = layout.packument_path(name)
    readme_id = package.latest.record.readme
    readme = readmes.get(readme_id) if readme_id else None
    # each normalised (and signed) once, for all the documents below
    made = (
        documents.version_manifests(package) if config.signing is None else _signed_manifests(package, config, stored)
    )
    staging.write(full, documents.dumps(documents.packument(package, made, readme)))
    staging.write(layout.abbreviated_path(name), documents.dumps(documents.abbreviated(package, made)))
    staging.write(layout.dist_tags_path(name), documents.dumps(documents.dist_tags_document(package)))
    staging.write(
        layout.package_state_path(name), registry_state.package_state_bytes(package_state(package, config, readmes))
    )
    for version in package.versions:
        staging.write(layout.version_document_path(name, version), documents.dumps(made[version]))
    for tag, version in package.dist_tags.items():
        if tag not in package.versions:
            staging.write(layout.version_document_path(name, tag), documents.dumps(made[version]))
    if config.index_html:  # what clients ask for by a folder's URL: the package document alone
        staging.link(full, layout.zero_config_copy(full))


def package_state(package: Package, config: Config, readmes: ReadmeTexts) -> registry_state.PackageState:
    """What the package's files are made from that its documents do not say (see registry_state)."""
    state = registry_state.PackageState(
        dist_tags={o.tag: o.version for o in config.dist_tags if o.name == package.name},
        deprecations=[(o.range, o.message) for o in config.deprecations if o.name == package.name],
    )
    for version, entry in package.versions.items():
        readme = entry.record.readme
        state.versions[version] = registry_state.VersionState(
            readme, entry.record.readme_filename if readme else None, upstream_entry(entry.upstream)
        )
        if readme and readme not in state.readmes:
            state.readmes[readme] = readmes.get(readme)
    return state


def upstream_entry(meta: upstream_meta.UpstreamMeta | None) -> dict | None:
    """A mirrored version's sidecar as its package's state keeps it (see registry_state.VersionState)."""
    if meta is None:
        return None
    data = meta.to_json()
    data.pop("attestation_bundle", None)
    return {"meta": data, "digest": meta.digest, "has_bundle": meta.has_bundle}


def upstream_of(entry: dict | None) -> upstream_meta.UpstreamMeta | None:
    """The sidecar a package's state kept, as the build read it (raises upstream_meta.SidecarProblem)."""
    if entry is None:
        return None
    from dataclasses import replace

    meta = upstream_meta.validate(entry["meta"])
    return replace(meta, digest=entry["digest"], has_bundle=entry["has_bundle"])


def registry_settings(config: Config) -> registry_state.Settings:
    signer = config.signing.signer if config.signing is not None else None
    return registry_state.Settings(
        base_url=config.base_url,
        title=config.title,
        site=config.site,
        index_html=config.index_html,
        templates=template_digest(config),
        signing_key=signer.keyid if signer else "",
        precompress=config.precompress,
    )


def depends_on(package: Package) -> list[str]:
    """Every name any version of the package depends on."""

    found = {d for entry in package.versions.values() for d in identity(entry.record)[3]}
    return sorted(found)


def write_registry_state(
    staging: Staging, config: Config, registry: Registry, rows: dict[str, dict], fingerprints: dict[str, str]
) -> str:
    """Write the registry's state (and the shared pages' marker); returns the state's digest."""
    deps = {name: depends_on(p) for name, p in registry.packages.items()}
    state = registry_state.RegistryState(
        registry_settings(config), rows, {n: d for n, d in deps.items() if d}, dict(fingerprints)
    )
    data = registry_state.registry_state_bytes(state)
    staging.write(layout.REGISTRY_STATE, data)
    digest = registry_state.state_digest(data)
    if config.site:
        staging.write(layout.SHARED_PAGES_STATE, registry_state.shared_pages_bytes(digest))
    return digest


def _signed_manifests(package: Package, config: Config, stored: dict[str, dict] | None = None) -> dict[str, dict]:
    """The manifests with their dist.signatures. A mirrored version brings its upstream's
    (the model applies its sidecar, see upstream_meta); our own come from the keyring, and
    with retired keys the previous output's signatures are read, to be kept (see
    signatures). For a hosted registry they come from its documents as they are (`stored`)."""
    from staticreg import keyfiles
    from staticreg.npm.signatures import KeyProblem

    keyring = config.signing
    if keyring is None:  # write_package asks for signatures only with a keyring
        return documents.version_manifests(package)
    if stored is not None:
        return _signed_from_stored(package, keyring, stored)
    try:
        previous = keyfiles.previous_signatures(config.output_dir, package.name) if keyring.retired else {}
        return documents.version_manifests(package, keyring, previous)
    except KeyProblem as exc:
        raise BuildError(f"{exc}. Nothing was written (the previous output is unchanged)") from None


def _signed_from_stored(package: Package, keyring, stored: dict[str, dict]) -> dict[str, dict]:
    from staticreg.npm.signatures import KeyProblem

    signatures = {
        v: m["dist"]["signatures"]
        for v, m in stored.items()
        if isinstance(m, dict) and isinstance(m.get("dist"), dict) and isinstance(m["dist"].get("signatures"), list)
    }
    upstream = {key.keyid for key in keyring.upstream}
    brought = {
        v: sigs
        for v, sigs in signatures.items()
        if sigs and all(isinstance(s, dict) and s.get("keyid") in upstream for s in sigs)
    }
    try:
        return documents.version_manifests(package, keyring, signatures, brought)
    except KeyProblem as exc:
        raise BuildError(f"{exc}. Nothing was written") from None


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
