"""bench/console.py's scratch store: N declarations' worth of rows shaped like the pipeline's
(tests/integration/test_answers.py's story of one CUSDEC, measured row by row), written by
PostgreSQL itself from generate_series, in two halves at once (two cores).

Per submission g (1..N; interchange, message and agency-state ids follow from g): one
interchange (10 days of traffic up to now, one every 0.864 s, 200 partners of very different
sizes), and unless it is a resend one message (CUSDEC 70 %, CUSCAR 15 %, IFTMIN 8 %, COARRI 5 %,
PAXLST 2 %; routed 94 %, rejected, unroutable, held); a routed one goes to customs and one
other agency, each with its outbox delivery, its answer, its state, and the CONTRL and answers
in the partner's mailbox: 5 outbox rows, 2 agency answers and about 11 events per declaration.
One in twenty still awaits its second agency.  Times come from a hash of g, so every table
agrees on them: an agency state's delivered_at is its delivery's dispatched_at, and a routed
message's aeo its deliveries' header (one in seven), as the relay and processor write them
(migration 0016).  signed_answers and as2 tables are left empty: no console query reads them.

The indexes and unique constraints are dropped while the rows go in and built again after (as
a restore would); the primary keys stay; foreign keys are not checked
(session_replication_role = replica, as pg_restore's --disable-triggers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg

SPACING_SECONDS = 0.864  # 100,000 submissions a day

#: Deterministic uniform numbers and the milestone times of submission g.
FUNCTIONS = f"""
CREATE FUNCTION u(g bigint, k int) RETURNS float8 IMMUTABLE LANGUAGE sql AS
  $$ SELECT (hashint8(g * 16 + k) & 2147483647)::float8 / 2147483648.0 $$;
CREATE FUNCTION t0(g bigint, n bigint) RETURNS timestamptz STABLE LANGUAGE sql AS
  $$ SELECT now() - (n - g) * interval '{SPACING_SECONDS * 1000:g} ms' $$;
CREATE FUNCTION acc(g bigint, n bigint) RETURNS timestamptz STABLE LANGUAGE sql AS
  $$ SELECT t0(g, n) + (20 + 200 * u(g, 1)) * interval '1 ms' $$;
CREATE FUNCTION dlv(g bigint, n bigint) RETURNS timestamptz STABLE LANGUAGE sql AS
  $$ SELECT acc(g, n) + (50 + 500 * u(g, 2)) * interval '1 ms' $$;
CREATE FUNCTION decided(g bigint, n bigint, a int) RETURNS timestamptz STABLE LANGUAGE sql AS
  $$ SELECT dlv(g, n) + CASE a WHEN 1 THEN 60 + 14400 * u(g, 3) ^ 2
                             ELSE 300 + 86400 * u(g, 4) ^ 2 END * interval '1 s' $$;
CREATE FUNCTION partner(g bigint) RETURNS text IMMUTABLE LANGUAGE sql AS
  $$ SELECT 'van-' || lpad(floor(200 * u(g, 5) ^ 3)::int::text, 3, '0') $$;
CREATE FUNCTION istatus(g bigint) RETURNS text IMMUTABLE LANGUAGE sql AS
  $$ SELECT CASE WHEN u(g, 6) < 0.93 THEN 'accepted' WHEN u(g, 6) < 0.98 THEN 'rejected'
                 WHEN u(g, 6) < 0.99 THEN 'duplicate' ELSE 'partially_accepted' END $$;
CREATE FUNCTION mtype(g bigint) RETURNS text IMMUTABLE LANGUAGE sql AS
  $$ SELECT CASE WHEN u(g, 7) < 0.70 THEN 'CUSDEC' WHEN u(g, 7) < 0.85 THEN 'CUSCAR'
                 WHEN u(g, 7) < 0.93 THEN 'IFTMIN' WHEN u(g, 7) < 0.98 THEN 'COARRI'
                 ELSE 'PAXLST' END $$;
CREATE FUNCTION mstatus(g bigint) RETURNS text IMMUTABLE LANGUAGE sql AS
  $$ SELECT CASE WHEN istatus(g) = 'rejected' THEN 'rejected'
                 WHEN u(g, 8) < 0.01 THEN 'unroutable' WHEN u(g, 8) < 0.02 THEN 'held'
                 ELSE 'routed' END $$;
CREATE FUNCTION other(g bigint) RETURNS text IMMUTABLE LANGUAGE sql AS
  $$ SELECT (ARRAY['quarantine', 'port', 'trade'])[1 + g % 3] $$;
CREATE FUNCTION answered(g bigint, a int) RETURNS boolean IMMUTABLE LANGUAGE sql AS
  $$ SELECT a = 1 OR g % 20 <> 0 $$;
