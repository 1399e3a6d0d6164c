"""Wait until Kafka answers an admin call and MongoDB/FerretDB answers `ping`.

A TCP connect is not enough: Kafka accepts connections before its metadata is ready.
"""

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient


async def kafka_ready(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


async def mongo_ready(url: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=2000
    )
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait(name: str, check: object, target: str, pid: int | None, deadline: float) -> None:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            raise TimeoutError(f"{name} (pid {pid}) exited before it was ready")
        try:
            await check(target)  # type: ignore[operator]
            print(f"[infra] {name} ready at {target}", file=sys.stderr)
            return
        except Exception as error:  # any failure means "not yet"
            last_error = error
            await asyncio.sleep(0.5)
    raise TimeoutError(f"{name} at {target} not ready: {last_error!r}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--mongo", required=True)
    parser.add_argument("--kafka-pid", type=int)
    parser.add_argument("--mongo-pid", type=int)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connects are expected
    deadline = time.monotonic() + args.timeout
    await asyncio.gather(
        wait("Kafka", kafka_ready, args.kafka, args.kafka_pid, deadline),
        wait("FerretDB", mongo_ready, args.mongo, args.mongo_pid, deadline),
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except TimeoutError as error:
        print(f"[infra] {error}", file=sys.stderr)
        sys.exit(1)
