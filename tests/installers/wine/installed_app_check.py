"""Run by the *installed* Python of Consulta Desk under wine (tests/installers/test_msi.py):
import the app, then create or reopen an encrypted store in the user's data folder the way
the app does (its key from the Windows credential store through keyring), and show a Qt
window offscreen. Prints one JSON line of what it saw.

    python.exe installed_app_check.py create|reopen
"""

from __future__ import annotations

import json
import sys


def main(mode: str) -> None:
    import keyring
    from sqlalchemy import text

    import desktop.ui.app  # noqa: F401  (the whole app imports, Qt included)
    from desktop.config import data_dir, machine_preset
    from desktop.store.database import open_store
    from desktop.store.keys import load_or_create_key
    from desktop.ui.qt import QApplication, QLabel

    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "consulta.db"

    def no_passphrase() -> str:
        raise RuntimeError("the Windows credential store should hold the key")

    key = load_or_create_key(store, store_id="wine-check", ask_passphrase=no_passphrase)
    engine = open_store(store, key.key)
    with engine.begin() as conn:
        if mode == "create":
            conn.execute(text("CREATE TABLE install_check (note TEXT)"))
            conn.execute(text("INSERT INTO install_check VALUES ('kept across upgrades')"))
        notes = [row[0] for row in conn.execute(text("SELECT note FROM install_check"))]
        cipher = conn.execute(text("PRAGMA cipher_version")).scalar()
    engine.dispose()
    # Wine does not hand QT_QPA_PLATFORM to Windows programs: ask Qt directly.
    app = QApplication([sys.argv[0], "-platform", "offscreen"])
    label = QLabel("Consulta")
    label.show()
    app.processEvents()
    preset = machine_preset()
    print(json.dumps({
        "python": sys.version.split()[0], "executable": sys.executable,
        "data_dir": str(folder), "store": str(store), "key_source": key.source,
        "keyring": type(keyring.get_keyring()).__name__, "notes": notes,
        "cipher_version": cipher, "qt_platform": app.platformName(),
        "label_visible": label.isVisible(), "preset_server": preset.server_url,
        "preset_code": preset.enrolment_code,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
