"""What the configured feeds (``json``, ``html``) share: :class:`ConfiguredFeedSource`, their base.

A bank configures a URL template and where each field is; no code. The modules of this package hold
the rest: :mod:`.mapping` (the configured mapping and options), :mod:`.assembly` (the record a mapping
makes of an answer) and :mod:`.json_path` (the path language of ``json`` feeds).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from sources.feeds.mapping import FeedOptions
from sources.http import HttpSource
from sources.http.responses import raise_for_status
from watcher.errors import ParseError
from watcher.identifiers import normaliser_for


class ConfiguredFeedSource(HttpSource):
    """A feed mapped by its options, so ``map_raw`` is an instance method, not a classmethod.

    Replay maps saved files with a class alone, so these sources are not replay formats.
    """

    settings: FeedOptions
    payload_name: ClassVar[str] = "response"
    accept: ClassVar[str] = "*/*"

    def normalise_id(self, registry_id: str) -> str:
        """Checked by ``id_kind`` when the bank set one; otherwise any non-empty identifier."""
        if self.settings.id_kind is None:
            return super().normalise_id(registry_id)
        return normaliser_for(self.settings.id_kind)(unicodedata.normalize("NFKC", registry_id))

    def headers(self) -> dict[str, str]:
        return {"Accept": self.accept, **self.settings.headers}

    @property
    def mapping_fingerprint(self) -> str:
        """The configured mapping maps the answers too; headers (secrets) and the display name play
        no part in it."""
        mapping = self.settings.model_dump_json(exclude={"headers", "display_name"})
        return f"{super().mapping_fingerprint}\0{mapping}"

    async def fetch_raw(self, registry_id: str) -> dict[str, str]:
        context = {"source": self.name, "registry_id": registry_id}
        path = self.settings.url.format(id=quote(registry_id, safe=""))
        response = await self.http.get(path, registry_id=registry_id)
        raise_for_status(
            response, what=self.payload_name, context=context, not_found=f"no company {registry_id} at {path}"
        )
        return {self.payload_name: response.text}

    def payload(self, raw: Mapping[str, str]) -> str:
        """The one answer text a feed fetches."""
        if self.payload_name not in raw:
            raise ParseError(f"no {self.payload_name} in the raw responses")
        return raw[self.payload_name]
