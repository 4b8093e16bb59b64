"""Which models answer for an owner (its *slots*), and the durable-write guard both the ingest
pipeline and the re-embedder rely on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from core.errors import IncompleteModelError, UnknownOwnerError
from storage import OwnerStore

__all__ = ["activate_complete_models", "durable", "model_slot"]

T = TypeVar("T")


def model_slot(config: Any) -> str:
    """The ``active_models`` slot of a model: its bundle name, so a new version of a model
    replaces the old one in the same slot and a new model gets a slot of its own."""
    return str(config.name)


async def durable(write: Awaitable[T]) -> T:
    """Let a database write run to its end even if the awaiting task is cancelled: a write cut
    short at the wrong moment could leave the shared writer connection inside a transaction,
    and a finished write is what the next start relies on anyway."""
    return await asyncio.shield(write)


async def activate_complete_models(store: OwnerStore, slots: Mapping[str, str]) -> dict[str, str]:
    """Give the owner each ``slot -> model`` it has no slot for yet, when that model's vectors
    are complete; returns the slots set. Existing slots are left alone (switching them is
    :mod:`core.ingest.reembed`'s job)."""
    active = await store.models.active()
    added: dict[str, str] = {}
    for slot, model_id in slots.items():
        if slot in active:
            continue
        try:
            await durable(store.models.set_active({slot: model_id}))
        except IncompleteModelError:
            continue
        except UnknownOwnerError:
            return added
        added[slot] = model_id
    return added
