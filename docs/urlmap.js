// Where the API references of Dvt's dependencies live: gi-docgen's pages
// resolve links to other namespaces through this map.
// SPDX-License-Identifier: LGPL-2.1-or-later
baseURLs = [
    ['GLib', 'https://docs.gtk.org/glib/'],
    ['GObject', 'https://docs.gtk.org/gobject/'],
    ['Gio', 'https://docs.gtk.org/gio/'],
];
