"""A real Redis Sentinel setup on loopback: a primary, one replica and one sentinel, for the
tests of ``redis+sentinel://`` URLs. Never skips: a missing binary says how to install it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from tests.failover._redis_server import RedisServer, redis_binary, system_binary
from tests.harness.livekit_server import free_port

SERVICE = "vsmaster"
_DEADLINE_S = 20.0


def sentinel_binary() -> str:
    return system_binary("redis-sentinel", "the Sentinel tests need a real one")


@dataclass
class SentinelSetup:
    work: Path
    primary: RedisServer = field(init=False)
    replica_port: int = field(default_factory=free_port)
    sentinel_port: int = field(default_factory=free_port)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}"

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.primary = RedisServer(self.work / "primary")
        self.primary.start()
        replica = [redis_binary(), "--port", str(self.replica_port), "--bind", "127.0.0.1"]
        replica += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
        self._spawn(replica + ["--replicaof", "127.0.0.1", str(self.primary.port)], "replica")
        conf = self.work / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.work}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        self._spawn([sentinel_binary(), str(conf)], "sentinel")
        self._until(
            lambda: (
                self.replica_synced()
                and self.primary_port() == self.primary.port
                and self.sentinel_can_promote()
            )
        )

    def _spawn(self, args: list[str], name: str) -> None:
        with (self.work / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            self._procs.append(
                subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
            )

    def primary_port(self) -> int | None:
        try:
            with Redis(port=self.sentinel_port, socket_timeout=0.5) as sentinel:
                addr = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        except OSError:
            return None
        except Exception:  # not ready yet
            return None
        return int(addr[1]) if addr else None

    def replica_synced(self) -> bool:
        try:
            with Redis(port=self.replica_port, socket_timeout=0.5) as replica:
                info = replica.info("replication")
        except Exception:
            return False
        return bool(info.get("master_link_status") == "up")

    def sentinel_can_promote(self) -> bool:
        """Whether the sentinel knows the replica and holds it fit to promote.

        The sentinel learns of replicas from the primary's INFO, every 10 s: one that connected
        after the first INFO is unknown until the next, and ``SENTINEL FAILOVER`` then answers
        NOGOODSLAVE.
        """
        try:
            with Redis(port=self.sentinel_port, socket_timeout=0.5) as sentinel:
                replicas = sentinel.sentinel_slaves(SERVICE)
        except Exception:  # not ready yet
            return False
        return any(
            int(replica.get("port", 0)) == self.replica_port
            and not replica.get("is_sdown")
            and not replica.get("is_disconnected")
            and replica.get("master-link-status") == "ok"
            for replica in replicas
        )

    def failover(self) -> None:
        """Make the replica the primary (``SENTINEL FAILOVER``), as a lost primary would."""
        with Redis(port=self.sentinel_port, socket_timeout=2) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)

    def _until(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + _DEADLINE_S
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.05)  # other processes: nothing to wait on but time
        raise TimeoutError(f"the Sentinel setup was not ready within {_DEADLINE_S}s")

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.primary.stop()
