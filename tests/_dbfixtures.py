"""Database fixtures shared by the storage / API / gRPC tests (imported by those modules).

``db_url`` is parametrised over SQLite (a file in a temp dir) and a real PostgreSQL 15
server started on loopback for the session (skipped with the reason when the Debian
binaries are absent).
"""

from __future__ import annotations

import pytest

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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server = request.getfixturevalue("pg_server")
    return server.create_database()
