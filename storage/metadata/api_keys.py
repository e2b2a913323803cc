"""API keys as stored: their hashes, roles and subjects (``storage.keys`` makes and checks them)."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from storage.keys import ApiKeyRecord, Role
from storage.metadata._db import ConstraintError, Database, MetadataConflictError, Step

_KEY_COLUMNS = "key_id, key_sha256, role, subject, name, created_ms, revoked_ms, coop"


class ApiKeyTable(Database):
    """API keys (only their SHA-256 is kept)."""

    schema = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT    PRIMARY KEY,
    key_sha256  BLOB    NOT NULL UNIQUE,
    role        TEXT    NOT NULL CHECK (role IN ('farmer', 'coop', 'operator')),
    subject     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
"""
    migrations: ClassVar[tuple[Step, ...]] = (
        Step(1, "create tables", schema),
        Step(
            2,
            "the cooperative of a farmer key",
            "ALTER TABLE api_keys ADD COLUMN coop TEXT NOT NULL DEFAULT ''",
        ),
    )

    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a new key's record (its hash, never the key)."""
        try:
            with self._write() as conn:
                conn.execute(
                    f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        record.key_id,
                        record.key_sha256,
                        record.role,
                        record.subject,
                        record.name,
                        record.created_ms,
                        record.revoked_ms,
                        record.coop,
                    ),
                )
        except ConstraintError as exc:
            raise MetadataConflictError(
                f"API key {record.key_id}: already stored ({exc}); generate a new key"
            ) from exc

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this id (revoked or not), or ``None``."""
        row = self._read(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?",  # noqa: S608
            (key_id,),
        )
        return _key_record(row[0]) if row else None

    def api_keys(
        self, *, include_revoked: bool = True, farmers_of: str | None = None
    ) -> list[ApiKeyRecord]:
        """Every key (or the farmer keys of cooperative ``farmers_of``), oldest first."""
        wheres, params = [], []
        if not include_revoked:
            wheres.append("revoked_ms IS NULL")
        if farmers_of is not None:
            wheres.append("role = 'farmer' AND coop = ?")
            params.append(farmers_of)
        where = f" WHERE {' AND '.join(wheres)}" if wheres else ""
        rows = self._read(
            f"SELECT {_KEY_COLUMNS} FROM api_keys{where} ORDER BY created_ms, key_id",  # noqa: S608
            tuple(params),
        )
        return [_key_record(r) for r in rows]

    def revoke_api_key(self, key_id: str, now_ms: int) -> ApiKeyRecord:
        """Revoke a key (idempotent: an already revoked key keeps its first revocation time).

        Raises ``MetadataConflictError`` when no key has this id.
        """
        with self._write() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_ms = ? WHERE key_id = ? AND revoked_ms IS NULL",
                (now_ms, key_id),
            )
            row = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?",  # noqa: S608
                (key_id,),
            ).fetchone()
        if row is None:
            raise MetadataConflictError(
                f"no API key with id {key_id!r} (see `agridrone keys list`)"
            )
        return _key_record(row)


def _key_record(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row[0],
        key_sha256=bytes(row[1]),
        role=cast(Role, row[2]),
        subject=row[3],
        name=row[4],
        created_ms=int(row[5]),
        revoked_ms=None if row[6] is None else int(row[6]),
        coop=str(row[7]),
    )
