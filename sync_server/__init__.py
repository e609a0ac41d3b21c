"""The Consulta sync server: API, sync, booking, reminders, booking page and admin CLI."""
