"""Per-customer target values from CSV: one set of rules, three ways in.

- `spec`: the header and cell rules and their messages (shared by every path).
- `reader`: streams a file row by row (UTF-8 check per line, column counts) without holding it.
- `python_path`: validate the whole file, then write in chunks (SQLite, small files).
- `pg_path`: COPY into a temporary staging table, validate in SQL, merge set-based (PostgreSQL).
- The django-import-export resource in `enrolment/resources.py` uses `spec` for the admin's
  preview and confirm.
"""
