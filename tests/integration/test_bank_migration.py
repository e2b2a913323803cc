"""The bank-account step on a database made before it, on SQLite and PostgreSQL: the
cooperatives and their tariffs are kept, with no bank account until one is set."""

from __future__ import annotations

import pytest

from storage.metadata import BankAccount, MetadataDB

pytestmark = pytest.mark.integration

STEP = ("CoopTable", 3)


def test_a_database_from_before_bank_accounts_is_migrated_in_place(metadata_url: str) -> None:
    db = MetadataDB(metadata_url)
    try:
        db.set_coop("htx-a", name="HTX A", tariff_vnd_per_ha=250_000)
        with db._write() as tx:  # back to the layout of the release before invoices
            for column in ("bank_bin", "bank_account", "bank_account_name"):
                tx.execute(f"ALTER TABLE coops DROP COLUMN {column}")
            tx.execute("DELETE FROM schema_migrations WHERE aggregate = ? AND version = ?", STEP)
        assert STEP not in db.applied_migrations()
    finally:
        db.close()
    again = MetadataDB(metadata_url)
    try:
        assert STEP in again.applied_migrations()
        coop = again.coop("htx-a")
        assert coop is not None
        assert (coop.name, [t.vnd for t in coop.tariffs], coop.bank) == ("HTX A", [250_000], None)
        again.set_bank("htx-a", BankAccount("970405", "1234567890", "HTX A"))
        assert again.coops()[0].bank == BankAccount("970405", "1234567890", "HTX A")
        assert again.migrate() == []
    finally:
        again.close()
