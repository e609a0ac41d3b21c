"""dmgbuild settings of the Consulta Desk disk image: the signed app beside a link to
/Applications, so IT (or a user) installs it by dragging one onto the other.

installers/build-dmg runs `dmgbuild -s installers/macos/dmg_settings.py -D app=<bundle> ...`;
dmgbuild executes this file with `defines` holding the -D values.
"""

from __future__ import annotations

import os.path

application = defines["app"]  # noqa: F821 (set by dmgbuild)
appname = os.path.basename(application)

# Compressed with LZFSE: smaller and faster to open than UDZO's zlib, readable since
# macOS 10.11 (the app needs 13).
format = "ULFO"
filesystem = "HFS+"
files = [application]
symlinks = {"Applications": "/Applications"}

default_view = "icon-view"
show_status_bar = False
show_toolbar = False
show_sidebar = False
window_rect = ((200, 120), (600, 320))
icon_size = 128
text_size = 13
icon_locations = {appname: (150, 140), "Applications": (450, 140)}
