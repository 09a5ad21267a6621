"""Delivery: what a release pins, read from the source (dev) account."""
