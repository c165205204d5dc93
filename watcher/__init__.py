"""Borrower Watcher: watches company registries for changes in a bank's corporate borrowers."""

__version__ = "0.1.0"
