"""``gateway track REF``: one declaration's whole story, with times: received, CONTRL sent,
delivered to each agency, each decision, each answer sent with its signature's digest, and
where each agency and the declaration stand.  REF is a submission id, a UNB control reference
or a declaration number; ``--json`` prints the raw events, one JSON object per line."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from gateway.config.load import GatewayConfig
from gateway.store.database import create_pool
from gateway.store.interchanges import clearances, history, related_interchanges


@dataclass(frozen=True, slots=True)
class Story:
    interchanges: list[dict[str, Any]]
    events: list[dict[str, Any]]
    clearances: list[dict[str, Any]]


async def story(config: GatewayConfig, reference: str) -> Story:
    pool = await create_pool(config.database_url, size=1)
    try:
        async with pool.acquire() as connection:
            return Story(await related_interchanges(connection, reference),
                         await history(connection, reference),
                         await clearances(connection, reference))
    finally:
        await pool.close()


def print_story(told: Story, out: TextIO) -> None:
    for interchange in told.interchanges:
        out.write(f"submission {interchange['id']} from {interchange['partner_id']}: "
                  f"{interchange['file_name']} ({interchange['status']})\n"
                  f"  interchange sha256 {interchange['sha256']}\n")
        for item in told.events:
            if item["interchange_id"] == interchange["id"]:
                label, text = describe(item["kind"], item["detail"])
                out.write(f"  {_time(item['at'])}  {label:<18} {text}\n")
    _print_states(told.clearances, out)


def _print_states(rows: list[dict[str, Any]], out: TextIO) -> None:
    by_message: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_message.setdefault(row["message_id"], []).append(row)
    for message_id, states in by_message.items():
        agencies = ", ".join(
            f"{s['agency']} {s['state']}" + (" (overdue)" if s["overdue_at"] else "")
            for s in states)
        first = states[0]
        out.write(f"declaration {first['document_ref']} (message {message_id}): {agencies}"
                  f" -> {first['clearance'] or 'awaiting'}\n")


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _sent(detail: dict[str, Any]) -> tuple[str, str]:
    name = detail.get("file_name", detail.get("key", ""))
    label = "CONTRL sent" if name.endswith(".contrl.edi") else "answer sent"
    if "signature_sha256" not in detail:  # written before answers were signed
        return label, f"{name} to {detail.get('destination')}"
    return label, (f"{name} to {detail.get('destination')}; answer sha256 "
                   f"{detail['answer_sha256']}, signature sha256 {detail['signature_sha256']}")


def _decision(detail: dict[str, Any]) -> tuple[str, str]:
    text = f"{detail.get('agency')}: {detail.get('decision')}"
    if detail.get("agency_reference"):
        text += f" ({detail['agency_reference']})"
    reasons = detail.get("reasons") or detail.get("errors") or []
    return "decision", text + "".join(f"; {r}" for r in reasons)


def _routed(detail: dict[str, Any]) -> tuple[str, str]:
    text = f"message {detail.get('message_ref')} to {', '.join(detail.get('agencies', []))}"
    if detail.get("copies"):
        text += f"; copies to {', '.join(detail['copies'])}"
    return "routed", text


def _as2_received(detail: dict[str, Any]) -> tuple[str, str]:
    layers = [name for name in ("signed", "encrypted", "compressed") if detail.get(name)]
    text = (f"AS2 {detail.get('message_id')} from {detail.get('as2_from')}: "
            f"{', '.join(layers) or 'neither signed nor encrypted'}")
    if detail.get("signer"):
        text += f"; signed by {detail['signer']} ({detail.get('digest')})"
    if detail.get("encryption"):
        text += f"; {detail['encryption']}"
    return "AS2 received", (f"{text}; MIC {detail.get('mic')}; MDN {detail.get('mdn')} "
                            f"{detail.get('disposition')}")


def _as2_sent(detail: dict[str, Any]) -> tuple[str, str]:
    if detail.get("kind") == "mdn":
        return "AS2 MDN sent", f"for {detail.get('message_id')} to {detail.get('url')}"
    return "AS2 sent", (f"{detail.get('file_name')} to {detail.get('destination')} as "
                        f"{detail.get('as2_message_id')}; MIC {detail.get('mic')}; MDN "
                        f"{detail.get('mdn')}" + (" (signed)" if detail.get("mdn_signed")
                                                  else ""))


def _as2_mdn(detail: dict[str, Any]) -> tuple[str, str]:
    text = f"for {detail.get('message_id')}: {detail.get('disposition')}"
    if detail.get("confirmed"):
        return "AS2 MDN", text + (" (signed, MIC matches)" if detail.get("signed") else "")
    return "AS2 MDN (ALARM)", f"{text}; {detail.get('problem')}"


def _payment(label: str) -> Callable[[dict[str, Any]], tuple[str, str]]:
    def read(detail: dict[str, Any]) -> tuple[str, str]:
        text = f"{detail.get('instruction')} ({detail.get('agency')})"
        if detail.get("assessed_by"):
            text += f", assessed by {detail['assessed_by']}"
        for key in ("amounts", "instructed", "paid"):
            if detail.get(key):
                text += f"; {key} {', '.join(detail[key])}"
        if detail.get("bank_reference"):
            text += f"; bank reference {detail['bank_reference']}"
        return label, text + "".join(f"; {r}" for r in detail.get("reasons") or [])
    return read


#: How each kind of event reads; any other kind reads as its name and its detail.
_DESCRIBE: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "message_routed": _routed,
    "received": lambda d: ("received", f"over {d.get('transport')}, {d.get('bytes')} bytes"),
    "acknowledged": _sent,
    "delivered": lambda d: ("delivered", f"to {d.get('destination')} ({d.get('key')})"),
    "agency_decision": _decision,
    "clearance": lambda d: ("overall", f"{d.get('from') or 'awaiting'} -> {d.get('to')}"),
    "answer_overdue": lambda d: ("OVERDUE", f"{d.get('agency')} has not decided within "
                                            f"{d.get('deadline_seconds')} s"),
    "answer_refused": lambda d: ("answer refused", f"from {d.get('broker_user')}: "
                                                   f"{d.get('reason')}"),
    "payment_instructed": _payment("payment instructed"),
    "payment_confirmed": _payment("payment confirmed"),
    "payment_refused": _payment("payment refused"),
    "payment_mismatch": _payment("PAYMENT MISMATCH"),
    "answer_withheld": lambda d: ("answer withheld", f"{d.get('agency')}'s release waits "
                                                     "for the payment"),
    "answer_released": lambda d: ("answer released", f"{d.get('agency')}'s release: the "
                                                     "payment is confirmed"),
    "as2_received": _as2_received,
    "as2_sent": _as2_sent,
    "as2_mdn": _as2_mdn,
    "as2_mdn_missing": lambda d: ("AS2 MDN MISSING", f"none for {d.get('message_id')} after "
                                                     f"{d.get('waited_seconds')} s"),
    # certificates of origin between single windows (docs/n2n.md)
    "n2n_queued": lambda d: ("n2n queued", f"certificate {d.get('certificate')} for "
                                           f"{d.get('single_window')} ({d.get('country')}), "
                                           f"{d.get('because')}"),
    "origin_certificate_linked": lambda d: (
        "origin linked", f"certificate {d.get('certificate')} ({d.get('country')}, from "
                         f"{d.get('received_from')}) and declaration {d.get('declaration')} "
                         f"(submissions {d.get('certificate_submission')} and "
                         f"{d.get('declaration_submission')})"),
    "origin_certificate_awaited": lambda d: (
        "origin awaited", f"certificate {d.get('certificate')} (goods items "
                          f"{', '.join(str(i) for i in d.get('items') or ())}) not received yet"),
}


def _n2n_status(status: str) -> Callable[[dict[str, Any]], tuple[str, str]]:
    def told(d: dict[str, Any]) -> tuple[str, str]:
        return (f"n2n {status.replace('_', ' ')}",
                f"certificate {d.get('certificate')}, {d.get('single_window')}: "
                f"{d.get('mdn') or d.get('error') or d.get('reason') or ''}")
    return told


_DESCRIBE.update({f"n2n_{status}": _n2n_status(status) for status in (
    "pending", "delivered", "delivered_with_warnings", "not_readable", "failed")})


def describe(kind: str, detail: dict[str, Any]) -> tuple[str, str]:
    """(label, text) of one event."""
    if kind in _DESCRIBE:
        return _DESCRIBE[kind](detail)
    if "summary" in detail:
        return kind, str(detail["summary"])
    return kind, json.dumps(detail, ensure_ascii=False, default=str)
