"""Batch prompt evaluation: suites of datasets x templates x models x retrieval settings,
deterministic metrics, paired statistics, resumable runs and self-contained reports."""
