#!/bin/sh
# Checks that po/POTFILES.in lists exactly the sources that have strings
# marked for translation, so that none is missed in the .pot file.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

srcdir=${1:-$(dirname "$0")/..}
cd "$srcdir"

listed=$(grep -v '^[[:space:]]*\(#\|$\)' po/POTFILES.in | sort)
marked=$(grep -l -E '(^|[^[:alnum:]_])(N_|C_|NC_|_|g_dngettext|g_dpgettext2)[[:space:]]*\(' dovetail/*.c dovetail/overrides/*.py dovetail/overrides/_dvt/*.py | sort)

status=0
for f in $marked; do
  if ! printf '%s\n' "$listed" | grep -qx "$f"; then
    echo "$f has translatable strings but is missing from po/POTFILES.in"
    status=1
  fi
done
for f in $listed; do
  if [ ! -f "$f" ]; then
    echo "po/POTFILES.in lists $f, which does not exist"
    status=1
  fi
done
[ $status -eq 0 ] && echo "po/POTFILES.in lists all $(printf '%s\n' "$marked" | wc -l) files with translatable strings"
exit $status
