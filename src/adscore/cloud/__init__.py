"""Cloud helpers used by settings, secrets and backends; each cloud's SDK is imported inside its functions."""
