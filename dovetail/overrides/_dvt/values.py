# values.py: Python values through GValues (private)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

"""Python values handed to the C library as a task's value (or a queue's,
a channel's item) and read back as themselves.

Private API, for ``gi.overrides.Dvt`` and the other modules here:

``box(value)``
    A ``GObject.Value`` that carries @value itself to a Python reader.

``to_value(value)``
    What to pass to a raw call taking a ``GValue`` for @value: ``None``
    and integers beyond 32 bits included.
"""

from gi.repository import GObject

_INT_MIN, _INT_MAX = -2 ** 31, 2 ** 31 - 1
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1


def box(value):
    """A GValue that carries @value itself to a Python reader."""
    if isinstance(value, GObject.Value):
        return value
    return GObject.Value(GObject.TYPE_PYOBJECT, value)


def to_value(value):
    """What to pass to the raw Task.return_value for @value."""
    if isinstance(value, GObject.Value):
        return value
    if value is None:
        return box(None)
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT_MIN <= value <= _INT_MAX:
            return value
        if _INT64_MIN <= value <= _INT64_MAX and type(value) is int:
            return GObject.Value(GObject.TYPE_INT64, value)
        return box(value)
    return value
