"""`consulta-server`: run the server and administer it.

    consulta-server [serve]        migrate, then serve the API and booking page
                                   [--workers N: N server processes; CONSULTA_WORKERS]
    consulta-server migrate        apply database migrations and exit
    consulta-server create-clinic  --slug --name --timezone [--country] [--locale]
    consulta-server create-user    --clinic --email --name --role (password from stdin/prompt)
    consulta-server enrol-device   --clinic --name [--computers N]: a one-time code for a new
                                   computer, or one code for N computers (a rollout)
    consulta-server dispatch       send due reminders (a worker with no HTTP; --until-idle)
    consulta-server demo           seed the demo clinic, print its sign-ins, then serve
"""

from __future__ import annotations

import argparse
import copy
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from shared_models.enums import Role
from sync_server.core.config import Settings, get_settings
from sync_server.core.errors import ConsultaError
from sync_server.db.migrate import upgrade
from sync_server.db.provision import DatabaseUrls, provision

log = logging.getLogger("consulta.server")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# pgserver is chatty; httpx logs each provider request's URL (with the account id) at INFO.
QUIET_LOGGERS = ("pgserver", "httpx")
# What each of several server processes runs (`sync_server.main.create_worker_app`).
WORKER_APP = "sync_server.main:create_worker_app"


def _owner_transaction(url: URL):  # type: ignore[no-untyped-def]
    return create_engine(url).begin()


def _log_config() -> dict[str, Any]:
    """uvicorn's logging plus ours (the root logger, in LOG_FORMAT). uvicorn applies it in
    every worker process, and a worker starts as a fresh interpreter with nothing set up:
    without it the access log and the reminder dispatcher's lines would be lost there."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["consulta"] = {"format": LOG_FORMAT}
    config["handlers"]["consulta"] = {"class": "logging.StreamHandler", "formatter": "consulta",
                                      "stream": "ext://sys.stderr"}
    config["root"] = {"handlers": ["consulta"], "level": "INFO"}
    config["loggers"].update({name: {"level": "WARNING"} for name in QUIET_LOGGERS})
    return config


def _worker_environment(settings: Settings, urls: DatabaseUrls) -> dict[str, str]:
    """What a worker process needs beyond the configuration it reads itself: the app role's
    URL the parent worked out (on the embedded server, its socket; the parent owns that
    server and keeps it running while the workers live) and the demo's outbox."""
    env = {"CONSULTA_APP_DATABASE_URL": urls.app.render_as_string(hide_password=False)}
    if settings.outbox_dir is not None:
        env["CONSULTA_OUTBOX_DIR"] = str(settings.outbox_dir)
    return env


def _serve(settings: Settings, urls: DatabaseUrls) -> None:
    import uvicorn

    from sync_server.main import create_app

    target: Any
    if settings.workers == 1:
        target = create_app(settings, urls.app)
    else:
        # Each worker builds its app from the environment (uvicorn needs an import string
        # for that). In development the signing key is a file made on first use: make it
        # now, so the workers read one key instead of racing to create several.
        settings.signing_key()
        os.environ.update(_worker_environment(settings, urls))
        target = WORKER_APP
    print(f"Consulta server on http://{settings.host}:{settings.port}  (API docs: /docs; "
          f"{settings.workers} server process{'es' if settings.workers > 1 else ''})")
    # uvicorn's own access log prints query strings (search terms); ours does not.
    uvicorn.run(target, factory=settings.workers > 1, workers=settings.workers,
                host=settings.host, port=settings.port, proxy_headers=True,
                forwarded_allow_ips=settings.forwarded_allow_ips, log_level="info",
                log_config=_log_config(), access_log=False)


