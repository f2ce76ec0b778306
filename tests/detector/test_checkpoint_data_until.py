"""How far each site's data had reached, as a partition's ticks said, goes into its
checkpoint row and comes back on load; a checkpoint that does not carry it (unchanged
since) keeps the one written before."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.checkpoint import Checkpoint, CheckpointStore
from plumbing.database import create_engine, session_factory
from records.migrate import upgrade


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_sites_data_until_is_kept_per_partition(
    database: str, fresh_pg_url: str, tmp_path: Path
) -> None:
    url = fresh_pg_url if database == "postgresql" else f"sqlite+aiosqlite:///{tmp_path}/c.db"
    engine = create_engine(url)
    try:
        if database == "sqlite":
            await upgrade(engine)
        store = CheckpointStore(session_factory(engine), "group", "topic")
        first = [("club", "north", 1_772_000_000.0), ("club", "south", 1_771_990_000.5)]
        await store.save(Checkpoint(offsets={0: (10, 5.0), 1: (3, 2.0)}, data_until={0: first}))
        loaded = await store.load([0, 1, 2])
        assert loaded[0].data_until == first
        assert loaded[1].data_until == [] and loaded[2].data_until == []

        await store.save(Checkpoint(offsets={0: (20, 6.0)}))  # unchanged: not carried
        loaded = await store.load([0])
        assert loaded[0].offset == 20 and loaded[0].data_until == first

        later = [("club", "north", 1_772_000_900.0), ("club", "south", 1_771_990_000.5)]
        await store.save(Checkpoint(offsets={0: (30, 7.0)}, data_until={0: later}))
        assert (await store.load([0]))[0].data_until == later
    finally:
        await engine.dispose()
