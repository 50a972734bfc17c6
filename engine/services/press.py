"""The renderer and the converter an engine's services use, each made on first use.

docxtpl and its stack load only when something renders, and LibreOffice (a warm pool when
config.toml asks for one or a pool is running, else a cold ``soffice`` per call) only when
something converts: commands that only read start fast. Services hold the :class:`Press` and
ask it for ``renderer`` and ``converter`` when they need them, so every service uses the same
instances (and a converter passed in by a caller, e.g. a test's pool, is the one used).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..config import Config
from ..convert import Converter, SofficeConverter

if TYPE_CHECKING:  # pragma: no cover
    from ..render import Renderer
    from ..warm import WarmConverter


class Press:
    """Renders templates and converts documents for one dealership (one config.toml)."""

    def __init__(self, config: Config, *, converter: Converter | None = None,
                 renderer: "Renderer | None" = None) -> None:
        self.config = config
        self._renderer = renderer
        self._converter = converter
        self._owns_converter = converter is None

    @property
    def renderer(self) -> "Renderer":
        if self._renderer is None:
            from ..render import Renderer

            self._renderer = Renderer()
        return self._renderer

    @property
    def converter(self) -> Converter:
        if self._converter is None:
            self._converter = self.warm_converter() if self._warm_wanted() \
                else SofficeConverter(self.config.libreoffice.binary,
                                      self.config.libreoffice.timeout)
        return self._converter

    def warm_converter(self, instances: int | None = None) -> "WarmConverter":
        """The pool of warm LibreOffice instances of this store (running or not)."""
        from ..warm import WarmConverter

        lo = self.config.libreoffice
        return WarmConverter(self.config.pool_dir,
                             instances=instances or lo.warm_instances or os.cpu_count() or 2,
                             timeout=lo.timeout, python=lo.python, binary=lo.binary,
                             autostart=lo.warm_instances > 0, recycle_after=lo.recycle_after)

    def _warm_wanted(self) -> bool:
        return (self.config.libreoffice.warm_instances > 0
                or (self.config.pool_dir / "pool.json").is_file())

    def close(self) -> None:
        """Stop the converter this press made (one passed in is its owner's to close)."""
        if self._owns_converter and self._converter is not None:
            self._converter.close()
