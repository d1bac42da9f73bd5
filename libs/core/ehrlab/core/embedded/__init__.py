"""Embedded mode: a private PostgreSQL and every service as local processes (`ehrlab up`)."""
