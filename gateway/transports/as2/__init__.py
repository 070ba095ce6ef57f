"""The AS2 transport (RFC 4130) over HTTP: server.py is the endpoint partners POST to,
client.py POSTs our messages and MDNs.  What a request means (partners, MDNs, the intake) is
app/as2_inbound.py's; what a send means, app/as2_outbound.py's."""

from gateway.transports.as2.client import PostResult, post
from gateway.transports.as2.server import As2Listener, Inbox, Reply, start_listener

__all__ = ["As2Listener", "Inbox", "PostResult", "Reply", "post", "start_listener"]
