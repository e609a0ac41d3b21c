"""`python -m desktop.machine_preset --server-url URL --enrolment-code CODE`: what the
Windows installer runs (as the installing administrator) to write the machine-wide
`consulta-desk.json` from the MSI properties SERVER_URL and ENROLMENT_CODE.

An empty value means "not given" (msiexec passes empty properties as ""), so an upgrade
run without them keeps what the first install wrote. A bad address stops the install: the
installer rolls back and the reason is left in `consulta-desk-install-error.txt` beside the
settings file, since a silent install (/qn) has no window to show it in.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from desktop.config import ConfigError, MachinePreset, machine_config_path, write_machine_preset

ERROR_FILE = "consulta-desk-install-error.txt"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desktop.machine_preset",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", default="")
    parser.add_argument("--enrolment-code", default="")
    args = parser.parse_args(argv)
    path = machine_config_path()
    failure = path.with_name(ERROR_FILE)
    try:
        write_machine_preset(MachinePreset(server_url=args.server_url.strip() or None,
                                           enrolment_code=args.enrolment_code or None), path)
    except (ConfigError, OSError) as exc:
        message = f"SERVER_URL / ENROLMENT_CODE not written to {path}: {exc}"
        print(message, file=sys.stderr)
        try:
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(message + "\n", encoding="utf-8")
        except OSError:
            pass
        return 2
    failure.unlink(missing_ok=True)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
