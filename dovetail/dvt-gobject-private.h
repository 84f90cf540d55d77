/* dvt-gobject-private.h: what GLib knows of an object's signal handlers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* Several hot paths ask whether an object has a signal handler (the
 * runtime: are its events wanted; a task or a cancellable: may it be
 * reused). g_signal_handler_find() answers under GLib's global signal
 * lock, which every thread of the runtime takes for every task.
 *
 * Since 2.72, GLib sets a bit in the 32-bit padding after a GObject's
 * reference count (on 64-bit platforms) the first time a handler is
 * connected to the object, and never clears it; it uses the bit itself
 * to skip the handler lookup of an emission. An object without the bit
 * has never had a handler: no lookup is needed to know that it has none.
 *
 * That bit is GLib's private business, so Dovetail trusts it only once a
 * probe at startup (dvt_gobject_probe()) has seen it clear on a new
 * object and set by each way of connecting a handler; otherwise, or where
 * GObject has no padding there, every object may have handlers and the
 * lookup is made as before. */

G_GNUC_INTERNAL extern int dvt_gobject_handler_bit_usable;

/* Where the bit is: the padding between ref_count and qdata. */
#define DVT_GOBJECT_FLAGS_OFFSET (G_STRUCT_OFFSET (GObject, ref_count) + sizeof (guint))
#define DVT_GOBJECT_HAS_PADDING \
  (G_STRUCT_OFFSET (GObject, qdata) >= (glong) (DVT_GOBJECT_FLAGS_OFFSET + sizeof (guint)))
#define DVT_GOBJECT_FLAG_HAS_SIGNAL_HANDLER (1 << 1)

void dvt_gobject_probe (void);

/* FALSE only if no signal handler was ever connected to @object. */
static inline gboolean
dvt_object_may_have_handlers (gpointer object)
{
  if (DVT_GOBJECT_HAS_PADDING && G_LIKELY (dvt_gobject_handler_bit_usable))
    {
      int *flags = G_STRUCT_MEMBER_P (object, DVT_GOBJECT_FLAGS_OFFSET);

      return (g_atomic_int_get (flags) & DVT_GOBJECT_FLAG_HAS_SIGNAL_HANDLER) != 0;
    }

  return TRUE;
}

/* Whether @object has an unblocked handler: g_signal_handler_find(),
 * skipped when none was ever connected. */
static inline gboolean
dvt_object_has_handlers (gpointer object)
{
  return dvt_object_may_have_handlers (object) &&
         g_signal_handler_find (object, G_SIGNAL_MATCH_UNBLOCKED, 0, 0, NULL, NULL, NULL) != 0;
}

G_END_DECLS
