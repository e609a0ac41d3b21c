"""Reminders: the clinic's policy, the queue rows booking changes write, the messages,
the channels that carry them and the dispatcher every server process runs."""
