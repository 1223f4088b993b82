"""Package discovery for the fixed top-level layout.

The product card fixes the top level (``hw/``, ``control/``, ``sim/`` …) while the
import namespace is ``mevblade``: ``hw/`` imports as ``mevblade.hw`` and so on.
``mevblade`` itself is an implicit namespace package. Everything else is in
pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = {"hw": "mevblade.hw", "control": "mevblade.control", "sim": "mevblade.sim"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder, name in ROOTS.items():
    packages.append(name)
    package_dir[name] = folder
    packages.extend(f"{name}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=package_dir)
