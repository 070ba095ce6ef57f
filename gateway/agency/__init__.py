"""The small SDK an agency system uses: consume its own queue as its own broker user, decide on
each delivery, and answer the gateway (docs/agencies.md).

    from gateway.agency import answers, consume, endpoint_of

    async def decide(delivery):
        return [answers.accepted(delivery, "REF-1"), answers.released(delivery, "REF-1")]

    await consume(endpoint_of(config, "customs"), decide, stop)

The example adapters (``gateway agency run customs|quarantine``) are ``customs.decide`` and
``quarantine.decide`` with their rules files."""

from gateway.agency import answers, licences
from gateway.agency.answers import Answer, Outgoing
from gateway.agency.consumer import Handler, Observer, consume
from gateway.agency.credentials import Endpoint, agency_url, endpoint_of, read_password
from gateway.agency.delivery import Delivery, MalformedDelivery
from gateway.agency.journal import Journal, default_journal_path

__all__ = [
    "Answer",
    "Delivery",
    "Endpoint",
    "Handler",
    "Journal",
    "MalformedDelivery",
    "Observer",
    "Outgoing",
    "agency_url",
    "answers",
    "consume",
    "default_journal_path",
    "endpoint_of",
    "licences",
    "read_password",
]
