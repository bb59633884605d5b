# Build decisions live here (native extensions arrive with issue 4); metadata is in pyproject.toml.
from setuptools import setup

setup()
