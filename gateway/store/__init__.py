"""PostgreSQL (asyncpg): interchanges, messages, events, acknowledgements and the outbox."""
