"""What a person does on this computer, written to the local store and queued for sync."""
