"""Scheduling and paged KV-cache bookkeeping (pure host-side Python, device-neutral)."""