"""

#: Each submission's values and milestone times, worked out once (the functions above, per
#: submission g); every table's rows are read from here.
BASE = ("CREATE UNLOGGED TABLE base AS SELECT g, partner(g) AS p, istatus(g) AS ist,"
        " mstatus(g) AS mst, mtype(g) AS mt, other(g) AS oth, answered(g, 2) AS ans,"
        " t0(g, $3) AS t0, acc(g, $3) AS acc, dlv(g, $3) AS dlv, decided(g, $3, 1) AS d1,"
        " decided(g, $3, 2) AS d2 FROM generate_series($1::bigint, $2::bigint) g")
BASE_MORE = BASE.replace("CREATE UNLOGGED TABLE base AS", "INSERT INTO base")

#: The rows of submissions $1..$2 (of $3), table by table, from their base rows.
_BASE = "FROM base b WHERE b.g BETWEEN $1 AND $2 AND $3 > 0"
_ROUTED = f"{_BASE} AND b.mst = 'routed' AND b.ist <> 'duplicate'"
FILL: tuple[tuple[str, str], ...] = (
    ("interchanges", f"""
INSERT INTO interchanges (id, partner_id, transport, file_name, raw, sha256, received_at,
  status, sender_id, recipient_id, control_ref, summary, duplicate_of, attempts,
  next_attempt_at, processed_at, reply_id, reply_qualifier, syntax_version)
