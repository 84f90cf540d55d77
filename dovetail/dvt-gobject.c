/* dvt-gobject.c: what GLib knows of an object's signal handlers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-gobject-private.h"

#include <gio/gio.h>

/* Set once by dvt_gobject_probe(); read without a lock: until it is set,
 * every object may have handlers, which is always true. */
int dvt_gobject_handler_bit_usable;

static void
probe_handler (void)
{
}

static gboolean
bit_is_set (GObject *object)
{
  int *flags = G_STRUCT_MEMBER_P (object, DVT_GOBJECT_FLAGS_OFFSET);

  return (g_atomic_int_get (flags) & DVT_GOBJECT_FLAG_HAS_SIGNAL_HANDLER) != 0;
}

/* Connects a handler to a new object in one of GLib's three ways
 * (g_signal_connect_object() goes through g_signal_connect_closure()),
 * to GObject's "notify" and to a signal of another class (GLib may treat
 * notify handlers apart): whether the bit was clear before and set after. */
static gboolean
probe_one (int way)
{
  GObject *object;
  const char *signal;
  guint signal_id;
  gboolean ok;
  GClosure *closure;
  gulong id;

  if (way % 2 == 0)
    {
      object = g_object_new (G_TYPE_OBJECT, NULL);
      signal = "notify";
    }
  else
    {
      object = g_object_new (G_TYPE_CANCELLABLE, NULL);
      signal = "cancelled";
    }
  signal_id = g_signal_lookup (signal, G_OBJECT_TYPE (object));
  ok = signal_id != 0 && !bit_is_set (object);

  g_object_set_data (object, "dvt-probe", object);  /* qdata does not set it */
  ok = ok && !bit_is_set (object);

  switch (way / 2)
    {
    case 0:
      id = g_signal_connect (object, signal, G_CALLBACK (probe_handler), NULL);
      break;
    case 1:
      closure = g_cclosure_new (G_CALLBACK (probe_handler), NULL, NULL);
      id = g_signal_connect_closure (object, signal, closure, FALSE);
      break;
    default:
      closure = g_cclosure_new (G_CALLBACK (probe_handler), NULL, NULL);
      id = g_signal_connect_closure_by_id (object, signal_id, 0, closure, FALSE);
      break;
    }

  ok = ok && id != 0 && bit_is_set (object);
  g_signal_handler_disconnect (object, id);
  g_object_unref (object);

  return ok;
}

/* Decides, once, whether dvt_object_may_have_handlers() may trust GLib's
 * bit. Called from a class initializer, before any object it is asked
 * about exists. */
void
dvt_gobject_probe (void)
{
  static gsize done = 0;

  if (!g_once_init_enter (&done))
    return;

  if (DVT_GOBJECT_HAS_PADDING)
    {
      gboolean ok = TRUE;

      for (int way = 0; way < 6 && ok; way++)
        ok = probe_one (way);
      g_atomic_int_set (&dvt_gobject_handler_bit_usable, ok);
    }

  g_once_init_leave (&done, 1);
}
