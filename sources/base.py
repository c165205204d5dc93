"""What every source provides: validated options, identifier checks, and ``fetch``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from watcher.record import RegistryRecord


class SourceOptions(BaseModel):
    """Options of a ``[sources.<name>]`` table. Unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful fetch: the mapped record and the raw responses behind it (kept for audit)."""

    record: RegistryRecord
    raw: dict[str, str] = field(default_factory=dict)


class Source(ABC):
    """A registry adapter. ``fetch`` returns a valid record or raises a ``SourceError`` subclass."""

    type_name: ClassVar[str] = ""
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, name: str, options: SourceOptions) -> None:
        self.name = name
        self.options = options

    def normalise_id(self, registry_id: str) -> str:
        """The registry's canonical form of an identifier; ValueError saying why when it is invalid."""
        value = registry_id.strip()
        if not value:
            raise ValueError("registry_id is empty")
        return value

    @abstractmethod
    async def fetch(self, registry_id: str) -> Fetched:
        """Fetch and map one company. Raises a ``watcher.errors.SourceError`` subclass on failure."""

    async def aclose(self) -> None:
        """Release connections. Sources without any keep the default."""
