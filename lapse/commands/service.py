"""The long-running commands: ``lapse broker``, ``detector``, ``ingest``, ``api``, ``demo`` and
``mqtt-bridge``. Each runs until SIGINT or SIGTERM, which stop it cleanly."""

from __future__ import annotations

import argparse
import asyncio
import signal

from lapse.commands.arguments import not_negative, positive
from plumbing.settings import Settings


def add_broker(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    brk = sub.add_parser("broker", help="run the embedded local broker (memory only)")
    brk.set_defaults(run=run_broker)
    brk.add_argument("--port", type=int, help="loopback port (default: a free one)")


def add_detector(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("detector", help="run a detector instance").set_defaults(run=run_detector)


def add_ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("ingest", help="run the ingest HTTP service").set_defaults(run=run_ingest)


def add_api(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("api", help="run the api (alerts, webhooks, delivery)").set_defaults(run=run_api)


def add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="everything in one process on a simulated club")
    demo.set_defaults(run=run_demo)
    demo.add_argument("--days", type=int, default=120, help="simulated days to stream")
    demo.add_argument("--day-seconds", type=positive, default=0.35, help="real seconds per day")
    demo.add_argument(
        "--linger",
        type=not_negative,
        default=None,
        help="seconds to keep serving after the stream (default: until Ctrl-C)",
    )


def add_mqtt_bridge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser(
        "mqtt-bridge", help="bridge MQTT (LAPSE_MQTT_*) to the events topic"
    ).set_defaults(run=run_mqtt_bridge)


def until_signalled() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so services stop cleanly and checkpoint."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_broker(_settings: Settings, args: argparse.Namespace) -> None:
    """The embedded broker in the foreground, until SIGINT or SIGTERM (which stop it too)."""
    from plumbing.broker import LocalBroker

    stop = until_signalled()
    with LocalBroker(args.port) as broker:
        print(
            f"local broker (memory only) on {broker.bootstrap}; Ctrl-C stops it\n"
            f"  export LAPSE_KAFKA_BOOTSTRAP={broker.bootstrap}",
            flush=True,
        )
        await stop.wait()


async def run_detector(settings: Settings, _args: argparse.Namespace) -> None:
    from detector.service import serve
    from plumbing.runtime import kafka_ready

    async with kafka_ready(settings) as ready:
        await serve(ready, until_signalled())


async def _serve_app(settings: Settings, which: str) -> None:
    from plumbing.runtime import http_server, kafka_ready

    async with kafka_ready(settings) as ready:
        if which == "ingest":
            from ingest.app import create_app as ingest_app

            server = http_server(ingest_app(ready), ready.host, ready.ingest_port)
        else:
            from api.app import create_app as api_app

            server = http_server(api_app(ready), ready.host, ready.api_port)
        task = asyncio.create_task(server.serve())
        await until_signalled().wait()
        server.should_exit = True
        await task


async def run_ingest(settings: Settings, _args: argparse.Namespace) -> None:
    await _serve_app(settings, "ingest")


async def run_api(settings: Settings, _args: argparse.Namespace) -> None:
    await _serve_app(settings, "api")


async def run_demo(settings: Settings, args: argparse.Namespace) -> None:
    from lapse.demo import run_demo as demo

    await demo(settings, days=args.days, day_seconds=args.day_seconds, linger=args.linger)


async def run_mqtt_bridge(settings: Settings, _args: argparse.Namespace) -> None:
    from ingest.mqtt import run_bridge

    await run_bridge(settings, until_signalled())
