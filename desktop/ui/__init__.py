"""The Qt screens. Qt is imported in `desktop.ui.qt` only."""
