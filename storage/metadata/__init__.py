"""The metadata database: rejected-message log, API keys, the drone registry, fields,
cooperatives (names, tariffs, members), flight summaries, late-data ranges, products,
spray jobs, the spray diary, imported flight logs, login links and browser sessions.

One module per aggregate, each a mixin on ``Database`` with its own schema and numbered
migrations; ``MetadataDB`` is all of them over one SQLite file (the default) or one
PostgreSQL database (``postgresql://`` URL).
"""

from __future__ import annotations

from storage.metadata._db import (
    ConstraintError,
    Database,
    MetadataConflictError,
    MetadataQueryError,
    Step,
    metadata_target,
)
from storage.metadata.api_keys import ApiKeyTable
from storage.metadata.coops import BankAccount, CoopRecord, CoopTable, TariffRecord
from storage.metadata.diary import DiaryRow, DiaryTable, WantedEntry
from storage.metadata.dirty import LateRange, LateRangeLog
from storage.metadata.drones import DroneTable
from storage.metadata.fields import (
    FieldOwnership,
    FieldOwnershipError,
    FieldsChangedError,
    FieldTable,
    FieldVersion,
    FieldVersionError,
    StoredField,
    UnknownFieldError,
)
from storage.metadata.flights import (
    FieldFlight,
    FlightAudience,
    FlightFieldState,
    FlightTable,
    StoredFlight,
    pack_state,
    unpack_state,
)
from storage.metadata.jobs import JobRecord, JobTable, job_key
from storage.metadata.leases import Lease, LeaseTable
from storage.metadata.log_imports import LogImportRecord, LogImportTable
from storage.metadata.products import ProductRecord, ProductTable
from storage.metadata.rejected import RejectedLog, RejectedMessage
from storage.metadata.sessions import SessionTable


class MetadataDB(
    RejectedLog,
    ApiKeyTable,
    DroneTable,
    FieldTable,
    CoopTable,
    FlightTable,
    LateRangeLog,
    LeaseTable,
    ProductTable,
    JobTable,
    DiaryTable,
    LogImportTable,
    SessionTable,
):
    """The metadata database: a SQLite file (one connection per thread, WAL,
    synchronous=FULL) or PostgreSQL (a ``postgresql://`` URL; a small connection pool)."""


__all__ = [
    "BankAccount",
    "ConstraintError",
    "CoopRecord",
    "Database",
    "DiaryRow",
    "FieldFlight",
    "FieldOwnership",
    "FieldOwnershipError",
    "FieldVersion",
    "FieldVersionError",
    "FieldsChangedError",
    "FlightAudience",
    "FlightFieldState",
    "JobRecord",
    "LateRange",
    "Lease",
    "LogImportRecord",
    "MetadataConflictError",
    "MetadataDB",
    "MetadataQueryError",
    "ProductRecord",
    "RejectedMessage",
    "Step",
    "StoredField",
    "StoredFlight",
    "TariffRecord",
    "UnknownFieldError",
    "WantedEntry",
    "job_key",
    "metadata_target",
    "pack_state",
    "unpack_state",
]
