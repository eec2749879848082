"""Shared plumbing every app uses and that imports no app: bulk writes (`bulk`), API helpers
(`api`), roles and permissions (`roles`, `permissions`), the organisation-scoped admin base
(`admin`) and CSV safety (`csv_safe`)."""
