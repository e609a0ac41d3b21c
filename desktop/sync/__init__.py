"""Pushing this computer's outbox and pulling the clinic's changes (no Qt here)."""
