"""The registry's rules, as pure functions (the one exception: upstream_meta also reads the
sidecar files beside mirrored tarballs): package names, versions and ranges
(names, semver), where every file lives and the URL it is served at (layout), the
headers each kind of file is served with (headers), tarball records to packages (model),
packages to JSON documents (documents), signatures, the state a registry carries
(registry_state) and what an upstream said of a mirrored version (upstream_meta)."""
