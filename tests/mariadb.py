"""A REAL MariaDB server for the tests: mariadb-install-db + mariadbd on a free loopback port.

Needs Debian's `mariadb-server-core` (server) and `mariadb-client-core` (the `mysql` client the
StatefulSet's probes are tried with); .ci/run installs both. Starting takes about 0.6 s, stopping
20 ms. Without them the `mariadb` fixture FAILS naming the package, unless KUSCIA_SKIP_MARIADB=1
says this machine cannot have it (never in CI).

The server has an administrator `ADMIN_USER`/`ADMIN_PASSWORD` with every right (as an external
MySQL's admin would), reachable over TCP at `host:port` like a real external server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-pw-for-tests"
KINE_DDL = """
CREATE TABLE IF NOT EXISTS `kine` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(630) CHARACTER SET ascii,
  `created` INT,
  `deleted` INT,
  `create_revision` INT,
  `prev_revision` INT,
  `lease` INT,
  `value` MEDIUMBLOB,
  `old_value` MEDIUMBLOB,
  PRIMARY KEY (`id`),
  UNIQUE KEY `kine_name_prev_revision_uindex` (`name`, `prev_revision`),
  KEY `kine_name_index` (`name`),
  KEY `kine_name_id_index` (`name`, `id`),
  KEY `kine_id_deleted_index` (`id`, `deleted`),
  KEY `kine_prev_revision_index` (`prev_revision`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""  # written from the column list in shared/kuscia/NOTES.md §5


@dataclass
class MariaDB:
    host: str
    port: int
    socket_path: str
    process: subprocess.Popen[bytes]
    started_in_seconds: float

    @property
    def admin_user(self) -> str:
        return ADMIN_USER

    @property
    def admin_password(self) -> str:
        return ADMIN_PASSWORD

    def admin_connection(self, database: str | None = None) -> pymysql.connections.Connection[Any]:
        """A TCP connection as the administrator (autocommit)."""
        return self.connect(database=database)

    def connect(
        self,
        user: str = ADMIN_USER,
        password: str = ADMIN_PASSWORD,
        database: str | None = None,
        **kwargs: Any,
    ) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password,
            database=database,
            connect_timeout=5,
            autocommit=True,
            **kwargs,
        )

    def execute(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mariadb(datadir: Path, extra_args: Sequence[str] = ()) -> MariaDB:
    server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    installer = shutil.which("mariadb-install-db")
    if not Path(server).exists() or installer is None:
        raise RuntimeError(
            "MariaDB is not installed (mariadbd, mariadb-install-db): apt-get install mariadb-server-core "
            "mariadb-client-core (.ci/run does), or set KUSCIA_SKIP_MARIADB=1 on a machine that cannot have it"
        )
    started = time.monotonic()
    subprocess.run(
        [
            installer,
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    sock = str(datadir / "mysqld.sock")
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={sock}",
            f"--pid-file={datadir / 'mysqld.pid'}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            f"--log-error={datadir / 'error.log'}",
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = pymysql.connect(unix_socket=sock, user="root", connect_timeout=2, autocommit=True)
            break
        except pymysql.err.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (
                    (datadir / "error.log").read_text(errors="replace")[-2000:]
                    if (datadir / "error.log").exists()
                    else ""
                )
                process.kill()
                raise RuntimeError(f"mariadbd did not start: {log}") from None
            time.sleep(0.05)
    with conn.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (ADMIN_USER, ADMIN_PASSWORD))
        cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO `{ADMIN_USER}`@'%' WITH GRANT OPTION")
    conn.close()
    return MariaDB("127.0.0.1", port, sock, process, time.monotonic() - started)


def stop_mariadb(server: MariaDB) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """One real MariaDB for the session. Fails (not skips) when MariaDB is missing, unless
    KUSCIA_SKIP_MARIADB=1 says this machine cannot have it."""
    if os.environ.get("KUSCIA_SKIP_MARIADB") == "1":
        pytest.skip("KUSCIA_SKIP_MARIADB=1: MariaDB tests skipped on this machine")
    with tempfile.TemporaryDirectory(prefix="kuscia-mariadb-") as tmp:
        try:
            server = start_mariadb(Path(tmp))
        except (RuntimeError, subprocess.CalledProcessError) as err:
            pytest.fail(f"cannot start a MariaDB server for the tests: {err}")
        try:
            yield server
        finally:
            stop_mariadb(server)
