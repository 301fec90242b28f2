"""The live dev registry, `staticreg serve`: the server (serve), rebuilding when the input
changes (watch), and the endpoints npm publish and unpublish talk to (publish,
config_edit)."""
