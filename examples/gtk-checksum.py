#!/usr/bin/python3
# gtk-checksum.py: the Python twin of gtk-checksum.c, a GTK 4 window that
# checksums the files of a folder on Dovetail's workers, never blocking the
# UI thread: the walk and the checksums run on the runtime's workers; the
# callbacks, the map's "progress" and the notifications of "pending" (the
# spinner) come on the main thread, the runtime's event-context; Cancel
# cancels the map; closing the window shuts the runtime down without
# blocking, and the window goes once that is done.
#
#   gtk-checksum.py [--directory DIR] [--auto [--close-early]]
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import argparse
import hashlib
import os
import sys
import time

import gi
gi.require_version('Dvt', '1')
gi.require_version('Gtk', '4.0')
from gi.repository import Dvt, Gio, GLib, GObject, Gtk  # noqa: E402

MAX_FILES = 2000


def walk(task, cancellable, directory):
    """On a worker: the regular files under the folder."""
    paths = []
    for root, dirs, files in os.walk(directory):
        paths += [p for p in (os.path.join(root, f) for f in sorted(files))
                  if os.path.isfile(p) and not os.path.islink(p)]
        if len(paths) >= MAX_FILES or cancellable.is_cancelled():
            break
    task.return_value(paths[:MAX_FILES])


def sha256(path):
    """On a worker, once per file."""
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


class Window(Gtk.ApplicationWindow):
    def __init__(self, app, args):
        super().__init__(application=app, title='Dovetail checksums',
                         default_width=640, default_height=400)
        self.args = args
        self.cancellable = None
        self.closing = False
        self.shut_down = False
        # Events, progress and notifications on this (the main) thread;
        # handlers connected before any work is submitted.
        self.runtime = Dvt.Runtime(max_workers=4, name='gtk-checksum',
                                   event_context=GLib.MainContext.default())
        self.runtime.connect('progress', self.on_progress)

        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8,
                      margin_start=12, margin_end=12, margin_top=12, margin_bottom=12)
        row = Gtk.Box(spacing=8)
        row.append(Gtk.Label(label=args.directory, xalign=0, hexpand=True))
        spinner = Gtk.Spinner()
        self.runtime.bind_property('pending', spinner, 'spinning',
                                   GObject.BindingFlags.SYNC_CREATE)
        row.append(spinner)
        self.start_button = Gtk.Button.new_with_mnemonic('_Start')
        self.start_button.connect('clicked', lambda b: self.start())
        self.cancel_button = Gtk.Button.new_with_mnemonic('_Cancel')
        self.cancel_button.connect('clicked', lambda b: self.cancellable and self.cancellable.cancel())
        row.append(self.start_button)
        row.append(self.cancel_button)
        box.append(row)
        self.progress = Gtk.ProgressBar(show_text=True)
        box.append(self.progress)
        self.status = Gtk.Label(label='Ready', xalign=0)
        box.append(self.status)
        self.set_child(box)
        self.connect('close-request', self.on_close_request)
        self.set_busy(False)

    def set_busy(self, busy):
        self.start_button.set_sensitive(not busy and not self.closing)
        self.cancel_button.set_sensitive(busy and not self.closing)

    def start(self):
        self.cancellable = Gio.Cancellable()
        self.started = time.monotonic()
        self.set_busy(True)
        self.status.set_text('Walking the folder…')
        self.runtime.to_thread_async(walk, self.args.directory,
                                     cancellable=self.cancellable, callback=self.on_walked)

    def on_walked(self, runtime, result, user_data):
        try:
            self.paths = runtime.to_thread_finish(result)
        except GLib.Error as error:
            return self.end(f'cannot walk: {error.message}')
        if self.closing:
            return self.end('cancelled')
        self.status.set_text(f'Checksumming {len(self.paths)} files…')
        options = Dvt.Options(name='checksum', max_concurrency=4, return_errors=True)
        runtime.map_async(sha256, self.paths, options=options,
                          cancellable=self.cancellable, callback=self.on_mapped)
        if self.args.close_early:  # as if the user closed the window now
            self.close()

    def on_progress(self, runtime, task, done, total):
        self.progress.set_fraction(done / total if total else 1.0)
        self.progress.set_text(f'{done} / {total} files')

    def on_mapped(self, runtime, result, user_data):
        try:
            sums = runtime.map_finish(result)
        except GLib.Error as error:
            return self.end('cancelled' if error.matches(Gio.io_error_quark(),
                                                         Gio.IOErrorEnum.CANCELLED)
                            else f'failed: {error.message}')
        failed = sum(1 for s in sums if isinstance(s, BaseException))
        self.end(f'{len(sums) - failed} files checksummed, {failed} unreadable, '
                 f'in {time.monotonic() - self.started:.2f} s')

    def end(self, status):
        self.status.set_text(status)
        self.cancellable = None
        self.set_busy(False)
        if self.args.auto:
            print(f'gtk-checksum.py: {status}', flush=True)
            self.get_application().summary_printed = True
        if self.closing:
            if self.shut_down:
                self.destroy()
        elif self.args.auto:
            self.close()

    def on_close_request(self, window):
        if not self.closing:
            self.closing = True
            self.set_busy(False)
            # cancel_pending: work in flight ends cancelled; the main loop
            # keeps running until the shutdown's callback.
            self.runtime.shutdown_async(True, None, self.on_shut_down)
        return True  # the window stays until on_shut_down

    def on_shut_down(self, runtime, result, *user_data):
        runtime.shutdown_finish(result)
        self.shut_down = True
        if self.cancellable is None:  # else the walk's or map's callback destroys it
            self.destroy()


def main():
    parser = argparse.ArgumentParser(description='Checksum a folder with Dovetail')
    parser.add_argument('--directory', default='/usr/share/common-licenses')
    parser.add_argument('--auto', action='store_true',
                        help='start at once, print a summary and close when done')
    parser.add_argument('--close-early', action='store_true',
                        help='with --auto, close the window while the checksums run')
    args = parser.parse_args()

    app = Gtk.Application(application_id='org.dovetail.GtkChecksumPy',
                          flags=Gio.ApplicationFlags.NON_UNIQUE)

    def on_activate(app):
        window = Window(app, args)
        window.present()
        if args.auto:
            window.start()

    app.summary_printed = False
    app.connect('activate', on_activate)
    status = app.run([sys.argv[0]])
    if status == 0 and args.auto and not app.summary_printed:
        print('gtk-checksum.py: --auto: the window closed before the run ended', file=sys.stderr)
        status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
