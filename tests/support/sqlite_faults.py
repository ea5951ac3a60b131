"""Real SQLite faults for store tests: triggers, added through a second connection, that fail
every sample insert of one node.

    fail_samples_of(path, "n-bad", rollback=False)  # the statement fails (SQLITE_CONSTRAINT)
    fail_samples_of(path, "n-bad", rollback=True)   # SQLite also undoes the whole transaction,
                                                    # as it may after SQLITE_FULL or SQLITE_IOERR
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

FAULT = "simulated storage fault"


def fail_samples_of(database: Path, node: str, *, rollback: bool) -> None:
    action = "ROLLBACK" if rollback else "ABORT"
    with sqlite3.connect(database) as db:
        db.execute(
            f"CREATE TRIGGER fail_{action.lower()} BEFORE INSERT ON samples "
            f"WHEN NEW.node = '{node}' BEGIN SELECT RAISE({action}, '{FAULT}'); END"
        )
    db.close()
