"""The local encrypted store (SQLCipher through SQLAlchemy)."""
