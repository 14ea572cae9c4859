"""The journal's database: engines (oslo.db) and schema migrations
(alembic)."""
