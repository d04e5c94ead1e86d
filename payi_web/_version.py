"""The package version (its own module: submodules read it while the package is still importing)."""

__version__ = "0.1.0"