def _configuration_errors(exc: ValidationError) -> str:
    """One line per wrong setting, named as it is set (CONSULTA_WORKERS, not `workers`)."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = str(error["loc"][0]) if error["loc"] else ""
        name = "DATABASE_URL" if field.upper() == "DATABASE_URL" else f"CONSULTA_{field.upper()}"
        lines.append(f"  {name}: {message}" if field else f"  {message}")
    return "\n".join(lines)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Repeat it: ") != first:
            raise ConsultaError("The two passwords differ.")
        return first
    return sys.stdin.readline().rstrip("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consulta-server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="migrate, then serve (the default)")
    serve.add_argument("--workers", type=_positive, default=None, metavar="N",
                       help="server processes (default: CONSULTA_WORKERS, else 1); the "
                            "database is migrated once, before they start")
    sub.add_parser("migrate", help="apply database migrations and exit")
    clinic = sub.add_parser("create-clinic", help="add a clinic")
    clinic.add_argument("--slug", required=True, help="short name used in URLs")
    clinic.add_argument("--name", required=True)
    clinic.add_argument("--timezone", required=True, help="IANA zone, e.g. America/Santiago")
    clinic.add_argument("--country", default="MX", help="ISO country for phone numbers")
    clinic.add_argument("--locale", default="es", choices=["es", "en"])
    user = sub.add_parser("create-user", help="add a staff account (password read from stdin)")
    user.add_argument("--clinic", required=True, help="the clinic's short name")
    user.add_argument("--email", required=True)
    user.add_argument("--name", required=True)
    user.add_argument("--role", required=True, choices=[r.value for r in Role])
    enrol = sub.add_parser("enrol-device", help="issue a one-time enrolment code")
    enrol.add_argument("--clinic", required=True, help="the clinic's short name")
    enrol.add_argument("--name", required=True, help="what to call the computer")
    enrol.add_argument("--computers", type=int, default=1,
                       help="one code for this many computers, e.g. the installer's "
                            "ENROLMENT_CODE for every front-desk PC (default 1: one-time)")
    enrol.add_argument("--valid-hours", type=int, default=72,
                       help="how long a code for several computers works (default 72)")
    dispatch = sub.add_parser("dispatch", help="run the reminder dispatcher without HTTP")
    dispatch.add_argument("--until-idle", action="store_true",
                          help="send what is due now, then exit")
    demo = sub.add_parser("demo", help="seed the demo clinic and serve")
    demo.add_argument("--no-serve", action="store_true", help="seed and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"error: the configuration is not valid:\n{_configuration_errors(exc)}",
              file=sys.stderr)
        return 2
    try:
        if getattr(args, "workers", None) is not None:
            settings = settings.model_copy(update={"workers": args.workers})
        urls = provision(settings)
        upgrade(urls.owner)
        if command == "migrate":
            print("Database is up to date.")
        elif command == "create-clinic":
            from sync_server.actions.clinics import do_create_clinic

            with _owner_transaction(urls.owner) as conn:
                clinic_id = do_create_clinic(conn, slug=args.slug, name=args.name,
                                             timezone=args.timezone, country=args.country,
                                             locale=args.locale)
            print(f"Created clinic {args.slug} ({clinic_id}).")
        elif command == "create-user":
            from sync_server.actions.clinics import do_create_user, find_clinic

            password = _read_password("Password for the new account: ")
            with _owner_transaction(urls.owner) as conn:
                found = find_clinic(conn, args.clinic)
                if found is None:
                    raise ConsultaError(f"No clinic named '{args.clinic}'.")
                user_id = do_create_user(conn, clinic_id=found, email=args.email,
                                         full_name=args.name, role=Role(args.role),
                                         password=password)
            print(f"Created {args.role} account {args.email.lower()} ({user_id}).")
        elif command == "enrol-device":
            from sync_server.actions.clinics import (
                find_clinic,
                issue_device_code,
                issue_rollout_code,
            )

            with _owner_transaction(urls.owner) as conn:
                found = find_clinic(conn, args.clinic)
                if found is None:
                    raise ConsultaError(f"No clinic named '{args.clinic}'.")
                if args.computers == 1:
                    code, expires = issue_device_code(conn, clinic_id=found, name=args.name)
                else:
                    code, expires = issue_rollout_code(
                        conn, clinic_id=found, name=args.name, computers=args.computers,
                        valid_hours=args.valid_hours)
            if args.computers == 1:
                print(f"Enrolment code for {args.name}: {code}  (valid until "
                      f"{expires:%Y-%m-%d %H:%M} UTC; it works once)")
            else:
                print(f"Enrolment code for up to {args.computers} computers "
                      f"({args.name} 1..{args.computers}): {code}  (valid until "
                      f"{expires:%Y-%m-%d %H:%M} UTC; the installer's ENROLMENT_CODE)")
        elif command == "dispatch":
            from sync_server.reminders.runner import ReminderRunner, build_dispatcher

            if args.until_idle:
                dispatcher = build_dispatcher(urls.app, settings)
                try:
                    result = dispatcher.drain()
                finally:
                    dispatcher.close()
                    dispatcher.engine.dispose()
                print(f"Claimed {result.claimed} reminders: {result.outcomes}")
            else:
                ReminderRunner(urls.app, settings).run_forever()
        elif command == "demo":
            if settings.env == "production":
                raise ConsultaError("The demo clinic is not available in production.")
            from sync_server.actions.demo import DEMO_PASSWORD, seed_demo

            with _owner_transaction(urls.owner) as conn:
                accounts = seed_demo(conn)
            print("\nDemo clinic 'demo' is ready. Sign in with any of these (password "
                  f"'{DEMO_PASSWORD}'):")
            for account in accounts:
                print(f"  {account.role.value:<13} {account.email}")
            if not args.no_serve:
                if not (settings.outbox_dir or settings.smtp_host or settings.sms_base_url
                        or settings.whatsapp_base_url):
                    settings = settings.model_copy(
                        update={"outbox_dir": settings.data_dir / "outbox"})
                    print(f"Reminders are written to {settings.outbox_dir} instead of sent.")
                _serve(settings, urls)
        else:
            _serve(settings, urls)
    except ConsultaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
