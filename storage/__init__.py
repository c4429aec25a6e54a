"""Storage: SQLAlchemy models, repositories, full-text search, Alembic migrations."""
