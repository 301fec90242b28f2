"""staticreg: a static npm registry from a folder of tarballs."""

__version__ = "0.1.0"
