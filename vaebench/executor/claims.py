"""Claims: the database decides which invocation runs a grid point, so two at once never run one twice.

MLflow has no compare-and-set, so the referee is a small table every participant reaches through SQLAlchemy
(``--claims-db``, else ``$VAEBENCH_CLAIMS_DB``; by default the tracking store's own PostgreSQL database, or
a SQLite file ``vaebench-claims.db`` beside a SQLite store or in the working folder for a server):

    vaebench_claims(scope, point, owner, expires)   PRIMARY KEY (scope, point)

A point is claimed by an INSERT (the primary key lets exactly one of two racing invocations succeed). A
claim is taken over only by one conditional UPDATE naming the condition it replaces (``expires`` passed,
or the recorded owner, a process on this machine that is gone), so two invocations taking over the same
dead claim cannot both win either. The holder renews its claims every :data:`LEASE_SECONDS` / 3 from a
thread and deletes them when its points end; a holder killed on another machine loses them when the lease
expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vaebench.errors import VaebenchError
from vaebench.executor.owners import owner_alive
from vaebench.tracking.uris import redact

LEASE_SECONDS = 120.0
TABLE = "vaebench_claims"


def claims_url(claims_db: str | None, tracking_uri: str) -> str:
    """The database of the claims table: the one given, the tracking store's PostgreSQL, or a SQLite file."""
    import os

    if claims_db or os.environ.get("VAEBENCH_CLAIMS_DB"):
        return claims_db or os.environ["VAEBENCH_CLAIMS_DB"]
    if tracking_uri.startswith("postgresql"):
        return tracking_uri
    if tracking_uri.startswith("sqlite:///") and tracking_uri != "sqlite:///:memory:":
        store = Path(tracking_uri[len("sqlite:///") :])
        return f"sqlite:///{store.parent / 'vaebench-claims.db'}"
    return "sqlite:///vaebench-claims.db"


class Claims:
    """The claims table in the database at ``url``, held by ``owner`` (a ``host:pid:start`` string)."""

    def __init__(self, url: str, owner: str) -> None:
        import sqlalchemy as sa

        self.owner = owner
        connect_args = {"timeout": 60} if url.startswith("sqlite") else {}
        try:
            self.engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
            metadata = sa.MetaData()
            self.table = sa.Table(
                TABLE,
                metadata,
                sa.Column("scope", sa.String(256), primary_key=True),
                sa.Column("point", sa.String(64), primary_key=True),
                sa.Column("owner", sa.String(256), nullable=False),
                sa.Column("expires", sa.Float, nullable=False),
            )
            try:
                metadata.create_all(self.engine, checkfirst=True)
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                # Another invocation created the table at the same moment (PostgreSQL's CREATE TABLE is
                # not atomic against a concurrent one): it exists now.
                metadata.create_all(self.engine, checkfirst=True)
        except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unreachable server
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise VaebenchError(
                redact(f"The claims database {url!r} could not be opened ({first}).")
            ) from None
        self.held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def claim(self, scope: str, point: str) -> bool:
        """Take ``point`` of ``scope`` if nobody live holds it; True if this owner now holds it."""
        import sqlalchemy as sa

        now = time.time()
        row = {"scope": scope, "point": point, "owner": self.owner, "expires": now + LEASE_SECONDS}
        key = (self.table.c.scope == scope) & (self.table.c.point == point)
        try:
            with self.engine.begin() as connection:
                connection.execute(self.table.insert().values(**row))
        except sa.exc.IntegrityError:
            with self.engine.begin() as connection:
                current = connection.execute(sa.select(self.table.c.owner).where(key)).scalar()
                if current is None:
                    return self.claim(scope, point)  # released in between: try again
                stale = self.table.c.expires < now
                if current != self.owner and owner_alive(current) is False:
                    stale = stale | (self.table.c.owner == current)
                taken = connection.execute(
                    self.table.update().where(key & stale).values(owner=self.owner, expires=row["expires"])
                )
                if taken.rowcount != 1:
                    return False
        with self._lock:
            self.held.add((scope, point))
        return True

    def release(self, scope: str, point: str) -> None:
        with self._lock:
            self.held.discard((scope, point))
        with self.engine.begin() as connection:
            connection.execute(
                self.table.delete().where(
                    (self.table.c.scope == scope)
                    & (self.table.c.point == point)
                    & (self.table.c.owner == self.owner)
                )
            )

    def renew(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                self.table.update()
                .where(self.table.c.owner == self.owner)
                .values(expires=time.time() + LEASE_SECONDS)
            )

    def release_all(self) -> None:
        with self._lock:
            self.held.clear()
        with self.engine.begin() as connection:
            connection.execute(self.table.delete().where(self.table.c.owner == self.owner))

    @contextmanager
    def renewing(self) -> Iterator[Claims]:
        """Renew the held claims from a thread while the block runs; release them all at its end."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(LEASE_SECONDS / 3):
                try:
                    self.renew()
                except Exception:  # a database that is briefly away: the next beat tries again
                    continue

        thread = threading.Thread(target=beat, name="vaebench-claims", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            try:
                self.release_all()
            finally:
                self.engine.dispose()


def claim_points(claims: Claims, scope: str, points: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the points this owner now holds, those another live invocation holds)."""
    mine, theirs = [], []
    for point in points:
        (mine if claims.claim(scope, point) else theirs).append(point)
    return mine, theirs
