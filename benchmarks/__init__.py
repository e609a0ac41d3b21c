"""Runnable benchmark scripts that print a comparison; not part of the test run."""
