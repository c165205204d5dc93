"""Shared hypothesis pieces for the source parsers: arbitrary JSON, mutated real responses, and the
contract that a parser returns a record or raises a SourceError, nothing else."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from watcher.errors import SourceError
from watcher.record import RegistryRecord

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def mutate(document: object, data: st.DataObject) -> object:
    """Replace one randomly chosen node of a real response with an arbitrary JSON value."""
    if isinstance(document, dict) and document and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(document)))
        return {**document, key: mutate(document[key], data)}
    if isinstance(document, list) and document and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(document) - 1))
        return [*document[:index], mutate(document[index], data), *document[index + 1 :]]
    return data.draw(json_values)


def only_records_or_source_errors(run: Callable[[], RegistryRecord]) -> None:
    try:
        result = run()
    except SourceError:
        return
    assert isinstance(result, RegistryRecord)


def only_records_or_handled_errors(run: Callable[[], RegistryRecord]) -> None:
    """A record, or a SourceError the mapping raised on purpose (not a bug caught by ``record_of``)."""
    try:
        result = run()
    except SourceError as error:
        assert "unexpected response shape" not in str(error)
        return
    assert isinstance(result, RegistryRecord)
