"""Sans-I/O codecs: bytes in, typed objects out (and back). No sockets, files or asyncio here."""
