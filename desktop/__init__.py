"""The Consulta desktop app: encrypted local store, sync client and the Qt workspaces."""
