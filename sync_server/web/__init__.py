"""The patient booking page: server-rendered HTML (Jinja2) over the same booking service
as the desk and the public JSON API, in Spanish and English, working without JavaScript."""
