"""Where the product's own files are: the default workflows and Word templates, the example
config and data that ``dealerdocs init`` copies, and the package's other resources (the web
app's pages and assets, fonts.conf).

The repository keeps the defaults in its top-level folders (``workflows/``, ``templates/docx/``,
``examples/``, ``config.toml``). A wheel carries them as package data under ``engine/product/``
(setup.py copies them there when it builds), so an installed dealerdocs needs no checkout. This
module is the one place that knows both layouts; everything else asks it instead of guessing
from ``__file__``.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ConfigError

#: Where setup.py puts the defaults inside the package (and what it copies there).
PRODUCT_FOLDER = "product"
#: Product layout inside a wheel → the same thing in a checkout (both relative to their root).
LAYOUT = {"workflows": "workflows", "templates": "templates/docx", "examples": "examples",
          "config.toml": "config.toml"}


def package_path(*parts: str) -> Path:
    """A resource of the ``engine`` package as a file-system path (the package is installed as
    a folder, never zipped: LibreOffice, docxtpl and the web server need real files)."""
    root = resources.files("engine")
    if not isinstance(root, Path):  # pragma: no cover - a zipapp or an exotic importer
        raise ConfigError("dealerdocs 必须安装为普通目录（不支持 zip 形式的安装）；请用 pip install 安装")
    return root.joinpath(*parts)


@dataclass(frozen=True)
class Product:
    """The product's default files. ``root`` is ``engine/product`` in a wheel, the repository
    in a checkout; ``installed`` says which."""

    root: Path
    installed: bool

    def _part(self, key: str) -> Path:
        return self.root / (key if self.installed else LAYOUT[key])

    @property
    def workflows(self) -> Path:
        return self._part("workflows")

    @property
    def templates(self) -> Path:
        return self._part("templates")

    @property
    def examples(self) -> Path:
        return self._part("examples")

    @property
    def config(self) -> Path:
        """The example config.toml ``dealerdocs init`` starts from."""
        return self._part("config.toml")


def product() -> Product:
    """The product's defaults: the wheel's package data if present, else the checkout's
    folders. A ConfigError when neither is complete (a broken installation)."""
    installed = package_path(PRODUCT_FOLDER)
    found = (Product(installed, True) if installed.is_dir()
             else Product(package_path().parent, False))
    missing = [p for p in (found.workflows, found.templates, found.config) if not p.exists()]
    if missing:
        raise ConfigError(f"dealerdocs 安装不完整：找不到自带的 {'、'.join(str(p) for p in missing)}；"
                          f"请重新安装（pip install dealerdocs）或在项目目录中运行")
    return found
