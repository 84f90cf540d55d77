# i18n.py: translations of the override's messages (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""gettext for the Python override, in the C library's domain.

``_(message)`` translates @message in the ``dovetail-1`` domain through
GLib's ``g_dgettext()``, so the catalogue is the one the C library binds
(its ``LOCALEDIR``, bound when the first runtime is made; before that, the
system's default locale directory). The Python files are listed in
``po/POTFILES.in`` and scanned by xgettext (language Python) with the C
sources.
"""

from gi.repository import GLib

GETTEXT_PACKAGE = 'dovetail-1'

__all__ = ['_', 'GETTEXT_PACKAGE']


def _(message):
    return GLib.dgettext(GETTEXT_PACKAGE, message)