SELECT g, p, CASE WHEN g % 10 = 0 THEN 'as2' ELSE 'sftp' END, 'decl-' || g || '.edi',
  convert_to('UNA:+.? ''UNB+UNOC:3+' || p || ':ZZZ+SWGATEWAY:ZZZ+261122:0930+CR'
    || lpad(g::text, 10, '0') || '''UNH+1+' || mt || ':D:96B:UN''BGM+929+DEC-'
    || lpad(g::text, 9, '0') || '+9''' || repeat('LIN+1++0303.55:HS''MOA+39:1200.50''', 4)
    || 'UNT+12+1''UNZ+1+CR' || lpad(g::text, 10, '0') || '''', 'UTF8'),
  sha256(int8send(g)), t0, ist, upper(p), 'SWGATEWAY', 'CR' || lpad(g::text, 10, '0'),
  ist || ': message 1 ' || mt, CASE WHEN ist = 'duplicate' AND g > 1000 THEN g - 1000 END,
  1, t0, acc, upper(p), 'ZZZ', '3'
{_BASE}"""),
    ("messages", f"""
INSERT INTO messages (id, interchange_id, position, message_ref, message_type, release, status,
  canonical, document_ref, agencies, rules, findings, routing_version, copies, clearance, aeo)
SELECT g, g, 1, CASE WHEN g % 10 = 0 THEN 'M' || g ELSE '1' END, mt, 'D96B', mst,
  jsonb_build_object('kind', 'CustomsDeclaration', 'document', 'DEC-' || lpad(g::text, 9, '0'),
    'declarant', upper(p), 'office', 'NOOSL', 'goods', jsonb_build_array(
      jsonb_build_object('commodity', '030355', 'origin', 'NO', 'value', 1200.5),
      jsonb_build_object('commodity', '843850', 'origin', 'DE', 'value', 310))),
  'DEC-' || lpad(g::text, 9, '0'),
  CASE WHEN mst = 'routed' THEN ARRAY['customs', oth] ELSE '{{}}' END,
  CASE WHEN mst = 'routed' THEN ARRAY['customs-receives-every-declaration',
    oth || '-by-commodity'] ELSE '{{}}' END,
  CASE WHEN mst = 'rejected' THEN '[{{"code": "12", "text": "bad value"}}]'::jsonb
    ELSE '[]'::jsonb END,
  1 + (g * 5) / ($3 + 1), '{{}}',
  CASE WHEN mst <> 'routed' THEN NULL WHEN ans THEN 'released' ELSE 'in_progress' END,
  CASE WHEN mst = 'routed' THEN g % 7 = 0 END
{_BASE} AND ist <> 'duplicate'"""),
    ("agency_states", f"""
INSERT INTO agency_states (message_id, agency, state, final, decided_at, delivered_at)
SELECT g, CASE a WHEN 1 THEN 'customs' ELSE oth END,
  CASE WHEN a = 1 OR ans THEN 'released' ELSE 'awaiting' END, a = 1 OR ans,
  CASE WHEN a = 1 THEN d1 WHEN ans THEN d2 END, dlv
{_ROUTED.replace('WHERE', 'CROSS JOIN generate_series(1, 2) a WHERE')}"""),
    ("agency_answers", f"""
INSERT INTO agency_answers (id, agency, answer_id, message_id, kind, decision, body,
  received_at)
SELECT 2 * g + a - 2, CASE a WHEN 1 THEN 'customs' ELSE oth END,
  'swg-' || g || '-1-' || CASE a WHEN 1 THEN 'customs' ELSE oth END || ':1', g,
  'CustomsResponse', 'released',
  jsonb_build_object('kind', 'CustomsResponse', 'decision', 'released',
    'agency_reference', 'REF-' || g || '-' || a, 'duties', '[]'::jsonb, 'reasons', '[]'::jsonb),
  CASE a WHEN 1 THEN d1 ELSE d2 END
{_ROUTED.replace('WHERE', 'CROSS JOIN generate_series(1, 2) a WHERE')} AND (a = 1 OR ans)"""),
    ("outbox", f"""
INSERT INTO outbox (id, interchange_id, message_id, channel, destination, dispatch_key, body,
  properties, created_at, next_attempt_at, dispatched_at)
SELECT 5 * g + k - 5, g, CASE WHEN k = 3 THEN NULL ELSE g END,
  CASE WHEN k <= 2 THEN 'amqp' ELSE 'mailbox' END,
  CASE k WHEN 1 THEN 'customs' WHEN 2 THEN oth ELSE p END,
  CASE k WHEN 1 THEN 'swg-' || g || '-1-customs' WHEN 2 THEN 'swg-' || g || '-1-' || oth
    WHEN 3 THEN 'ack-' || g ELSE 'answer-' || (5 * g + k - 5) END,
  convert_to(repeat('{{"schema_version":"1","document":"DEC-' || g || '"}}', CASE WHEN k <= 2
    THEN 8 ELSE 4 END), 'UTF8'),
  CASE WHEN k <= 2 THEN jsonb_build_object('type', 'CustomsDeclaration', 'headers',
    jsonb_build_object('aeo', g % 7 = 0, 'role', 'deliver', 'partner', p))
    ELSE jsonb_build_object('kind', CASE k WHEN 3 THEN 'CONTRL' ELSE 'CUSRES' END) END,
  CASE k WHEN 4 THEN d1 WHEN 5 THEN d2 ELSE acc END,
  CASE k WHEN 4 THEN d1 WHEN 5 THEN d2 ELSE acc END,
  CASE k WHEN 4 THEN d1 + interval '40 ms' WHEN 5 THEN d2 + interval '40 ms' ELSE dlv END
{_ROUTED.replace('WHERE', 'CROSS JOIN generate_series(1, 5) k WHERE')} AND (k <> 5 OR ans)"""),
    ("acknowledgements", f"""
INSERT INTO acknowledgements (interchange_id, kind, file_name, body, created_at)
SELECT g, 'CONTRL', 'decl-' || g || '.edi.' || g || '.contrl.edi',
  convert_to('UNA:+.? ''UNB+UNOC:3+SWGATEWAY+' || upper(p) || ':ZZZ+261204:1444+'
    || g || '''UNH+1+CONTRL:D:3:UN''UCI+CR' || g || '+7''UNT+3+1''UNZ+1+' || g || '''',
    'UTF8'), acc
{_BASE} AND ist <> 'duplicate'"""),
    ("events", """
INSERT INTO events (interchange_id, message_id, kind, detail, at)
SELECT g, e.message_id, e.kind, e.detail, e.at
FROM base b CROSS JOIN LATERAL (VALUES
  (1, NULL::bigint, 'received', jsonb_build_object('transport', 'sftp', 'bytes', 240,
    'file_name', 'decl-' || g || '.edi'), t0),
  (2, NULL, ist, jsonb_build_object('summary', ist || ': message 1'), acc),
  (3, g, 'message_routed', jsonb_build_object('rules', ARRAY['customs-receives-every-'
    || 'declaration'], 'agencies', ARRAY['customs', oth], 'message_ref', '1'),
    acc + interval '1 ms'),
  (4, g, 'delivered', jsonb_build_object('key', 'swg-' || g || '-1-customs', 'channel', 'amqp',
    'destination', 'customs'), dlv),
  (5, g, 'delivered', jsonb_build_object('key', 'swg-' || g || '-1-' || oth, 'channel',
    'amqp', 'destination', oth), dlv),
  (6, NULL, 'acknowledged', jsonb_build_object('key', 'ack-' || g, 'channel', 'mailbox',
    'file_name', 'decl-' || g || '.edi.contrl.edi', 'destination', p,
    'answer_sha256', md5(g::text), 'signature_sha256', md5((-g)::text)), dlv),
  (7, g, 'agency_decision', jsonb_build_object('agency', 'customs', 'answer', 'swg-' || g
    || '-1-customs:1', 'decision', 'released', 'reasons', '[]'::jsonb), d1),
  (8, g, 'clearance', jsonb_build_object('from', NULL, 'to', 'in_progress'), d1),
  (9, g, 'acknowledged', jsonb_build_object('key', 'answer-' || (5 * g - 1), 'channel',
    'mailbox', 'destination', p, 'answer_sha256', md5((g + 1)::text),
    'signature_sha256', md5((g + 2)::text)), d1 + interval '40 ms'),
  (10, g, 'agency_decision', jsonb_build_object('agency', oth, 'answer', 'swg-' || g
    || '-1-' || oth || ':1', 'decision', 'released', 'reasons', '[]'::jsonb), d2),
  (11, g, 'clearance', jsonb_build_object('from', 'in_progress', 'to', 'released'), d2),
  (12, g, 'acknowledged', jsonb_build_object('key', 'answer-' || 5 * g, 'channel', 'mailbox',
    'destination', p, 'answer_sha256', md5((g + 3)::text),
    'signature_sha256', md5((g + 4)::text)), d2 + interval '40 ms')
) AS e(step, message_id, kind, detail, at)
WHERE b.g BETWEEN $1 AND $2 AND $3 > 0 AND (e.step <= 2 OR (ist <> 'duplicate'
  AND mst = 'routed' AND (e.step <= 9 OR ans)))"""),
)

ROUTING_VERSIONS = ("INSERT INTO routing_versions (id, sha256, body, source, status, at)"
                    " SELECT v, md5(v::text), 'routes: []', 'routing.yaml (reload)', 'applied',"
                    " now() - (6 - v) * interval '2 days' FROM generate_series(1, 5) v")

#: The sequences to move past the ids written.
SEQUENCES = ("interchanges", "messages", "events", "outbox", "agency_answers",
             "routing_versions")

Say = Callable[[str], None]


async def secondary_indexes(connection: Any) -> list[tuple[str, str]]:
    """(DROP, CREATE) statements of every index but the primary keys: plain indexes, and
    unique constraints (no foreign key refers to any of them)."""
    rows = await connection.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS sql,"
        " k.conname, k.conrelid::regclass::text AS relation,"
        " pg_get_constraintdef(k.oid) AS definition"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid"
        " WHERE c.relnamespace = 'public'::regnamespace AND NOT i.indisprimary"
        " AND (k.oid IS NULL OR k.contype = 'u')")
    return [(f"DROP INDEX {r['name']}", r["sql"]) if r["conname"] is None else
            (f"ALTER TABLE {r['relation']} DROP CONSTRAINT {r['conname']}",
             f"ALTER TABLE {r['relation']} ADD CONSTRAINT {r['conname']} {r['definition']}")
            for r in rows]


async def fill(url: str, count: int, say: Say) -> None:
    """Write ``count`` declarations' worth of rows into the (migrated, empty) database."""
    first = await asyncpg.connect(url)
    second = await asyncpg.connect(url)
    try:
        for connection in (first, second):
            # replica: no foreign-key triggers (the rows are made consistent; two halves
            # written at once would otherwise wait on each other's references).
            await connection.execute("SET synchronous_commit = off; SET jit = off;"
                                     " SET maintenance_work_mem = '256MB';"
                                     " SET session_replication_role = replica")
        await first.execute(FUNCTIONS)
        await first.execute(ROUTING_VERSIONS)
        indexes = await secondary_indexes(first)
        await first.execute("; ".join(drop for drop, _ in indexes))
        half = count // 2
        started = time.perf_counter()
        await first.execute(BASE, 1, half, count)
        await first.execute(BASE_MORE, half + 1, count, count)
        say(f"  base             {time.perf_counter() - started:6.1f} s")
        for table, sql in FILL:
            started = time.perf_counter()
            await asyncio.gather(first.execute(sql, 1, half, count),
                                 second.execute(sql, half + 1, count, count))
            say(f"  {table:<17} {time.perf_counter() - started:6.1f} s")
        await first.execute("DROP TABLE base")
        started = time.perf_counter()
        await _build(first, second, [sql for _, sql in indexes])
        for name in SEQUENCES:
            await first.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                                f" (SELECT max(id) FROM {name}))")
        await first.execute("VACUUM ANALYZE")
        say(f"  indexes, vacuum  {time.perf_counter() - started:6.1f} s")
    finally:
        await first.close()
        await second.close()


async def _build(first: Any, second: Any, statements: list[str]) -> None:
    """The indexes again, two at a time."""
    queue = list(statements)

    async def worker(connection: Any) -> None:
        while queue:
            await connection.execute(queue.pop())

    await asyncio.gather(worker(first), worker(second))
