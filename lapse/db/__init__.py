"""Database: engine construction, the tables, and migrations."""
