"""Everything is in pyproject.toml except the package list: the example specs live in the repository's
configs/ folder (README, docs and tests use configs/<name>.yaml, with data paths relative to it) and are
shipped inside the wheel as the package data of ``cellgi.configs``."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["cellgi", "cellgi.*"]), "cellgi.configs"],
    package_dir={"cellgi.configs": "configs"},
)
