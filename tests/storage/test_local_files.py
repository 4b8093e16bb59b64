"""Local folder support: paths, copies of the same content, removed files."""

from __future__ import annotations

import hashlib

import pytest

from core.errors import UnknownMediaError
from storage import Database, LocalFile, NewMedia, NewUnit, OwnerStore
from tests.storage.conftest import CLIP, add_photo, vecs


@pytest.fixture
async def local(db: Database) -> OwnerStore:
    return db.owner((await db.owners.ensure("local", "default")).id)


def file(path: str, content: bytes, mtime_ns: int = 1) -> LocalFile:
    return LocalFile(path, len(content), mtime_ns, hashlib.sha256(content).hexdigest())


async def index(store: OwnerStore, f: LocalFile, kind: str = "photo"):
    return await store.media.commit(
        NewMedia(kind, f.file_unique_id, size=f.size, local=f),  # type: ignore[arg-type]
        [NewUnit.image()],
        {CLIP: vecs(1)},
    )


async def test_local_item_records_its_path(local: OwnerStore) -> None:
    f = file("/photos/cat.jpg", b"cat")
    result = await index(local, f)
    media = await local.media.get(result.media_id)
    assert media is not None and media.path == "/photos/cat.jpg" and media.file_id is None
    assert media.file_unique_id == "local:" + f.sha256
    indexed = await local.local_files.indexed()
    assert indexed == {f.path: LocalFile(f.path, 3, 1, f.sha256, result.media_id)}


async def test_copy_of_known_content_is_a_duplicate_but_its_path_is_kept(
    local: OwnerStore,
) -> None:
    a = await index(local, file("/b/copy.jpg", b"same"))
    b = await index(local, file("/a/orig.jpg", b"same"))
    assert b.duplicate and b.media_id == a.media_id
    assert {p: f.media_id for p, f in (await local.local_files.indexed()).items()} == {
        "/a/orig.jpg": a.media_id,
        "/b/copy.jpg": a.media_id,
    }
    media = await local.media.get(a.media_id)
    assert media is not None and media.path == "/a/orig.jpg"  # the smallest path


async def test_put_local_file_updates_mtime_or_links_a_copy(local: OwnerStore) -> None:
    f = file("/p/x.jpg", b"x")
    r = await index(local, f)
    touched = LocalFile(f.path, f.size, 99, f.sha256)
    await local.local_files.put(touched, r.media_id)
    await local.local_files.put(LocalFile("/q/x.jpg", f.size, 5, f.sha256), r.media_id)
    files = await local.local_files.indexed()
    assert files["/p/x.jpg"].mtime_ns == 99 and files["/q/x.jpg"].media_id == r.media_id
    with pytest.raises(UnknownMediaError):
        await local.local_files.put(touched, 999_999)


async def test_removing_paths_deletes_items_left_without_one(local: OwnerStore) -> None:
    shared = await index(local, file("/a.jpg", b"shared"))
    await index(local, file("/b.jpg", b"shared"))
    alone = await index(local, file("/c.jpg", b"alone"))
    first = await local.local_files.remove(["/a.jpg", "/not-indexed.jpg"])
    assert first.media_ids == () and first.by_model == {}
    assert await local.media.get(shared.media_id) is not None
    second = await local.local_files.remove(["/b.jpg", "/c.jpg"])
    assert second.media_ids == tuple(sorted([shared.media_id, alone.media_id]))
    assert second.by_model == {CLIP: shared.unit_ids + alone.unit_ids}
    assert second.versions == {CLIP: 3}
    assert await local.local_files.indexed() == {}
    assert await local.media.page() == []


async def test_items_with_a_telegram_file_survive_losing_their_path(
    store: OwnerStore,
) -> None:
    f = file("/x.jpg", b"x")
    r = await add_photo(store, "tg")
    await store.local_files.put(f, r.media_id)
    result = await store.local_files.remove([f.path])
    assert result.media_ids == () and await store.media.get(r.media_id) is not None
