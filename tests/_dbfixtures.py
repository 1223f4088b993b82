"""Database fixtures shared by the storage / API / gRPC tests (imported by those modules).

``db_url`` is parametrised over SQLite (a file in a temp dir) and a real PostgreSQL 15
server started on loopback for the session (skipped with the reason when the Debian
binaries are absent). Each test gets a fresh database cloned from a template that was
migrated once per session (a file copy for SQLite, ``CREATE DATABASE … TEMPLATE`` for
PostgreSQL); the store still runs its migration check on open, which finds it at head.
"""

from __future__ import annotations

import shutil
import uuid

import pytest

from mevblade.control.storage import Store
from mevblade.control.storage.pgserver import PostgresServer, PostgresUnavailable, find_pg_bin


@pytest.fixture(scope="session")
def pg_server():
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin/initdb)")
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "template.db"
    Store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server):
    url = pg_server.create_database("mevblade_template")
    Store(url).close()
    return "mevblade_template"


def fresh_pg_database(server: PostgresServer, template: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user={server.user} dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"postgresql://{server.user}@127.0.0.1:{server.port}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        target = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    server = request.getfixturevalue("pg_server")
    return fresh_pg_database(server, request.getfixturevalue("pg_template"))
