"""The store: engine and sessions, SQLModel tables, migrations, bulk writes, backup."""
