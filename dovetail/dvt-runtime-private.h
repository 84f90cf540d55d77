/* dvt-runtime-private.h: the runtime object
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-core-private.h"
#include "dvt-policy-private.h"
#include "dvt-registry-private.h"
#include "dvt-runtime.h"
#include "dvt-task-private.h"

G_BEGIN_DECLS

struct _DvtRuntime
{
  GObject  parent_instance;

  DvtCore *core;
  DvtRegistryEntry *entry;
  char    *name;
  guint    max_workers;

  /* Defaults for calls whose options leave them unset. */
  DvtPolicyDefaults defaults;
  double   rate_limit;
  guint    rate_limit_burst;

  GMainContext *event_context;
  gboolean      trace;

  /* The counts last notified, and when, on the event thread. */
  guint64       notified_running;
  guint64       notified_pending;
  gint64        counts_notified_at;
  gboolean      counts_pending;   /* a notification is due on a timer */

  /* Objects built on the runtime (channels, batchers) told of its
   * shutdown: see dvt_runtime_watch_shutdown(). */
  GMutex        watch_lock;
  GSList       *shutdown_watches; /* DvtShutdownWatch, under watch_lock */
  gboolean      watches_fired;    /* under watch_lock */
};

/* An object that wants to know when its runtime is shut down: @func is
 * called once, with a strong reference to @object, on the thread that
 * calls dvt_runtime_shutdown() first, after the runtime has stopped
 * accepting work and before it cancels or waits for anything. The runtime
 * holds @object weakly. */
typedef struct _DvtShutdownWatch DvtShutdownWatch;

DvtShutdownWatch *dvt_runtime_watch_shutdown   (DvtRuntime        *self,
                                                GObject           *object,
                                                void             (*func) (GObject *object));
void              dvt_runtime_unwatch_shutdown (DvtRuntime        *self,
                                                DvtShutdownWatch  *watch);

static inline DvtCore *
dvt_runtime_get_core (DvtRuntime *runtime)
{
  return runtime->core;
}

gboolean dvt_runtime_resolve_task_policy (DvtRuntime  *self,
                                          DvtOptions  *options,
                                          DvtPolicy  **policy);
gboolean dvt_runtime_check_call   (const char    *function,
                                  DvtRuntime    *self,
                                  gconstpointer  func,
                                  DvtOptions    *options,
                                  GCancellable  *cancellable,
                                  GValue        *value,
                                  GError       **error);
gboolean dvt_runtime_check_finish (const char    *function,
                                  DvtRuntime    *self,
                                  GAsyncResult  *result,
                                  gpointer       source_tag,
                                  GValue        *value,
                                  GError       **error);
DvtTask *dvt_runtime_accept_future (DvtRuntime     *self,
                                    DvtTaskKind     kind,
                                    gpointer        func,
                                    gpointer        func_data,
                                    GDestroyNotify  func_data_destroy,
                                    gconstpointer   identity,
                                    DvtOptions     *options,
                                    GCancellable   *cancellable,
                                    GError        **error);
DvtTask *dvt_runtime_new_future   (DvtRuntime    *self,
                                   GMainContext  *wait_context,
                                   GCancellable  *cancellable,
                                   GError       **error);

G_END_DECLS
