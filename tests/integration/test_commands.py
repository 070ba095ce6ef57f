"""The commands a user runs: serve (and its SIGTERM drain), validate, track, agency run."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from gateway.agency import Answer, Delivery, Endpoint, consume
from gateway.bus.topology import topology_of
from gateway.cli import main
from tests.support.edifact import cusdec
from tests.support.harness import (
    DEMO_AGENCIES,
    Client,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    write_files,
)
from tests.support.xml import (
    DEMO_REGISTRY,
    SAMPLE_DECLARANT,
    SAMPLE_INVALID_DEC,
    SAMPLE_REFERENCE,
    SAMPLE_VALID_DEC,
    demo_xml_catalog,
)

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "samples"


async def test_serve_drains_on_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    database = await create_database()
    files = write_files(tmp_path, database, reload_seconds=600)  # only SIGHUP reloads
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(files.config_path), "serve",
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        client = Client(files, await _started_port(process))
        routing = tmp_path / "routing.yaml"
        routing.write_text(routing.read_text().replace('quarantine_hs_chapters: ["01-24"]',
                                                       'quarantine_hs_chapters: ["01-24", "84"]'))
        process.send_signal(signal.SIGHUP)
        for _ in range(100):
            applied = await client.fetch("SELECT source FROM routing_versions"
                                         " WHERE status = 'applied' ORDER BY id")
            if len(applied) == 2:
                break
            await asyncio.sleep(0.1)
        assert "SIGHUP" in applied[-1]["source"]
        await client.upload("van-a", "decl.edi", cusdec(("0303",), sender="VANA"))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        log = [json.loads(line) for line in (await process.stderr.read()).decode().splitlines()
               if line.startswith("{")]
        events = [e["event"] for e in log]
        assert "stopping" in events and events[-1] == "stopped"
        # drained: decided, answered and published before exiting
        assert (await client.answers("van-a", "decl.edi"))
        pending = await client.fetch("SELECT count(*) AS n FROM outbox WHERE dispatched_at"
                                     " IS NULL")
        assert pending[0]["n"] == 0
        assert len(await client.queue("customs", expect=1)) == 1
        decided = next(e for e in log if e["event"] == "decided")
        assert decided["partner"] == "van-a" and decided["interchange"] == "ICR0001"
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def _started_port(process: asyncio.subprocess.Process) -> int:
    assert process.stderr is not None
    lines = []
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        if not line:
            raise AssertionError("gateway serve exited:\n" + "".join(lines))
        lines.append(line.decode())
        if line.startswith(b"{") and json.loads(line)["event"] == "started":
            return int(json.loads(line)["sftp"].rsplit(":", 1)[1])


def test_serve_refuses_a_broken_routing_table(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    files = write_files(tmp_path, "unused")
    routing = tmp_path / "routing.yaml"
    routing.write_text(routing.read_text().replace("deliver: [customs]", "deliver: [custom]"))
    assert main(["--config", str(files.config_path), "serve"]) == 2
    error = capsys.readouterr().err
    assert "routing.yaml:" in error and "unknown agency 'custom'" in error


def test_serve_refuses_a_broken_mapping_file_before_it_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.app.mapping_files import DEFAULT_MAPPINGS

    files = write_files(tmp_path, "unused")  # no database: the check comes first
    shutil.copytree(DEFAULT_MAPPINGS, tmp_path / "mappings")
    broken = tmp_path / "mappings" / "edifact" / "cusdec-d96b.yaml"
    broken.write_text(broken.read_text().replace("each: SG30", "each: SG31"))
    with files.config_path.open("a") as config:
        config.write("mappings: mappings\n")
    assert main(["--config", str(files.config_path), "serve"]) == 2
    error = capsys.readouterr().err
    assert "cusdec-d96b.yaml:" in error
    assert "SG31 is not a segment group of the message level" in error
    sample = tmp_path / "decl.edi"
    sample.write_bytes(cusdec(sender="VANA"))
    assert main(["--config", str(files.config_path), "validate", str(sample)]) == 2


def test_validate_prints_verdict_route_and_contrl(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    files = write_files(tmp_path, "unused")
    sample = tmp_path / "decl.edi"
    sample.write_bytes(cusdec(("0303.55",), sender="VANA"))
    assert main(["--config", str(files.config_path), "validate", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "verdict: accepted (as partner van-a)" in out
    assert "route to customs, quarantine" in out and '"declaration_number": "DEC-1"' in out
    assert "UCI+ICR0001+VANA:ZZZ+SWGATEWAY:ZZZ+7'" in out
    sample.write_bytes(cusdec(sender="VANA", unz_reference="BAD"))
    assert main(["--config", str(files.config_path), "validate", str(sample)]) == 1
    assert "[0085=28]" in capsys.readouterr().out


def test_validate_an_xml_declaration_prints_verdict_canonical_and_res_dms(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo_xml_catalog()  # skips without ../shared
    files = write_files(tmp_path, "unused",
                        settings={"xml": json.dumps({"schemas": str(DEMO_REGISTRY)})},
                        xml_ids={"van-a": (SAMPLE_DECLARANT,)})
    config = ["--config", str(files.config_path)]
    assert main([*config, "validate", str(SAMPLE_VALID_DEC)]) == 0
    out = capsys.readouterr().out
    assert "verdict: accepted (as partner van-a)" in out
    assert f"ref {SAMPLE_REFERENCE} DEC-DMS 2: accepted; route to customs" in out
    assert '"kind": "CustomsDeclaration"' in out and '"syntax": "XML"' in out
    assert "--- answer (RES-DMS) ---" in out and "urn:wco:datamodel:WCO:RES-DMS:2" in out
    assert main([*config, "validate", str(SAMPLE_INVALID_DEC)]) == 1
    out = capsys.readouterr().out
    assert "verdict: rejected" in out and "line 33" in out and "--- answer (RES-DMS) ---" in out


async def test_track_prints_the_history(gateway: Gateway) -> None:
    data = cusdec(sender="VANA", control_reference="TRK1")
    await gateway.upload("van-a", "decl.edi", data)
    await gateway.answers("van-a", "decl.edi")
    await gateway.queue("customs", expect=1)
    await gateway.upload("van-a", "resend.edi", data)
    await gateway.answers("van-a", "resend.edi")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = await asyncio.to_thread(
            main, ["--config", str(gateway.files.config_path), "track", "--json", "DEC-1"])
    assert code == 0
    kinds = [json.loads(line)["kind"] for line in out.getvalue().splitlines()]
    assert kinds[:3] == ["received", "accepted", "message_routed"]
    assert "delivered" in kinds and "acknowledged" in kinds
    assert "duplicate" in kinds  # the resend shows in the declaration's history


async def test_the_agency_adapter_receives_its_own_queue(gateway: Gateway,
                                                        tmp_path: Path) -> None:
    received: list[Delivery] = []
    stop = asyncio.Event()

    async def handler(delivery: Delivery) -> list[Answer]:
        received.append(delivery)
        stop.set()
        return []

    topology = topology_of(gateway.config)
    endpoint = Endpoint(gateway.config.amqp_url, "quarantine", "guest",
                        topology.queue_name("quarantine"), topology.responses_exchange)
    consumer = asyncio.create_task(consume(endpoint, handler, stop,
                                           journal=tmp_path / "journal.sqlite"))
    await gateway.upload("van-a", "decl.edi", cusdec(("0303",), sender="VANA"))
    await asyncio.wait_for(consumer, 20)
    (delivery,) = received
    assert delivery.headers["agency"] == "quarantine"
    assert delivery.message.commodity_codes == ("0303",)
    assert delivery.message_id.endswith("-quarantine")


def test_the_demo_samples_pass_the_demo_configuration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the README's "try it" uploads is accepted by what `make run` starts."""
    demo = Path(__file__).resolve().parents[2] / "deploy" / "demo"
    config = tmp_path / "demo" / "gateway.yaml"
    config.parent.mkdir()
    for name in ("gateway.yaml", "partners.yaml", "agencies.yaml", "xml-schemas.yaml"):
        (config.parent / name).write_text((demo / name).read_text())
    (tmp_path / "routing.yaml").write_text((demo.parent.parent / "routing.yaml").read_text())
    (tmp_path / "var" / "demo").mkdir(parents=True)
    assert main(["demo", "keys", "--key", str(tmp_path / "var" / "demo" / "demo-van.key")]) == 0
    text = config.read_text().replace("../../routing.yaml", "../routing.yaml")
    config.write_text(text)
    partners = config.parent / "partners.yaml"
    partners.write_text(partners.read_text().replace("../../var/", "../var/"))
    for sample in sorted(SAMPLES.glob("*.edi")):
        assert main(["--config", str(config), "validate", str(sample)]) == 0, sample.name
    assert "route to customs, quarantine" in capsys.readouterr().out


