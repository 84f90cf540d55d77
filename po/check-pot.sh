#!/bin/sh
# Checks that the committed po/PACKAGE.pot is what xgettext makes of the
# sources listed in po/POTFILES.in now, apart from its creation date, so
# that no new or changed message escapes the translators. When it fails,
# regenerate it with `ninja -C build PACKAGE-pot`, merge it into the
# translations with `ninja -C build PACKAGE-update-po`, translate, commit.
#
# Usage: check-pot.sh SRCDIR PACKAGE XGETTEXT [XGETTEXT-ARGUMENTS...]
# (po/meson.build passes the arguments its pot target uses.)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

srcdir=$1
package=$2
xgettext=$3
shift 3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The same command line as meson's `PACKAGE-pot` target.
"$xgettext" "--package-name=$package" -p "$tmp" -f "$srcdir/po/POTFILES.in" \
  -D "$srcdir" -k_ -o "$tmp/$package.pot" "$@"

grep -v '^"POT-Creation-Date: ' "$srcdir/po/$package.pot" > "$tmp/committed" || true
grep -v '^"POT-Creation-Date: ' "$tmp/$package.pot" > "$tmp/current"

if ! diff -u --label "po/$package.pot (committed)" --label "po/$package.pot (from the sources)" \
       "$tmp/committed" "$tmp/current"; then
  echo "po/$package.pot is out of date: run \`ninja -C build $package-pot\` and commit it"
  exit 1
fi
echo "po/$package.pot is current ($(grep -c '^msgid ' "$tmp/current") entries, header included)"
