"""Per-customer target values from CSV: one service, two database backends, one set of rules.

- `jobs`: the one import service. Every way in (the API, the admin's "Add" and its confirmed
  preview, the care upload page) stores an `ImportJob` with `import_job_create`;
  `import_job_run` runs it on one of the two backends below.
- `spec`: the header and cell rules and their messages (shared by every path).
- `reader`: streams a file row by row (UTF-8 check per line, column counts) without holding it.
- `checks`: opens a job's file with its header checked (`job_rows`) and checks rows
  (`RowChecker`), for both backends and the admin's preview.
- `python_path`: validate the whole file, then write in chunks (SQLite, small files).
- `pg_path`: COPY into a staging table, validate in SQL, merge set-based (PostgreSQL).
- `preview`: the care upload page's steps before anything is written: a file's header and
  first rows, the mapping choices and a first guess, and the preview (rows, new customers,
  problems by row and column); a finished import's problems with the cells they name.
- The django-import-export resource in `enrolment/resources.py` uses `spec` and `checks` for
  the admin's preview only; its confirm hands the file to `jobs`.
"""
