"""What the desktop app and the sync server share: tables, wire schemas, enums and ids.

Neither side is imported from here; both import this package.
"""