def test_routes_check_and_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_files(tmp_path, "unused")
    config = ["--config", str(files.config_path)]
    assert main([*config, "routes", "check"]) == 0
    assert "8 rules, delivering to customs, port, quarantine, tax, trade: ok" in \
        capsys.readouterr().out
    fish, lathe = tmp_path / "fish.edi", tmp_path / "lathe.edi"
    fish.write_bytes(cusdec(("0303.55", "8471"), sender="VANA"))
    lathe.write_bytes(cusdec(("8458.11",), sender="VANA"))
    assert main([*config, "routes", "explain", str(fish)]) == 0
    out = capsys.readouterr().out
    assert "MATCH    quarantine-inspects-food-and-agriculture -> quarantine" in out
    assert "yes an HS chapter in 01-24 (message: 03, 84; matching 03)" in out
    assert "=> customs, quarantine" in out
    assert main([*config, "routes", "explain", str(lathe)]) == 0
    out = capsys.readouterr().out
    assert "no match quarantine-inspects-food-and-agriculture" in out
    assert "no  an HS chapter in 01-24 (message: 84)" in out and "=> customs\n" in out
    only_food = tmp_path / "food-only.yaml"
    only_food.write_text("rules:\n  - name: food\n    match: {hs_chapters: ['01-24']}\n"
                         "    deliver: [quarantine]\n")
    assert main([*config, "routes", "explain", str(lathe), "--table", str(only_food)]) == 1
    assert "nobody: it would be parked as unroutable" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - name: x\n    deliver: [pest-control]\n")
    assert main([*config, "routes", "check", str(broken)]) == 2
    assert "broken.yaml:3:" in capsys.readouterr().err
