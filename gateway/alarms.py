"""Every alarm the gateway logs, by a stable code (issue 14: "alarms are logged as structured
events that carry a stable code").  An alarm is an event that needs a person: its log line
carries ``code`` (one of this table) beside its ``note``, so a log pipeline alerts on the code,
not on wording that may change.  docs/observability.md (Alarms) says what each means and what
to do; tests/unit/test_alarms.py checks that every alarm site uses a code of this table and
that no two alarms share one.

A code is never reused for another meaning, nor renumbered: a retired alarm keeps its code out
of use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Alarm:
    code: str
    #: The event name(s) logged with it.
    events: tuple[str, ...]
    meaning: str
    action: str


SUBMISSION_PARKED = "GW-A001"
DISPATCH_PARKED = "GW-A002"
PUBLISH_RETURNED = "GW-A003"
ANSWER_DEAD_LETTERED = "GW-A004"
ANSWER_REFUSED = "GW-A005"
ANSWER_OVERDUE = "GW-A006"
AS2_SEND_FAILING = "GW-A007"
AS2_MDN_MISSING = "GW-A008"
CERTIFICATE_NO_SUCCESSOR = "GW-A009"
WORKER_CRASHED = "GW-A010"
WORKER_EXITED = "GW-A011"
ROUTING_FOLLOW_FAILED = "GW-A012"
ROUTING_RELOAD_FAILED = "GW-A013"
HOST_KEY_WAS_READABLE = "GW-A014"
AS2_UNWRAP_PROCESS_DIED = "GW-A015"
PORT_OVERTIME = "GW-A016"
PORT_ILLEGAL_STORAGE = "GW-A017"
LICENCE_REFUSED = "GW-A018"
PAYMENT_MISMATCH = "GW-A019"
N2N_NO_SINGLE_WINDOW = "GW-A020"
N2N_SEND_FAILED = "GW-A021"

ALARMS: tuple[Alarm, ...] = (
    Alarm(SUBMISSION_PARKED, ("submission_parked",),
          "a submission could not be decided after the processor's bounded attempts (our "
          "failure: the store, a bug); it is parked",
          "fix the cause named in `error`, then replay it (console Attention page, or "
          "`gateway replay ID`)"),
    Alarm(DISPATCH_PARKED, ("dispatch_parked",),
          "a delivery or answer failed on its own 8 times, or can never go as it is; it is "
          "parked and no longer retried",
          "read `error` and `destination`; once fixed, replay it (Attention page, or "
          "`gateway replay ID`)"),
    Alarm(PUBLISH_RETURNED, ("publish_returned",),
          "the broker returned a delivery no queue took (an agency's queue deleted?)",
          "the gateway declares the queue again and publishes again; find who deleted it"),
    Alarm(ANSWER_DEAD_LETTERED, ("answer_dead_lettered",),
          "the gateway failed on an agency's answer repeatedly (a bug of ours); it is in the "
          "responses dead-letter queue",
          "report the traceback of the preceding answer_failed lines; replay once fixed"),
    Alarm(ANSWER_REFUSED, ("answer_refused",),
          "an agency's answer was refused (unknown correlation, wrong agency, bad body); "
          "recorded in refused_answers and dead-lettered, forwarded nowhere",
          "read `reason`; tell the agency what it sent wrong"),
    Alarm(ANSWER_OVERDUE, ("answer_overdue",),
          "an agency has not decided a message within its answer_within_seconds "
          "(agencies.yaml)",
          "ask the agency; the console's Clearance page lists what is overdue"),
    Alarm(AS2_SEND_FAILING, ("as2_send_failing",),
          "an answer to an AS2 partner keeps failing to send; it stays queued with backoff",
          "check the partner's AS2 url and certificate (console Partners page)"),
    Alarm(AS2_MDN_MISSING, ("as2_mdn_missing",),
          "no MDN came for an answer sent over AS2 within async_mdn_wait_seconds",
          "ask the partner whether it arrived; `gateway replay` sends it again"),
    Alarm(CERTIFICATE_NO_SUCCESSOR,
          ("partner_certificate_expired", "partner_certificate_expiring"),
          "a partner's certificate is expired or expires within 30 days and no other valid "
          "one is listed to rotate to",
          "ask the partner for a new certificate and add it to partners.yaml "
          "(as2.certificates); the Partners page shows days left"),
    Alarm(WORKER_CRASHED, ("worker_crashed",),
          "a part of the gateway (relay, processor, watcher) crashed; it restarts with backoff",
          "report the traceback; repeated restarts mean that part does no work"),
    Alarm(WORKER_EXITED, ("worker_exited",),
          "a worker process of gateway serve --workers exited; it is started again",
          "read the worker's last log lines; its work is taken up by the others"),
    Alarm(ROUTING_FOLLOW_FAILED, ("routing_follow_failed",),
          "a worker process cannot load the routing table the main process applied; it keeps "
          "the previous one",
          "read `error` (agencies.yaml changed under it?)"),
    Alarm(ROUTING_RELOAD_FAILED, ("routing_reload_failed",),
          "a change of routing.yaml (or its reload) was refused; the previous table keeps "
          "routing",
          "fix the file as `error` says (`gateway routes check`)"),
    Alarm(HOST_KEY_WAS_READABLE, ("host_key_was_readable",),
          "the SFTP host key file was readable by others; made private again",
          "if others could read it, make a new host key and give partners its fingerprint"),
    Alarm(AS2_UNWRAP_PROCESS_DIED, ("as2_unwrap_process_died",),
          "a process unwrapping AS2 messages died (killed for memory? a crash in a C "
          "library); the messages it held were answered 503 and a new process was started",
          "look for the kernel's OOM killer in the system log; lower the partners' max_bytes "
          "or give the host more memory"),
    Alarm(PORT_OVERTIME, ("port_overtime",),
          "a container took longer than a port alarms rule allows from one event to the next "
          "(say discharged to gated out), or has not had the second one within it",
          "ask the terminal or the carrier; acknowledge it on the console's Port alarms page"),
    Alarm(PORT_ILLEGAL_STORAGE, ("port_illegal_storage",),
          "a container was discharged or gated in and no customs declaration covering it "
          "(CUSDEC EQD) came within the legal window",
          "send customs to the container; acknowledge it on the console's Port alarms page"),
    Alarm(LICENCE_REFUSED, ("licence_refused",),
          "a licence published on the licences exchange was refused (not its issuer's, an "
          "amendment not newer than the one held, unreadable); it was dead-lettered, not applied",
          "read `reason` and the refused_licences row; tell the agency (docs/licences.md)"),
    Alarm(PAYMENT_MISMATCH, ("payment_mismatch",),
          "a bank confirmed a payment of other amounts than the duties instructed; the "
          "declaration is not released on it",
          "compare `instructed` and `paid` (gateway track); ask the bank to confirm again "
          "(docs/payments.md)"),
    Alarm(N2N_NO_SINGLE_WINDOW, ("n2n_no_single_window",),
          "an approved certificate of origin names a destination country with no single "
          "window in partners.yaml (or none at all); its status is failed, nothing was sent",
          "add the country's single window (kind: single_window) and `gateway n2n resend "
          "CERT`, or tell the trade authority (docs/n2n.md)"),
    Alarm(N2N_SEND_FAILED, ("n2n_send_failed",),
          "a certificate of origin was not confirmed by the foreign single window after "
          "n2n.max_attempts sends (down, refusing), or it answered that it could not read it "
          "(not_readable); no more retries",
          "read `error` in `gateway n2n status CERT`; once the partner is fixed, "
          "`gateway n2n resend CERT` (docs/n2n.md)"),
)

BY_CODE: dict[str, Alarm] = {alarm.code: alarm for alarm in ALARMS}
