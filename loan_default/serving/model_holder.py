"""The champion the server scores with, and its hot swap when the registry promotes another.

The server never keeps a warehouse connection: a registry check opens the warehouse read-only
for one query. On the embedded DuckDB file it does so only when the file or its write-ahead log
changed since the last good check (opening the file takes the serving CPU far longer than a
stat does); while a pipeline run holds the file's write lock that open fails, and the server
logs a warning and keeps scoring with the model it has. On DuckLake every check reads the
catalog, and the artifact comes from object storage. A new champion's artifact is loaded and
its sha256 verified before one reference assignment swaps it in, so a request either uses the
old model or the new one, never half of each, and none fails at the switch.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from loan_default.lib.models import reason_codes, registry
from loan_default.lib.models.families import FAMILIES
from loan_default.lib.models.training import TrainedModel
from loan_default.lib.storage.embedded_tables import EmbeddedTables
from loan_default.lib.storage.object_storage import S3Endpoint
from loan_default.lib.storage.table_store import TableStore

log = logging.getLogger("loan_default.serving")


@dataclass(frozen=True)
class LoadedModel:
    """A verified champion artifact with the registry row it was loaded from."""

    record: registry.RegistryRecord
    model: TrainedModel
    loaded_at: datetime
    promotion: dict | None


def _now() -> datetime:
    return datetime.now(UTC)


FileStamp = tuple[int, int, int] | None


def warehouse_stamp(warehouse: Path) -> tuple[FileStamp, FileStamp]:
    """Changes whenever DuckDB commits to `warehouse`: a commit appends to the write-ahead log,
    a checkpoint rewrites the file, and a rebuild replaces it (a new inode)."""

    def stamp(path: Path) -> FileStamp:
        try:
            status = path.stat()
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    return stamp(warehouse), stamp(warehouse.with_name(warehouse.name + ".wal"))


class ChampionHolder:
    """Holds the current champion; `refresh()` swaps in a newly promoted one."""

    def __init__(self, warehouse: TableStore | Path, s3: S3Endpoint | None = None):
        self.warehouse = (
            warehouse if isinstance(warehouse, TableStore) else EmbeddedTables(warehouse)
        )
        self.s3 = s3
        self._current: LoadedModel | None = None
        self._refreshing = threading.Lock()
        self.last_check: datetime | None = None
        self.last_error: str | None = None
        # The warehouse's stamp at the last check that read the registry without a problem.
        self._checked_stamp: tuple[FileStamp, FileStamp] | None = None
        self.registry_reads = 0  # times the file was opened: what the stamp saves, observable

    @property
    def current(self) -> LoadedModel | None:
        """The model to score with; read once per request so a batch uses one version."""
        return self._current

    def _problem(self, message: str, level: int = logging.WARNING) -> None:
        if message != self.last_error:  # once per distinct problem, not every interval
            log.log(level, message)
        self.last_error = message

    def _stamp(self) -> tuple[FileStamp, FileStamp] | None:
        """The embedded file's change stamp; None (always read) for a catalog."""
        if isinstance(self.warehouse, EmbeddedTables):
            return warehouse_stamp(self.warehouse.database)
        return None

    def _read_champion(self) -> tuple[registry.RegistryRecord | None, dict | None]:
        if isinstance(self.warehouse, EmbeddedTables) and not self.warehouse.database.exists():
            raise FileNotFoundError(f"no warehouse at {self.warehouse.database}")
        self.registry_reads += 1
        with self.warehouse.connect(read_only=True) as connection:
            record = registry.champion_read_only(connection)
            promotion = registry.promotion_of(connection, record.version_id) if record else None
        return record, promotion

    def refresh(self) -> bool:
        """Check the registry once; True when a new champion was swapped in."""
        with self._refreshing:
            serving = self._current.record.version_id if self._current else "nothing"
            self.last_check = _now()
            # Taken before the read: a commit during it shows as a change at the next check.
            stamp = self._stamp()
            if stamp is not None and self.last_error is None and stamp == self._checked_stamp:
                return False  # nothing committed since a good check: the champion is the same
            try:
                record, promotion = self._read_champion()
            except (duckdb.Error, OSError) as error:
                self._problem(
                    f"registry unreadable (a pipeline run may hold the lock), "
                    f"still serving {serving}: {error}"
                )
                return False
            if record is None:
                self._problem(f"the registry has no champion, still serving {serving}")
                return False
            if record.family not in FAMILIES:
                self._problem(
                    f"champion {record.version_id} is of family {record.family!r}, which this "
                    f"code does not declare ({', '.join(FAMILIES)}): still serving {serving}"
                )
                return False
            if self._current and record.version_id == self._current.record.version_id:
                if record != self._current.record:  # its row changed, e.g. a new document link
                    self._current = replace(self._current, record=record, promotion=promotion)
                self.last_error, self._checked_stamp = None, stamp
                return False
            try:
                model = registry.load_artifact(record, self.s3)
            except Exception as error:  # integrity, missing file or unpicklable: keep serving
                self._problem(
                    f"champion {record.version_id} not loaded, still serving {serving}: {error}",
                    logging.ERROR,
                )
                return False
            if not isinstance(model, TrainedModel):
                self._problem(f"artifact of {record.version_id} is not a TrainedModel")
                return False
            try:
                reason_codes.prepare(model)
            except ValueError as error:
                self._problem(
                    f"champion {record.version_id} not loaded, still serving {serving}: {error}"
                )
                return False
            self._current = LoadedModel(record, model, _now(), promotion)
            self.last_error, self._checked_stamp = None, stamp
            log.info(f"champion {record.version_id} ({record.family}) loaded, was {serving}")
            return True


class RefreshLoop:
    """A daemon thread calling `holder.refresh()` every `seconds` until stopped."""

    def __init__(self, holder: ChampionHolder, seconds: float):
        self.holder, self.seconds = holder, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-refresh", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.holder.refresh()
            except Exception:  # never let one bad check end hot swapping
                log.exception("champion refresh failed; will retry")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
