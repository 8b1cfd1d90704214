"""The one thing pyproject.toml cannot say: the package list is found *and* extended.

`bulletin.defaults.templates`, `.content` and `.subscribers` are the
repository's top-level folders mapped into the package (see `package-dir` in
pyproject.toml), so a wheel carries the default templates, the sample issue and
the sample lists without a second copy in git. Everything else lives in
pyproject.toml.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["bulletin", "bulletin.*"])
      + ["bulletin.defaults.templates", "bulletin.defaults.content", "bulletin.defaults.subscribers"])
