#!/usr/bin/python3
# simple.py: Dovetail from Python (PyGObject), in plain sequential code
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# From a build tree:
#   GI_TYPELIB_PATH=build/dovetail LD_LIBRARY_PATH=build/dovetail \
#   PYTHONPATH=build/python /usr/bin/python3 examples/simple.py
#
# PYTHONPATH=build/python loads Dovetail's PyGObject overrides, which an
# installed Dovetail has in place; the calls below also work without them.

import sys

import gi

gi.require_version("Dvt", "1")
gi.require_version("Gio", "2.0")
from gi.repository import Dvt, Gio, GLib  # noqa: E402

runtime = Dvt.Runtime.new(0)


# A blocking function: runs on one of the runtime's worker threads.
def add_numbers(task, cancellable, data):
    task.return_value(sum(range(1, 1001)))


print("1 + 2 + ... + 1000 =", runtime.to_thread_blocking(add_numbers))


# An async function: runs on the runtime's loop thread, starts GIO work and
# returns; the GIO callback completes the task. No main loop needed here.
def load(task, cancellable, path):
    def done(file, result):
        try:
            ok, contents, etag = file.load_contents_finish(result)
            task.return_value(len(contents))
        except GLib.Error as error:
            task.return_error(error)  # reaches the caller unchanged

    Gio.File.new_for_path(path).load_contents_async(cancellable, done)


path = sys.argv[1] if len(sys.argv) > 1 else "/etc/os-release"
try:
    print(f"{path}: {runtime.run_blocking(load, path)} bytes")
except GLib.Error as error:
    print(f"cannot read {path}: {error.message} ({error.domain}, {error.code})")


# An ordered parallel map, at most 4 items at once, failures in their slots.
def square(task, cancellable, data):
    i = task.get_index()
    if i == 3:
        raise GLib.Error("three is not welcome")
    task.return_value(i * i)


options = Dvt.Options(max_concurrency=4, return_errors=True)
print("squares:", runtime.map_blocking(6, square, options=options))

runtime.shutdown(True, False)
