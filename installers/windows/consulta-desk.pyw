"""Start Consulta Desk from its Windows install folder (the Start-menu shortcut runs this
with the bundled pythonw.exe).

pythonw has no console, so an app that cannot even start would vanish without a word. This
launcher catches that case: it writes the traceback to `startup-error.txt` in the user's
Consulta data folder and tells the person, in a message box, where it is and whom to call.
"""

from __future__ import annotations

import ctypes
import os
import sys
import traceback
from pathlib import Path

MB_ICONERROR = 0x10


def _report(text: str) -> None:
    base = Path(os.environ.get("LOCALAPPDATA") or Path.home())
    folder = Path(os.environ.get("CONSULTA_DESK_DATA") or base / "Consulta" / "Consulta")
    where = folder / "startup-error.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        where.write_text(text, encoding="utf-8")
        message = (f"Consulta Desk could not start.\n\nThe details are in:\n{where}\n\n"
                   "Please send that file to your IT support.")
    except OSError:
        message = f"Consulta Desk could not start.\n\n{text[-1500:]}"
    ctypes.windll.user32.MessageBoxW(None, message, "Consulta Desk", MB_ICONERROR)


def main() -> int:
    try:
        from desktop.ui.app import main as desk_main
    except BaseException:
        _report(traceback.format_exc())
        return 1
    return int(desk_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
