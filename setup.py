"""setuptools hook: the product's default files go into the wheel as package data.

The repository keeps the defaults where people look for them (``workflows/``,
``templates/docx/``, ``examples/``, ``config.toml``); an installed dealerdocs finds them under
``engine/product/`` (engine/defaults.py). setuptools cannot map files from outside a package
into it by configuration alone, so ``build_py`` copies them. An editable install (``pip install
-e .``, what ``make setup`` does) copies nothing: there engine/defaults.py reads the checkout.
Everything else about the package is in pyproject.toml.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# (folder in the repository, glob patterns, folder under engine/product/); keep in step with
# engine/defaults.py LAYOUT and MANIFEST.in (the sdist must carry the same files)
PRODUCT = [
    ("workflows", ["*.toml"], "workflows"),
    ("templates/docx", ["*.docx"], "templates"),
    ("examples", ["*.json", "*.jsonl", "evidence/*"], "examples"),
    (".", ["config.toml"], "."),
]


class BuildWithProduct(build_py):
    """``build_py`` that also copies the product's defaults into ``engine/product/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "engine" / "product"
        for source, patterns, dest in PRODUCT:
            for pattern in patterns:
                for path in sorted((HERE / source).glob(pattern)):
                    if path.is_file() and not path.name.startswith("~$"):  # ~$: Word's lock file
                        out = target / dest / path.relative_to(HERE / source)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, out)


setup(cmdclass={"build_py": BuildWithProduct})
