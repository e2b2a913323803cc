"""The commands over PostgreSQL metadata, as processes: one setting moves every command there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage.contract import StoreUnavailableError
from storage.metadata import ConstraintError, MetadataDB, MetadataQueryError
from tests.integration.test_api_metrics import agridrone_api
from tests.servers import Postgres, running_postgres

pytestmark = pytest.mark.integration


def agridrone(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """One ``agridrone`` command as a process with ``env`` over a clean AGRIDRONE_* set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGRIDRONE_")}
    return subprocess.run(
        [sys.executable, "-m", "agridrone.cli", *argv],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_key_created_by_the_cli_opens_the_api_over_the_same_postgres(
    postgres_metadata_url: str, tmp_path: Path
) -> None:
    env = {
        "AGRIDRONE_METADATA_URL": postgres_metadata_url,
        "AGRIDRONE_DATA_DIR": str(tmp_path / "data"),
    }
    created = agridrone(env, "keys", "create", "--role", "operator", "--subject", "ops")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    coop = agridrone(env, "coops", "set", "htx-a", "--name", "HTX A")
    assert coop.returncode == 0, coop.stderr
    # The path flag the API helper passes is overruled by the URL: nothing goes to SQLite.
    with agridrone_api(tmp_path, env) as url:
        answer = httpx.get(
            f"{url}/api/v1/fields", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    assert not (tmp_path / "agridrone.db").exists()
    listed = agridrone(env, "coops", "list")
    assert "htx-a" in listed.stdout


def test_an_unreachable_postgres_is_a_clear_error_naming_it_without_the_password(
    tmp_path: Path,
) -> None:
    from tests.servers import free_port

    url = f"postgresql://agridrone:s3cret@127.0.0.1:{free_port()}/agridrone"
    done = agridrone(
        {"AGRIDRONE_METADATA_URL": url, "AGRIDRONE_DATA_DIR": str(tmp_path)}, "keys", "list"
    )
    assert done.returncode == 1
    assert "cannot connect" in done.stderr
    assert "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert "127.0.0.1" in done.stderr
    assert "s3cret" not in done.stderr


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Postgres]:
    """A PostgreSQL of this test's own, for tests that restart it."""
    with running_postgres(tmp_path / "pg") as server:
        yield server


def test_a_read_after_postgres_restarted_is_answered(own_postgres: Postgres) -> None:
    db = MetadataDB(own_postgres.create_database("restart"))
    try:
        db.set_coop("htx-a", name="HTX A")
        own_postgres.stop()
        own_postgres.start()
        coop = db.coop("htx-a")  # the pooled connection died with the server
        assert coop is not None
        assert coop.name == "HTX A"
        db.set_coop("htx-b", name="HTX B")
        assert [c.id for c in db.coops()] == ["htx-a", "htx-b"]
    finally:
        db.close()


def test_a_write_after_postgres_restarted_fails_once_then_works(own_postgres: Postgres) -> None:
    db = MetadataDB(own_postgres.create_database("restart"))
    try:
        own_postgres.stop()
        own_postgres.start()
        with pytest.raises(StoreUnavailableError, match="metadata database postgresql://"):
            db.set_coop("htx-a", name="HTX A")
        db.set_coop("htx-a", name="HTX A")  # never retried silently: the caller's choice
        assert [c.id for c in db.coops()] == ["htx-a"]
    finally:
        db.close()


def test_a_statement_postgres_refuses_is_a_plain_error_not_an_unavailable_store(
    postgres_metadata_url: str,
) -> None:
    db = MetadataDB(postgres_metadata_url)
    try:
        with pytest.raises(MetadataQueryError, match="LIMIT must not be negative") as info:
            db.rejected_messages(0, 1, limit=-1)
        assert not isinstance(info.value, StoreUnavailableError)
        assert "metadata database postgresql://" in str(info.value)
        assert db.coops() == []  # the pool is fine afterwards
    finally:
        db.close()


def test_a_unique_violation_over_postgres_is_still_a_constraint_error(
    postgres_metadata_url: str,
) -> None:
    db = MetadataDB(postgres_metadata_url)
    try:
        aggregate, version = sorted(db.applied_migrations())[0]
        with pytest.raises(ConstraintError), db._write() as tx:
            tx.execute(
                "INSERT INTO schema_migrations (aggregate, version, description, applied_ms)"
                " VALUES (?, ?, 'again', 0)",
                (aggregate, version),
            )
    finally:
        db.close()
