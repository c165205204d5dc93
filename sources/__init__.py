"""Registry sources, one per file, registered by their ``type`` name.

``sources/<type>.py`` defines a :class:`sources.base.Source` subclass decorated with
:func:`register`; subpackages (``sources/http/``, ``sources/feeds/``) hold what several sources
share. Modules are imported on first use, so adding a registry is adding one file and the command
line does not pay for sources it does not use.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sources.base import Source

_REGISTRY: dict[str, type[Source]] = {}
# Modules of this package that are no source; its subpackages (``http``, ``feeds``: what several
# sources share) are none either.
_NOT_SOURCES = {"base"}
# Type names whose module is named otherwise: a ``json`` or ``html`` module in this package would
# shadow the standard library's wherever this folder ends up on sys.path.
_MODULE_OF = {"json": "json_feed", "html": "html_page"}
_TYPE_OF = {module: type_name for type_name, module in _MODULE_OF.items()}


def register(type_name: str):
    """Class decorator: make a source available under ``type = "<type_name>"`` in the config."""

    def decorate(cls: type[Source]) -> type[Source]:
        cls.type_name = type_name
        _REGISTRY[type_name] = cls
        return cls

    return decorate


def available_types() -> list[str]:
    return sorted(
        _TYPE_OF.get(info.name, info.name)
        for info in pkgutil.iter_modules(__path__)
        if not info.ispkg and info.name not in _NOT_SOURCES and not info.name.startswith("_")
    )


def source_class(type_name: str) -> type[Source]:
    """The class registered for ``type_name``; KeyError with the known types when there is none."""
    if type_name not in _REGISTRY and type_name in available_types():
        importlib.import_module(f"sources.{_MODULE_OF.get(type_name, type_name)}")
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise KeyError(f"unknown source type {type_name!r} (known: {', '.join(available_types())})") from None
