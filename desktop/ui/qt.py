"""The one place Qt is imported: screens import their Qt names from here."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import (
    QCoreApplication,
    QDate,
    QEvent,
    QLocale,
    QObject,
    QPoint,
    QRect,
    QRunnable,
    QSettings,
    Qt,
    QThread,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QColor,
    QHelpEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QStatusBar,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "QAction", "QApplication", "QCheckBox", "QCloseEvent", "QColor", "QComboBox",
    "QCoreApplication", "QDate",
    "QDateEdit", "QDialog", "QDialogButtonBox", "QEvent", "QFormLayout", "QHBoxLayout",
    "QHelpEvent", "QKeySequence", "QLabel", "QLineEdit", "QListWidget", "QListWidgetItem",
    "QLocale", "QMainWindow", "QMessageBox", "QMouseEvent", "QObject", "QPaintEvent", "QPainter",
    "QPen", "QPoint", "QPushButton", "QRect", "QRunnable", "QSettings", "QStackedWidget",
    "QStatusBar", "QTabWidget", "QTableWidget", "QTableWidgetItem", "QThread", "QThreadPool",
    "QTimer", "QToolTip", "QVBoxLayout", "QWidget", "Qt", "QtCore", "QtGui", "QtWidgets",
    "Signal", "Slot",
]
