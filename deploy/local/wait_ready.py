"""Wait until Kafka answers an admin call and MongoDB/FerretDB answers `ping` (either or
both, as given); with --mongo-write also a write.

A TCP connect is not enough: Kafka accepts connections before its metadata is ready.
FerretDB answers `ping`, and reads of what it has not seen, without its backend: after a
crash of PostgreSQL only a write (an upsert in `rcm_infra.ready`) shows it is back.
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


async def mongo_ready(url: str, write: bool = False) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=2000
    )
    try:
        await client.admin.command("ping")
        if write:
            await client.rcm_infra.ready.update_one(
                {"_id": "probe"}, {"$set": {"at": time.time()}}, upsert=True
            )
    finally:
        await client.close()


async def mongo_written(url: str) -> None:
    await mongo_ready(url, write=True)


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
    parser.add_argument("--kafka")
    parser.add_argument("--mongo")
    parser.add_argument("--mongo-write", action="store_true", help="also wait for a write")
    parser.add_argument("--kafka-pid", type=int)
    parser.add_argument("--mongo-pid", type=int)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    if not (args.kafka or args.mongo):
        parser.error("nothing to wait for: give --kafka, --mongo or both")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connects are expected
    deadline = time.monotonic() + args.timeout
    waits = []
    if args.kafka:
        waits.append(wait("Kafka", kafka_ready, args.kafka, args.kafka_pid, deadline))
    if args.mongo:
        check = mongo_written if args.mongo_write else mongo_ready
        waits.append(wait("FerretDB", check, args.mongo, args.mongo_pid, deadline))
    await asyncio.gather(*waits)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except TimeoutError as error:
        print(f"[infra] {error}", file=sys.stderr)
        sys.exit(1)
