"""Offer decisions across repeated Redis SIGKILLs and restarts (AOF ``everysec``).

``python -m bench.redis_restarts`` starts the whole platform as the chaos run does, sends
offer requests only (at ``--rate`` per second over ``--senders`` threads), SIGKILLs Redis
and starts it again on its files ``--kills`` times, ``--gap`` seconds apart, then (unless
``--no-wipe``) once without its files as the chaos run's next fault does, stops the load,
waits for the drain, and lists every answered decision that is not in Postgres: when it
was answered against the kills, its strategy, and whether the wiped stream held it. The
platform's logs stay under ``--keep`` when given.

    python -m bench.redis_restarts --kills 5 --gap 6 --keep /somewhere
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from redis import Redis
from sqlalchemy import text

from services.personalize.cache import DECISION_GROUP, DECISION_STREAM
from shared.db import create_db_engine
from shared.settings import PostgresSettings
from tests.support.chaos import REDIS_RESTART, REDIS_WIPE, running_platform
from tests.support.chaos_load import Client, Load, drained, open_shop, wait_for


class OfferLoad(Load):
    """Offer requests that also keep each answer's strategy."""

    strategies: dict[str, str]

    def offer(self, customer: str | None = None) -> str | None:
        path = f"/v1/offers/{customer or self._customer()}?placement=home"
        response = self.client.call("offers", "personalize", "GET", path)
        if response is None:
            return None
        answer = response.json()
        self.client.accept("offers", answer["decision_id"])
        with self.client.lock:
            self.strategies[answer["decision_id"]] = answer["strategy"]
        return str(answer["decision_id"])


def _stream_state(url: str) -> str:
    with Redis.from_url(url, socket_timeout=5) as redis:
        length = int(redis.xlen(DECISION_STREAM))
        try:
            pending = redis.xpending(DECISION_STREAM, DECISION_GROUP)["pending"]
        except Exception as exc:  # no group yet
            pending = type(exc).__name__
    return f"XLEN {length}, pending {pending}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--gap", type=float, default=6.0, help="seconds between kills")
    parser.add_argument("--rate", type=float, default=40.0, help="offer requests per second")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument(
        "--wipe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="end with a restart without its data, as the chaos run's next fault",
    )
    parser.add_argument("--keep", type=Path, help="keep the servers' data and logs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segmenta-restarts-") as temporary:
        data = Path(args.keep or temporary)
        with running_platform(data) as platform:
            engine = create_db_engine(PostgresSettings(database_url=platform.database_url))
            shop = open_shop(platform, engine)
            client = Client(platform, shop)
            load = OfferLoad(client, {"offers": args.rate})
            load.strategies = {}
            load.start(threads_per_kind=args.senders)
            kills: list[float] = []
            try:
                time.sleep(5)
                for _ in range(args.kills):
                    kills.append(time.time())
                    REDIS_RESTART.inject(platform)
                    time.sleep(args.gap / 2)
                    print(f"kill {len(kills)}: {_stream_state(platform.redis.url)}", flush=True)
                    time.sleep(args.gap / 2)
                if args.wipe:
                    kills.append(time.time())
                    REDIS_WIPE.inject(platform)
                    print(f"wiped: {len(platform.wiped_decisions)} decisions in the stream")
                    time.sleep(args.gap)
            finally:
                load.stop()
                client.close()
            drain_s = wait_for(lambda: drained(engine, platform.redis.url), 240, "the drain")
            answered = dict(client.seen["offers"].accepted)
            with engine.connect() as conn:
                found = {
                    r[0]
                    for r in conn.execute(
                        text("SELECT decision_id FROM decision WHERE decision_id = ANY(:ids)"),
                        {"ids": list(answered)},
                    )
                }
            lost = sorted(set(answered) - found, key=answered.__getitem__)
            seen = client.seen["offers"]
            strategies = dict(Counter(load.strategies.values()))
            print(
                f"answered {len(answered)}, lost {len(lost)}, drained in {drain_s:.1f} s, "
                f"non-2xx {dict(seen.statuses)}; strategies {strategies}"
            )
            for ident in lost:
                at = answered[ident]
                since = min((at - k for k in kills if k <= at), default=float("nan"))
                wiped = "in the wiped stream" if ident in platform.wiped_decisions else ""
                print(f"  lost {ident}: {since:+.3f} s after the last kill, "
                      f"strategy {load.strategies.get(ident)} {wiped}")  # fmt: skip
            engine.dispose()


if __name__ == "__main__":
    main()
