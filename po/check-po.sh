#!/bin/sh
# Checks every translation listed in po/LINGUAS: it compiles with
# `msgfmt --check` (formats, header, plural forms), has every message of
# po/PACKAGE.pot (msgcmp), and has all of them translated, none fuzzy.
#
# Usage: check-po.sh PODIR PACKAGE MSGFMT MSGCMP
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

podir=$1
package=$2
msgfmt=$3
msgcmp=$4
status=0

for lang in $(grep -v '^[[:space:]]*\(#\|$\)' "$podir/LINGUAS"); do
  po=$podir/$lang.po
  if ! stats=$(LC_ALL=C "$msgfmt" --check --statistics -o /dev/null "$po" 2>&1); then
    echo "$lang: $stats"
    status=1
    continue
  fi
  echo "$lang: $stats"
  case $stats in
    *fuzzy*|*untranslated*) status=1 ;;
  esac
  if ! LC_ALL=C "$msgcmp" "$po" "$podir/$package.pot"; then
    echo "$lang: messages of $package.pot are missing; run \`ninja -C build $package-update-po\`"
    status=1
  fi
done
exit $status
