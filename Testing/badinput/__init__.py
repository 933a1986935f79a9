"""The bad-input matrix (see harness.py): hostile inputs, built per case, for every entry point."""
