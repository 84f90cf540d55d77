/* dvt-registry-private.h: the registry of runtimes, exit, signals and fork
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* The registry knows runtimes as GObjects: it shuts them down, asks
 * whether they are, and makes the default one through the functions the
 * runtime's class gives it. */
typedef struct
{
  void      (*shutdown)       (gpointer runtime,
                               gboolean wait,
                               gboolean cancel_pending);
  gboolean  (*is_shutdown)    (gpointer runtime);
  GObject  *(*create_default) (void);
} DvtRegistryClass;

/* The application's shutdown hook (DvtShutdownHook). */
typedef void (*DvtRegistryHook) (gpointer user_data);

/* One per runtime, made in its instance init: it holds the registry's
 * properties of the runtime and, once constructed, its place in the
 * registry. */
typedef struct _DvtRegistryEntry DvtRegistryEntry;

void              dvt_registry_set_class            (const DvtRegistryClass *klass);
DvtRegistryEntry *dvt_registry_entry_new            (void);
gboolean          dvt_registry_get_auto_register    (DvtRegistryEntry  *entry);
void              dvt_registry_set_auto_register    (DvtRegistryEntry  *entry,
                                                     gboolean           auto_register);
gboolean          dvt_registry_get_shutdown_on_exit (DvtRegistryEntry  *entry);
gboolean          dvt_registry_set_shutdown_on_exit (DvtRegistryEntry  *entry,
                                                     gboolean           shutdown_on_exit);
void              dvt_registry_add                  (DvtRegistryEntry  *entry,
                                                     GObject           *runtime);
gboolean          dvt_registry_is_inherited         (DvtRegistryEntry  *entry);
void              dvt_registry_note_shutdown        (DvtRegistryEntry  *entry);
gboolean          dvt_registry_remove               (DvtRegistryEntry **entry,
                                                     gpointer           runtime,
                                                     const char        *name,
                                                     gpointer           leak);
GPtrArray        *dvt_registry_snapshot             (gboolean           armed_only);
void              dvt_registry_set_hook             (DvtRegistryHook    hook,
                                                     gpointer           user_data,
                                                     GDestroyNotify     destroy);
GObject          *dvt_registry_get_default          (void);
gboolean          dvt_registry_default_is_alive     (void);
void              dvt_registry_run_exit_handler     (void);

G_END_DECLS
