"""Single Window Gateway: the message-switching hub of a national trade Single Window.

The package is laid out along the data flow (see README.md):
transports -> app (intake, processor) -> pipeline (envelope, map, route, contrl)
-> store (outbox) -> bus (AMQP) -> agencies.
"""

__version__ = "0.1.0"
