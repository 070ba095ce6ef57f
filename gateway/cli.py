"""The ``gateway`` command: serve, validate, db, agency, agencies, routes, mappings, render, track,
n2n, release, replay, traders, schemas, demo."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from gateway import __version__
from gateway.errors import GatewayError

#: config.routing.ClearanceState, spelt out: the parser is built without loading the models.
CLEARANCE_STATES = ("released", "rejected", "cancelled", "awaiting_payment")

DEFAULT_CONFIG = "deploy/demo/gateway.yaml"
CONFIG_VARIABLE = "GATEWAY_CONFIG"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=(
        "Single Window Gateway: EDIFACT in over SFTP, canonical messages out to agency queues, "
        "CONTRL acknowledgements back."))
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    parser.add_argument("-c", "--config", type=Path,
                        default=Path(os.environ.get(CONFIG_VARIABLE, DEFAULT_CONFIG)),
                        help=f"gateway.yaml (default: ${CONFIG_VARIABLE} or {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the SFTP listener, processor and relays")
    serve.add_argument("--workers", type=_positive, default=1, metavar="N",
                       help="processes deciding and relaying, this one included (default 1): "
                       "N - 1 worker processes share the work through the database, to use "
                       "more than one core")
    serve.add_argument("--worker", type=_positive, help=argparse.SUPPRESS)  # one of those
    serve.set_defaults(command=_serve)

    validate = sub.add_parser("validate", help="check a file offline; print the verdict, "
                              "the canonical JSON and the CONTRL")
    validate.add_argument("file", type=Path)
    validate.add_argument("--partner", help="check as this partner (default: the partner "
                          "whose EDIFACT IDs include the UNB sender)")
    validate.set_defaults(command=_validate)

    db = sub.add_parser("db", help="database: create, upgrade")
    db_sub = db.add_subparsers(required=True, metavar="ACTION")
    db_sub.add_parser("create", help="create the database when missing").set_defaults(
        command=_db_create)
    db_sub.add_parser("upgrade", help="apply pending migrations").set_defaults(
        command=_db_upgrade)

    agency = sub.add_parser("agency", help="example agency adapters")
    agency_sub = agency.add_subparsers(required=True, metavar="ACTION")
    run = agency_sub.add_parser("run", help="answer an agency's queue as that agency: customs "
                                "and quarantine decide by their rules file, others print")
    run.add_argument("code")
    run.add_argument("--rules", type=Path, help="the rules file (default: "
                     "<folder of agencies.yaml>/<code>-rules.yaml)")
    run.add_argument("--journal", type=Path, help="what was decided, by delivery (default: "
                     "var/agency/<code>.journal.sqlite)")
    run.add_argument("--adapter", choices=("customs", "quarantine", "bank", "print"),
                     help="the adapter (default: the one named like the agency, else print)")
    run.set_defaults(command=_agency_run)
    _licence_parser(agency_sub)

    agencies = sub.add_parser("agencies", help="the agencies' broker users")
    agencies_sub = agencies.add_subparsers(required=True, metavar="ACTION")
    provision = agencies_sub.add_parser(
        "provision", help="create each agency's password file when missing, and its RabbitMQ "
        "user, allowed to read only its queue and answer only as itself")
    provision.add_argument("--management-url", help="the management HTTP API, used when "
                           "rabbitmqctl is missing or fails (default: http://<amqp host>:15672)")
    provision.add_argument("--node", help="the RabbitMQ node rabbitmqctl manages")
    provision.add_argument("--rabbitmqctl", default="rabbitmqctl", help="the rabbitmqctl "
                           "command (default: rabbitmqctl on the PATH)")
    provision.set_defaults(command=_agencies_provision)

    routes = sub.add_parser("routes", help="the routing table: check it, explain a route")
    routes_sub = routes.add_subparsers(required=True, metavar="ACTION")
    check = routes_sub.add_parser("check", help="load a routing table strictly (default: the "
                                  "configured one); exit 2 with file:line:column on an error")
    check.add_argument("file", type=Path, nargs="?")
    check.set_defaults(command=_routes_check)
    explain = routes_sub.add_parser("explain", help="for each message of FILE, every rule "
                                    "that matched or not and why, and where it goes")
    explain.add_argument("file", type=Path)
    explain.add_argument("--table", type=Path, help="a routing table other than the "
                         "configured one")
    explain.add_argument("--partner")
    explain.add_argument("--state", choices=CLEARANCE_STATES,
                         help="judge the rules on a declaration's state as when its "
                         "clearance becomes STATE (e.g. released)")
    explain.set_defaults(command=_routes_explain)
    diff = routes_sub.add_parser("diff", help="replay stored messages through two tables and "
                                 "print what would change, agency by agency")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    diff.add_argument("--days", type=float, default=7.0)
    diff.add_argument("--limit", type=int, default=100_000)
    diff.set_defaults(command=_routes_diff)

    release = sub.add_parser("release", help="send on the messages a routing rule held, named "
                             "by submission id, UNB reference or declaration number")
    release.add_argument("reference")
    release.set_defaults(command=_release)

    replay = sub.add_parser("replay", help="take up again what stopped on the way, at most "
                            "once each: parked submissions, unroutable messages (against the "
                            "routing table in force) and, with --dead AGENCY, dead letters")
    replay.add_argument("reference", nargs="?", help="a submission id, UNB reference or "
                        "declaration number (with --dead: a submission, message or "
                        "correlation id)")
    replay.add_argument("--all", action="store_true", help="every parked submission and "
                        "unroutable message (or, with --dead, every dead letter)")
    replay.add_argument("--dead", metavar="AGENCY", help="replay this agency's dead letters")
    replay.set_defaults(command=_replay)

    traders = sub.add_parser("traders", help="the trader registry (AEO status) routing reads")
    traders_sub = traders.add_subparsers(required=True, metavar="ACTION")
    load = traders_sub.add_parser("import", help="replace the registry with a CSV file of "
                                  "id,name,aeo,partners[,programme,tier,status,valid_from,"
                                  "valid_until,mutual_recognition] (docs/traders.md)")
    load.add_argument("file", type=Path)
    load.set_defaults(command=_traders_import)
    suspend = traders_sub.add_parser("suspend", help="suspend a trader's authorisation now "
                                     "(recorded: who, when, why); the next declaration is "
                                     "decided without the trusted-trader lane")
    suspend.add_argument("trader_id", metavar="ID")
    suspend.add_argument("--reason", required=True, help="why (recorded)")
    suspend.set_defaults(command=_traders_suspend)
    reinstate = traders_sub.add_parser("reinstate", help="lift a suspension made by "
                                       "`traders suspend`")
    reinstate.add_argument("trader_id", metavar="ID")
    reinstate.set_defaults(command=_traders_reinstate)

    track = sub.add_parser("track", help="tell the story of a submission (id), interchange "
                           "(UNB reference) or declaration (number): received, CONTRL sent, "
                           "delivered, each agency's decision, each signed answer, the state")
    track.add_argument("reference")
    track.add_argument("--json", action="store_true", help="the raw events, one JSON object "
                       "per line")
    track.set_defaults(command=_track)

    n2n = sub.add_parser("n2n", help="certificates of origin sent to foreign single windows "
                         "(docs/n2n.md)")
    n2n_sub = n2n.add_subparsers(required=True, metavar="ACTION")
    n2n_status = n2n_sub.add_parser("status", help="each certificate sent: its single window, "
                                    "status (pending, delivered, delivered_with_warnings, "
                                    "not_readable, failed), tries, last error or MDN")
    n2n_status.add_argument("certificate", metavar="CERT", nargs="?")
    n2n_status.set_defaults(command=_n2n_status)
    n2n_resend = n2n_sub.add_parser("resend", help="send a failed or not readable "
                                    "certificate again (to the single window partners.yaml "
                                    "names for its country now)")
    n2n_resend.add_argument("certificate", metavar="CERT")
    n2n_resend.set_defaults(command=_n2n_resend)

    schemas = sub.add_parser("schemas", help="EDIFACT schemas generated from the UN directories")
    schemas_sub = schemas.add_subparsers(required=True, metavar="ACTION")
    build = schemas_sub.add_parser("build", help="(re)generate schemas/edifact")
    build.add_argument("--directories", type=Path, default=Path("../shared/directories"))
    build.add_argument("--out", type=Path, default=Path("schemas/edifact"))
    build.add_argument("--release", action="append", dest="releases",
                       help="a directory release such as D96B (repeatable; default D96B, D01B)")
    build.add_argument("--message", action="append", dest="messages",
                       help="a message type such as CUSDEC (repeatable; default: the nine "
                       "customs and transport messages)")
    build.set_defaults(command=_schemas_build)
    canonical = schemas_sub.add_parser("canonical", help="(re)generate schemas/canonical: the "
                                       "JSON Schema of every canonical message")
    canonical.add_argument("--out", type=Path, default=Path("schemas/canonical"))
    canonical.set_defaults(command=_schemas_canonical)

    mappings = sub.add_parser("mappings", help="the mapping files (mappings/edifact, "
                              "mappings/xml)")
    mappings_sub = mappings.add_subparsers(required=True, metavar="ACTION")
    check_mappings = mappings_sub.add_parser(
        "check", help="compile every mapping file against the directory and the canonical "
        "model; print what each maps, or the first error with file and line")
    check_mappings.add_argument("folder", type=Path, nargs="?",
                                help="a mappings folder holding edifact/*.yaml (default: "
                                "the mappings shipped with the gateway)")
    check_mappings.add_argument("--xml-schemas", type=Path, metavar="FILE",
                                help="the XML schema registry xml/*.yaml compile against "
                                "(default: deploy/demo/xml-schemas.yaml when it exists)")
    check_mappings.set_defaults(command=_mappings_check)

    render = sub.add_parser("render", help="write a canonical answer (JSON: CustomsResponse, "
                            "ApplicationError) as EDIFACT, through its mapping")
    render.add_argument("file", type=Path)
    render.add_argument("--syntax-version", choices=("3", "4"), default="3")
    render.set_defaults(command=_render)

    verify = sub.add_parser("verify", help="verify an answer's detached CMS signature "
                            "(FILE.p7s by default) against the trusted CA certificates; "
                            "exit 1 when it does not verify")
    verify.add_argument("file", type=Path)
    verify.add_argument("signature", type=Path, nargs="?",
                        help="the detached signature (default: FILE.p7s)")
    verify.add_argument("--ca", type=Path, help="trusted CA certificates, PEM (default: the "
                        "configuration's signing.ca)")
    verify.set_defaults(command=_verify)

    console = sub.add_parser("console", help="the ops console's users (docs/console.md)")
    console_sub = console.add_subparsers(required=True, metavar="WHAT")
    user = console_sub.add_parser("user", help="the users file")
    user_sub = user.add_subparsers(required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="add a user, or set an existing one's role and "
                              "password anew (hashed at the configured cost); the password "
                              "is asked twice, or read from stdin's first line when it is "
                              "not a terminal, never taken from the command line")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
    add.add_argument("--users", type=Path, metavar="FILE", help="the users file (default: "
                     "the one gateway.yaml's console: users: names)")
    add.set_defaults(command=_console_user_add)

    demo = sub.add_parser("demo", help="demo set-up")
    demo_sub = demo.add_subparsers(required=True, metavar="ACTION")
    keys = demo_sub.add_parser("keys", help="create the demo partner's SSH key when missing")
    keys.add_argument("--key", type=Path, default=Path("var/demo/demo-van.key"))
    keys.set_defaults(command=_demo_keys)
    pki = demo_sub.add_parser("pki", help="create the demo CA and the gateway's signing "
                              "certificate and key when missing")
    pki.add_argument("--folder", type=Path, default=Path("var/demo"))
    pki.set_defaults(command=_demo_pki)
    admin = demo_sub.add_parser("console-admin", help="create the demo console's users file "
                                "with two admins when missing, printing their generated "
                                "passwords this once")
    admin.add_argument("--file", type=Path, default=Path("var/demo/console-users.yaml"))
    admin.set_defaults(command=_demo_console_admin)
    receiver = demo_sub.add_parser(
        "as2-receiver", help="a partner's AS2 server on this machine: takes what the gateway "
        "sends a partner by AS2, stores it, answers with a signed MDN")
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=9090)
    receiver.add_argument("--path", default="/as2")
    receiver.add_argument("--as2-id", default="DEMOVAN", help="the partner's AS2 name")
    receiver.add_argument("--key", type=Path, default=Path("var/demo/demo-van-as2.key"),
                          help="the partner's private key (PEM): decrypts, signs MDNs")
    receiver.add_argument("--certificate", type=Path,
                          default=Path("var/demo/demo-van-as2.crt"))
    receiver.add_argument("--gateway-certificate", type=Path,
                          default=Path("var/demo/gateway.crt"),
                          help="whose signatures are accepted (PEM)")
    receiver.add_argument("--folder", type=Path, default=Path("var/demo/as2-received"),
                          help="where what arrives is written")
    receiver.set_defaults(command=_demo_as2_receiver)
    return parser


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from gateway.config.load import load_config

    return load_config(args.config)


def _serve(args: argparse.Namespace) -> int:
    from gateway import logs
    from gateway.app.serve import serve
    from gateway.config.load import load_config

    # a worker follows the table the main process applied, not routing.yaml (load_config)
    config = load_config(args.config, with_routing=args.worker is None)
    logs.configure(config.settings.log_level,
                   process=None if args.worker is None else f"worker-{args.worker}")
    # uvloop (libuv, by asyncpg's authors): the same asyncio API with a loop whose own cost
    # per callback and per socket write is a fraction of the standard one's; the gateway
    # spends most of its loop's time on exactly those (bench/e2e.py).
    if args.worker is not None:
        from gateway.app.serve import serve_worker

        uvloop.run(serve_worker(config, args.worker))
    else:
        uvloop.run(serve(config, workers=args.workers))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _validate(args: argparse.Namespace) -> int:
    from gateway.app.validate import validate_file

    return validate_file(_config(args), args.file, args.partner, sys.stdout)


def _db_create(args: argparse.Namespace) -> int:
    from gateway.logs import redact
    from gateway.store.database import create_database

    config = _config(args)
    created = asyncio.run(create_database(config.database_url))
    print(f"database {'created' if created else 'exists'}: {redact(config.database_url)}")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from gateway.store.database import upgrade

    applied = asyncio.run(upgrade(_config(args).database_url))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _routes_check(args: argparse.Namespace) -> int:
    from gateway.app.routes import check_routes

    check_routes(_config(args), args.file, sys.stdout)
    return 0


def _routes_explain(args: argparse.Namespace) -> int:
    from gateway.app.routes import explain_routes

    return explain_routes(_config(args), args.file, args.table, args.partner, sys.stdout,
                          args.state)


def _routes_diff(args: argparse.Namespace) -> int:
    from gateway.app.routes import diff_routes

    return asyncio.run(diff_routes(_config(args), args.old, args.new, args.days, args.limit,
                                   sys.stdout))


def _agency_run(args: argparse.Namespace) -> int:
    from gateway import logs
    from gateway.app.agency import run_agency

    config = _config(args)
    logs.configure(config.settings.log_level)
    return asyncio.run(run_agency(config, args.code, adapter=args.adapter, rules=args.rules,
                                  journal=args.journal))


def _licence_parser(agency_sub: Any) -> None:
    licence = agency_sub.add_parser(
        "licence", help="publish a licence as a licensing agency (issue, amend with a higher "
        "--amendment, or revoke with --revoke): docs/licences.md")
    licence.add_argument("code", help="the issuing agency (its broker user publishes)")
    licence.add_argument("--number", required=True)
    licence.add_argument("--holder", required=True, help="the importer's or exporter's id")
    licence.add_argument("--kind", choices=("import", "export"), required=True)
    licence.add_argument("--commodity", action="append", required=True,
                         help="an HS code or prefix covered (again for more)")
    licence.add_argument("--quantity", required=True)
    licence.add_argument("--unit", required=True, help="UN/ECE Rec. 20, e.g. KGM")
    licence.add_argument("--valid-from", type=_date, required=True, help="YYYY-MM-DD")
    licence.add_argument("--valid-until", type=_date, required=True, help="YYYY-MM-DD")
    licence.add_argument("--amendment", type=int, default=0)
    licence.add_argument("--revoke", action="store_true",
                         help="publish it revoked (give a higher --amendment)")
    licence.set_defaults(command=_agency_licence)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _agency_licence(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from gateway.agency import endpoint_of, licences

    config = _config(args)
    endpoint = endpoint_of(config, args.code)
    try:
        issued = licences.licence(
            endpoint, number=args.number, holder=args.holder, kind=args.kind,
            commodity_codes=args.commodity, quantity=args.quantity, unit=args.unit,
            valid_from=args.valid_from, valid_until=args.valid_until, amendment=args.amendment)
    except (ValidationError, ArithmeticError) as exc:
        print(f"gateway: not a licence: {exc}", file=sys.stderr)
        return 2
    if args.revoke:
        issued = issued.model_copy(update={"status": "revoked"})
    asyncio.run(licences.publish(endpoint, issued))
    print(f"published licence {issued.number} amendment {issued.amendment} "
          f"({issued.status}) as {args.code}")
    return 0


def _agencies_provision(args: argparse.Namespace) -> int:
    from gateway.app.provision import provision

    return asyncio.run(provision(_config(args), sys.stdout, sys.stderr,
                                 management_url=args.management_url, node=args.node,
                                 rabbitmqctl=args.rabbitmqctl))


def _release(args: argparse.Namespace) -> int:
    from gateway.app.release import release

    return asyncio.run(release(_config(args), args.reference, sys.stdout))


def _replay(args: argparse.Namespace) -> int:
    from gateway.app.replay import replay, replay_dead

    if (args.reference is None) == (not args.all):
        print("gateway replay: name a REFERENCE or give --all", file=sys.stderr)
        return 2
    config = _config(args)
    if args.dead is not None:
        return asyncio.run(replay_dead(config, args.dead, args.reference, sys.stdout))
    return asyncio.run(replay(config, args.reference, sys.stdout))


def _traders_import(args: argparse.Namespace) -> int:
    from gateway.app.traders import import_traders

    return asyncio.run(import_traders(_config(args), args.file, sys.stdout))


def _traders_suspend(args: argparse.Namespace) -> int:
    from gateway.app.traders import suspend_trader

    return asyncio.run(suspend_trader(_config(args), args.trader_id, args.reason, sys.stdout))


def _traders_reinstate(args: argparse.Namespace) -> int:
    from gateway.app.traders import reinstate_trader

    return asyncio.run(reinstate_trader(_config(args), args.trader_id, sys.stdout))


def _track(args: argparse.Namespace) -> int:
    from gateway.app.track import print_story, story

    told = asyncio.run(story(_config(args), args.reference))
    if not told.interchanges:
        print(f"nothing known about {args.reference!r}", file=sys.stderr)
        return 1
    if args.json:
        for item in told.events:
            print(json.dumps(item, default=str, ensure_ascii=False))
    else:
        print_story(told, sys.stdout)
    return 0


def _n2n_status(args: argparse.Namespace) -> int:
    from gateway.app.n2n import show_status

    return asyncio.run(show_status(_config(args), args.certificate, sys.stdout))


def _n2n_resend(args: argparse.Namespace) -> int:
    from gateway.app.n2n import resend_certificate

    return asyncio.run(resend_certificate(_config(args), args.certificate, sys.stdout))


def _schemas_build(args: argparse.Namespace) -> int:
    from gateway.app import schemas

    written = schemas.build(args.directories, args.out,
                            tuple(args.releases or schemas.DEFAULT_RELEASES),
                            tuple(args.messages or schemas.DEFAULT_MESSAGES))
    print(f"wrote {len(written)} files under {args.out}")
    return 0


def _schemas_canonical(args: argparse.Namespace) -> int:
    from gateway.app.canonical_schemas import write_canonical_schemas

    written = write_canonical_schemas(args.out)
    print(f"wrote {len(written)} files under {args.out}")
    return 0


def _mappings_check(args: argparse.Namespace) -> int:
    from gateway.app.mappings import check_mappings

    return check_mappings(args.folder, sys.stdout, args.xml_schemas)


def _render(args: argparse.Namespace) -> int:
    from gateway.app.mappings import render_file

    return render_file(_config(args), args.file, args.syntax_version, sys.stdout)


def _verify(args: argparse.Namespace) -> int:
    from gateway.app.verify import verify_file

    ca = args.ca if args.ca is not None else _config(args).ca_path
    return verify_file(args.file, args.signature, ca, sys.stdout, sys.stderr)


def _demo_keys(args: argparse.Namespace) -> int:
    from gateway.app.demo import ensure_key

    created = ensure_key(args.key)
    print(f"{'created' if created else 'kept'} {args.key} and {args.key}.pub")
    return 0


def _demo_as2_receiver(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from cryptography import x509

    from gateway import logs
    from gateway.app.as2_receiver import LocalReceiver, run_receiver
    from gateway.errors import ConfigError
    from gateway.security.signing import signing_key

    try:
        key = signing_key(args.certificate.read_bytes(), args.key.read_bytes(),
                          name=str(args.key))
        peers = x509.load_pem_x509_certificates(args.gateway_certificate.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{exc.filename}: {exc.strerror} (`make run` makes the demo's "
                          "keys and certificates)") from exc
    except ValueError as exc:
        raise ConfigError(f"{args.gateway_certificate}: not PEM certificates: {exc}") from exc
    receiver = LocalReceiver(args.as2_id, key, peers, args.folder)
    logs.configure("INFO")  # each message taken or refused, one JSON line
    print(f"AS2 receiver {args.as2_id} at http://{args.host}:{args.port}{args.path}, "
          f"writing into {args.folder}; Ctrl-C stops it", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_receiver(receiver, args.host, args.port, args.path))
    return 0


def _demo_pki(args: argparse.Namespace) -> int:
    from gateway.app.demo import ensure_pki

    created = ensure_pki(args.folder)
    print(f"created {', '.join(map(str, created))}" if created
          else f"kept the demo CA and signing key in {args.folder}")
    return 0


def _console_user_add(args: argparse.Namespace) -> int:
    from gateway.app.console_users import add_user, read_password
    from gateway.config.console_users import Role
    from gateway.config.settings import ConsoleSettings
    from gateway.console.auth import cost_of

    path, settings = args.users, ConsoleSettings()
    if path is None:
        config = _config(args)
        path = config.console_users_path
        if path is None or config.settings.console is None:
            print(f"gateway: {config.source}: console: names no users file; give --users FILE",
                  file=sys.stderr)
            return 2
        settings = config.settings.console
    password = read_password(sys.stdin, sys.stdin.isatty())
    created = add_user(path, args.name, Role[args.role], password, cost_of(settings))
    print(f"{'added' if created else 'updated'} {args.role} {args.name} in {path} "
          "(a running console reads it at its next request)")
    return 0


def _demo_console_admin(args: argparse.Namespace) -> int:
    from gateway.app.console_users import ensure_demo_admins
    from gateway.config.settings import ConsoleSettings
    from gateway.console.auth import cost_of

    ensure_demo_admins(args.file, cost_of(ConsoleSettings()), sys.stdout)
    return 0
