# Build decisions live here; metadata is in pyproject.toml.
#
# Folders with generic names (export/, later kernels/) are installed inside the sportsfusion
# namespace, never as top-level packages that would clash with PyPI's own `export` or `kernels`.
from setuptools import find_packages, setup

NAMESPACED = {"sportsfusion.export": "export"}

setup(
    packages=find_packages(include=["sportsfusion", "sportsfusion.*"]) + list(NAMESPACED),
    package_dir=NAMESPACED,
)
