#!/bin/sh
# Checks the generated API reference: no page names the directories it
# was built from (no file:// links into the build machine), and with a
# source URL every [src] link is that URL followed by a path of the
# repository that exists (dovetail/dvt-runtime.h#L42).
#
# Usage: check-source-links.sh HTMLDIR SRCDIR BUILDDIR [SOURCE_URL]
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

html=$1
srcdir=$2
builddir=$3
url=${4:-}
status=0

if grep -rlF -e 'file://' -e "$srcdir/" -e "$builddir/" "$html" --include='*.html'; then
  echo "the pages above name the build machine's file system"
  status=1
fi

links=$(grep -rhoE 'class="srclink"[^>]*href="[^"]*"' "$html" --include='*.html' |
        sed 's/.*href="\([^"]*\)"/\1/' | sort -u)

if [ -z "$url" ]; then
  if [ -n "$links" ]; then
    echo "source links without -Dsource_url:"
    printf '%s\n' "$links" | head
    status=1
  fi
  [ $status -eq 0 ] && echo "no source links (built without -Dsource_url), no local paths"
  exit $status
fi

n=0
for link in $links; do
  n=$((n + 1))
  case $link in
    "$url"*) ;;
    *) echo "not under $url: $link"; status=1; continue ;;
  esac
  path=${link#"$url"}
  path=${path%%#*}
  if [ ! -f "$srcdir/$path" ]; then
    echo "no $path in the repository: $link"
    status=1
  fi
done
if [ $n -eq 0 ]; then
  echo "no source links although -Dsource_url=$url"
  status=1
fi
[ $status -eq 0 ] && echo "$n source links, all under $url to files of the repository"
exit $status
