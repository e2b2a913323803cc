"""The metadata database's connection handling, shared by every table's module.

Two stores behind one interface: an embedded SQLite file (the zero-setup default: one
connection per thread, WAL, ``synchronous=FULL``) or PostgreSQL (``postgresql://`` URL: a
small psycopg connection pool). Each aggregate's module is a mixin on ``Database`` bringing
its ``schema`` (or numbered ``migrations``) and methods; ``MetadataDB`` combines them.

The modules write one portable SQL: ``?`` placeholders, ``INSERT ... ON CONFLICT``, SQLite
column types. ``Tx`` translates it for PostgreSQL (``?`` → ``%s``, ``INSERT OR IGNORE`` →
``ON CONFLICT DO NOTHING``; in DDL ``INTEGER`` → ``BIGINT``, ``INTEGER PRIMARY KEY`` → an
identity column, ``REAL`` → ``DOUBLE PRECISION``, ``BLOB`` → ``BYTEA``, ``TEXT`` → ``TEXT
COLLATE "C"`` so text sorts as in SQLite) and turns each library's errors into ours:
``ConstraintError`` for a refused constraint, ``StoreUnavailableError`` for a database that
does not answer (SQLite's errors, PostgreSQL's connection/operational ones) and
``MetadataQueryError`` for a statement PostgreSQL refuses (data or programming errors: a bug,
not an outage). A PostgreSQL password never reaches a message, ``where`` or a log line, in any
form the URL carries it (``user:password@``, ``?password=``, raw or percent-decoded).

A write transaction is exclusive on both stores: ``BEGIN IMMEDIATE`` on SQLite, a
transaction-level advisory lock on PostgreSQL, so the read-then-write logic of the modules
(a field's next version, a tariff history) behaves the same on both.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol

from storage.contract import StoreUnavailableError
from storage.secrets import HIDDEN, masker, redact_urls

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

Dialect = Literal["sqlite", "postgresql"]

#: The advisory lock every PostgreSQL write transaction (and migration) holds.
WRITE_LOCK: Final = 0x61677264  # "agrd"


class MetadataConflictError(ValueError):
    """The record already exists (or, for an update, does not); the message says which."""


class MetadataQueryError(RuntimeError):
    """A statement PostgreSQL refused for its data or its SQL (not a connection problem):
    a plain error (the API's generic 500), not "store unavailable"."""


class ConstraintError(MetadataConflictError):
    """The database refused a write for a constraint (unique key, check); either store."""


class Cursor(Protocol):
    """What a statement returns, on either store."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def metadata_target(url_or_path: Path | str, *, url_only: bool = False) -> tuple[Dialect, str]:
    """(store, where) of a metadata setting: ``postgresql://...``/``postgres://...`` (a
    PostgreSQL URL), ``sqlite:///path`` or a plain path (a SQLite file).

    ``url_only`` (the URL setting): a plain path is refused too, so a mistyped scheme
    (``postgres:/u:pw@h/db``) is an error rather than a SQLite file named after it; the
    message never shows the password."""
    text = str(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql", text
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise ValueError(
                f"metadata URL {_shown(text)!r}: write sqlite:///relative/path or"
                " sqlite:////abs/path"
            )
        return "sqlite", path[1:]
    if url_only:
        raise ValueError(
            f"metadata URL {_shown(text)!r} must start with postgresql://, postgres:// or"
            " sqlite:///; a SQLite file's plain path belongs in the metadata path setting"
        )
    if "://" in text:
        raise ValueError(
            f"metadata URL {_shown(text)!r}: use postgresql://..., sqlite:///path or a path"
        )
    return "sqlite", text


def _shown(text: str) -> str:
    """A refused setting, safe to show however mistyped: a password can only stand before
    an '@', so what lies between the scheme and the last '@' is hidden
    (``postgres:/u:pw@h/db`` -> ``postgres:/***@h/db``; ``redact_urls`` needs a well-formed
    ``scheme://user:password@`` to find the password)."""
    if "@" not in text:
        return text
    scheme = re.match(r"[^:@/]*:/*", text)  # "postgres:/" of "postgres:/u:pw@h/db"
    return f"{scheme.group() if scheme else ''}{HIDDEN}@{text.rpartition('@')[2]}"


# --- SQL translation for PostgreSQL ------------------------------------------------------

_QUOTED: Final = re.compile(r"('(?:[^']|'')*')")
_DDL_TYPES: Final = (
    (
        re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\b", re.I),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\bTEXT\b(?!\s+COLLATE)", re.I), 'TEXT COLLATE "C"'),
)


@functools.lru_cache(maxsize=1024)
def postgres_sql(sql: str) -> str:
    """A statement in the modules' portable SQL as PostgreSQL (psycopg) takes it."""
    # psycopg reads % everywhere (literals too) as its own; ? only outside literals is ours.
    parts = _QUOTED.split(sql.replace("%", "%%"))
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("?", "%s")
    out = "".join(parts)
    if re.match(r"\s*INSERT\s+OR\s+IGNORE\b", out, re.I):
        out = re.sub(r"^\s*INSERT\s+OR\s+IGNORE\b", "INSERT", out, flags=re.I)
        out = out.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    elif re.match(r"\s*INSERT\s+OR\s+REPLACE\b", out, re.I):
        raise ValueError(
            "INSERT OR REPLACE is SQLite's own: write INSERT ... ON CONFLICT (key) DO UPDATE"
        )
    return out


def postgres_ddl(ddl: str) -> str:
    """Table definitions in SQLite's column types as PostgreSQL's."""
    parts = _QUOTED.split(ddl)
    for i in range(0, len(parts), 2):
        for pattern, replacement in _DDL_TYPES:
            parts[i] = pattern.sub(replacement, parts[i])
    return "".join(parts)


def statements(script: str) -> list[str]:
    """A script's statements (our DDL has no ``;`` inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


class Tx:
    """One connection inside a transaction (or a read), speaking the portable SQL."""

    def __init__(
        self,
        conn: Any,
        dialect: Dialect,
        where: str,
        mask: Callable[[str], str] = redact_urls,
    ) -> None:
        self._conn = conn
        self.dialect: Dialect = dialect
        self._where = where
        self._mask = mask

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement; its cursor (``fetchone``, ``fetchall``, ``rowcount``)."""
        with self._errors():
            if self.dialect == "sqlite":
                cur: Cursor = self._conn.execute(sql, tuple(params))
                return cur
            return self._conn.execute(postgres_sql(sql), tuple(params))  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Cursor:
        """Run one statement for each row; ``rowcount`` is the total of rows changed."""
        with self._errors():
            if self.dialect == "sqlite":
                cur: Cursor = self._conn.executemany(sql, rows)
                return cur
            pg = self._conn.cursor()
            if rows:
                pg.executemany(postgres_sql(sql), rows)
            return pg  # type: ignore[no-any-return]

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows at once: ``executemany`` on SQLite, ``COPY FROM STDIN`` on
        PostgreSQL (one stream instead of one statement per row: a town's 100k fields)."""
        if not rows:
            return
        names = ", ".join(columns)  # the table and columns are the code's, never input
        with self._errors():
            if self.dialect == "sqlite":
                marks = ", ".join("?" * len(columns))
                sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
                self._conn.executemany(sql, rows)
                return
            with self._conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def script(self, ddl: str) -> None:
        """Run DDL statements in this transaction (translated for PostgreSQL)."""
        for statement in statements(postgres_ddl(ddl) if self.dialect == "postgresql" else ddl):
            with self._errors():
                self._conn.execute(statement)

    def has_table(self, table: str) -> bool:
        """Whether the table exists (in the current schema)."""
        if self.dialect == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = (
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name = ?"
            )
        return self.execute(sql, (table,)).fetchone() is not None

    def columns(self, table: str) -> set[str]:
        """The table's column names (empty when it does not exist)."""
        if self.dialect == "sqlite":
            return {r[1] for r in self.execute(f"PRAGMA table_info({table})").fetchall()}
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        ).fetchall()
        return {r[0] for r in rows}

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            mapped = _translated(exc, self._where, self._mask)
            if mapped is exc:
                raise
            raise mapped from exc


def _translated(exc: Exception, where: str, mask: Callable[[str], str] = redact_urls) -> Exception:
    """Our error for a library's: a refused constraint, an unavailable store, or (PostgreSQL)
    a refused statement; ``mask`` hides the password in the library's message."""
    if isinstance(exc, (ConstraintError, StoreUnavailableError, MetadataQueryError)):
        return exc
    if isinstance(exc, sqlite3.Error):
        kind = ConstraintError if isinstance(exc, sqlite3.IntegrityError) else StoreUnavailableError
        return kind(f"metadata database {where}: {exc}")
    psycopg_error = _psycopg_errors()
    if psycopg_error is None:
        return exc
    integrity, error, unavailable = psycopg_error
    message = f"metadata database {where}: {mask(str(exc))}"
    if isinstance(exc, integrity):
        return ConstraintError(message)
    if isinstance(exc, unavailable):
        return StoreUnavailableError(message)
    # data, programming, internal errors: PostgreSQL refused the statement (a bug)
    return MetadataQueryError(message) if isinstance(exc, error) else exc


def _psycopg_errors() -> (
    tuple[type[Exception], type[Exception], tuple[type[Exception], ...]] | None
):
    """(constraint refusal, any psycopg error, the connection/operational ones) or ``None``
    when psycopg was never imported. Pool timeouts/closed are operational errors too."""
    import sys

    if "psycopg" not in sys.modules:  # never imported: cannot be one of its errors
        return None
    import psycopg
    import psycopg_pool

    return (
        psycopg.IntegrityError,
        psycopg.Error,
        (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout),
    )


# --- migrations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One numbered schema change of an aggregate: portable DDL (``sql``, translated for
    PostgreSQL), PostgreSQL's own DDL where it must differ (``postgresql``), and/or a
    function for what DDL cannot say (e.g. moving data out of an old SQLite layout)."""

    version: int
    description: str
    sql: str = ""
    postgresql: str | None = None
    run: Callable[[Tx], None] | None = None

    def apply(self, tx: Tx) -> None:
        """Make the change inside the migration's transaction."""
        ddl = self.postgresql if tx.dialect == "postgresql" and self.postgresql else self.sql
        if ddl:
            tx.script(ddl)
        if self.run is not None:
            self.run(tx)


_MIGRATIONS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    aggregate   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    description TEXT    NOT NULL,
    applied_ms  INTEGER NOT NULL,
    PRIMARY KEY (aggregate, version)
)
"""


#: How long opening a SQLite file waits for another process switching it to WAL.
_WAL_WAIT_S: Final = 30.0


def _wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL. SQLite answers "database is locked" at once, without its busy
    timeout, while another process is doing the same (several workers and API processes
    starting together on a new file), so wait and retry."""
    deadline = time.monotonic() + _WAL_WAIT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return


class Database:
    """Connections to the metadata store; each subclass declares the tables it needs as a
    ``schema`` (its version 1) or as ``migrations`` (numbered steps, applied in order and
    recorded in ``schema_migrations``)."""

    schema: ClassVar[str] = ""
    migrations: ClassVar[tuple[Step, ...]] = ()
    #: Most pooled connections per process (PostgreSQL).
    pool_size: ClassVar[int] = 10

    def __init__(self, path: Path | str) -> None:
        self.dialect, target = metadata_target(path)
        self._local = threading.local()
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] | None = None
        self._mask: Callable[[str], str] = redact_urls
        if self.dialect == "sqlite":
            self.path = Path(target)
            self.where = str(self.path)
            if target != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self.path = Path()
            self._mask = masker(target)
            self.where = self._mask(target)
            self._pool = _open_pool(target, self.where, self.pool_size, self._mask)
        try:
            self.migrate()
        except BaseException:
            self.close()
            raise

    # --- migrations ----------------------------------------------------------------------

    def aggregate_steps(self) -> list[tuple[str, tuple[Step, ...]]]:
        """Each aggregate (mixin class) with its steps, in the combining class's order."""
        out = []
        for cls in reversed(type(self).__mro__):
            steps: tuple[Step, ...] = cls.__dict__.get("migrations", ())
            if not steps and cls.__dict__.get("schema"):
                steps = (Step(1, "create tables", str(cls.__dict__["schema"])),)
            if steps:
                out.append((cls.__name__, steps))
        return out

    def applied_migrations(self) -> set[tuple[str, int]]:
        """(aggregate, version) of every step recorded as applied."""
        with self._read_tx() as tx:
            if not tx.has_table("schema_migrations"):
                return set()
            rows = tx.execute("SELECT aggregate, version FROM schema_migrations").fetchall()
        return {(str(r[0]), int(r[1])) for r in rows}

    def migrate(self) -> list[tuple[str, int]]:
        """Apply the steps not yet applied, in one exclusive transaction (so two processes
        starting at once apply each step once); returns (aggregate, version) of those."""
        wanted = [(name, s) for name, steps in self.aggregate_steps() for s in steps]
        already = self.applied_migrations()
        if all((n, s.version) in already for n, s in wanted):
            return []
        done: list[tuple[str, int]] = []
        with self._write() as tx:
            tx.script(_MIGRATIONS_TABLE)
            applied = {
                (str(r[0]), int(r[1]))
                for r in tx.execute("SELECT aggregate, version FROM schema_migrations").fetchall()
            }
            for name, step in wanted:
                if (name, step.version) in applied:
                    continue
                step.apply(tx)
                tx.execute(
                    "INSERT INTO schema_migrations (aggregate, version, description, applied_ms)"
                    " VALUES (?, ?, ?, ?)",
                    (name, step.version, step.description, int(time.time() * 1000)),
                )
                done.append((name, step.version))
        return done

    # --- connections ---------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                _wal(conn)
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"metadata database {self.where}: {exc}") from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        """An exclusive write transaction: committed when the block ends, rolled back when
        it raises."""
        try:
            if self._pool is None:
                conn = self._conn()
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    yield Tx(conn, "sqlite", self.where, self._mask)
                return
            with self._pool.connection() as pg, pg.transaction():
                pg.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield Tx(pg, "postgresql", self.where, self._mask)
        except Exception as exc:
            self._lost_connection(exc)  # a write is never retried: the caller decides
            mapped = _translated(exc, self.where, self._mask)
            if mapped is exc:
                raise
            raise mapped from exc

    @contextmanager
    def _read_tx(self) -> Iterator[Tx]:
        """A connection for reads (autocommit: each statement sees the latest commits)."""
        try:
            if self._pool is None:
                yield Tx(self._conn(), "sqlite", self.where, self._mask)
                return
            with self._pool.connection() as pg:
                yield Tx(pg, "postgresql", self.where, self._mask)
        except Exception as exc:
            mapped = _translated(exc, self.where, self._mask)
            if mapped is exc:
                raise
            raise mapped from exc

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._read_tx() as tx:
                return tx.execute(sql, params).fetchall()
        except StoreUnavailableError as exc:
            if not self._lost_connection(exc):
                raise
        # PostgreSQL restarted or dropped us: read once more on a connection checked anew.
        with self._read_tx() as tx:
            return tx.execute(sql, params).fetchall()

    def _lost_connection(self, exc: BaseException) -> bool:
        """Whether ``exc`` was a lost PostgreSQL connection; if so every idle pooled
        connection is checked and the dead ones replaced, so the next call gets a live one."""
        errors = _psycopg_errors()
        if self._pool is None or errors is None:
            return False
        cause = exc if isinstance(exc, errors[1]) else exc.__cause__
        import psycopg

        if not isinstance(cause, psycopg.OperationalError):
            return False
        self._pool.check()
        return True

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the database answers."""
        self._read("SELECT 1", ())

    def close(self) -> None:
        """Close this thread's SQLite connection, or every pooled PostgreSQL connection."""
        if self._pool is not None:
            self._pool.close()
            return
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _open_pool(
    url: str, where: str, size: int, mask: Callable[[str], str]
) -> ConnectionPool[psycopg.Connection[tuple[Any, ...]]]:
    """A pool of autocommit connections, ready (one connection made) or an error (its
    message passed through ``mask``: libpq may quote the password it could not parse)."""
    try:
        import psycopg
        from psycopg_pool import ConnectionPool
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise StoreUnavailableError(
            f"metadata database {where}: psycopg is not installed ({exc})"
        ) from exc
    try:  # one plain connection first: its error says why (refused, auth, no database)
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        raise StoreUnavailableError(
            f"metadata database {where}: cannot connect ({mask(str(exc)).strip()})"
        ) from exc
    _POOL_LOG_MASK.add(url, mask)
    pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
        url,
        min_size=1,
        max_size=max(1, size),
        kwargs={"autocommit": True},
        timeout=10,
        open=False,
        name="agridrone-metadata",
    )
    try:
        pool.open(wait=True, timeout=10)
    except Exception as exc:
        pool.close()
        raise StoreUnavailableError(
            f"metadata database {where}: cannot connect ({mask(str(exc)).strip()})"
        ) from exc
    return pool


class _MaskedRecords(logging.Filter):
    """Passes psycopg_pool's own log lines (reconnect warnings quote libpq's errors, which
    may quote a password it could not parse) through the masker of every pool opened."""

    def __init__(self) -> None:
        super().__init__()
        self._masks: dict[str, Callable[[str], str]] = {}

    def add(self, url: str, mask: Callable[[str], str]) -> None:
        self._masks[url] = mask

    def filter(self, record: logging.LogRecord) -> bool:
        text = original = record.getMessage()
        for mask in list(self._masks.values()):
            text = mask(text)
        if text != original:
            record.msg, record.args = text, None
        return True


_POOL_LOG_MASK = _MaskedRecords()
logging.getLogger("psycopg.pool").addFilter(_POOL_LOG_MASK)
