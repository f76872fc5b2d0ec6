"""Every component keeps one linear Alembic history that matches its models."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from jplink.storage.migrations import alembic_config

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ["ca_tsa", "central_server", "adapter_server", "security_server"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_one_head_and_a_linear_history(component: str) -> None:
    script = ScriptDirectory.from_config(
        alembic_config(ROOT / component / "migrations")
    )
    heads = script.get_heads()
    assert len(heads) == 1, f"{component} has several heads: {heads}"
    revisions = list(script.walk_revisions())
    assert revisions, f"{component} has no migrations"
    # Linear: every revision has at most one parent and one child.
    for rev in revisions:
        assert not isinstance(rev.down_revision, tuple), rev.revision
        assert len(rev.nextrev) <= 1, rev.revision


async def _diff(component: str, url: str) -> list[object]:
    import importlib

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from jplink.storage import create_database, upgrade_database

    models = importlib.import_module(f"{component}.models")
    # Modules that declare more tables on the same Base.
    for extra in ("management_models",):
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"{component}.{extra}")
    db = create_database(url)
    try:
        await upgrade_database(db, ROOT / component / "migrations")
        async with db.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c), models.Base.metadata
                )
            )
    finally:
        await db.dispose()


@pytest.mark.parametrize("component", COMPONENTS)
async def test_migrations_create_what_the_models_declare(
    component: str, db_url: str
) -> None:
    diff = await _diff(component, db_url)
    assert diff == [], f"{component}: models and migrations differ: {diff}"
