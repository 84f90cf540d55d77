# site-dir.py PREFIX: prints the directory under PREFIX where this Python
# interpreter really looks for packages (for /usr/local on Debian,
# /usr/local/lib/python3.X/dist-packages), or nothing when it searches no
# directory under PREFIX (then PYTHONPATH must name the install directory).
# Run with -I, so that PYTHONPATH and the user's site do not count.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import sys

prefix = os.path.normpath(sys.argv[1])
for entry in sys.path:
    entry = os.path.normpath(entry) if entry else ''
    if (entry.startswith(prefix + os.sep)
            and os.path.basename(entry) in ('dist-packages', 'site-packages')):
        print(entry)
        break
