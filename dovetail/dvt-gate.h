/* dvt-gate.h: anything that admits entrants, and three gates
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_GATE (dvt_gate_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (DvtGate, dvt_gate, DVT, GATE, GObject)

/**
 * DvtGateInterface:
 * @g_iface: the parent interface
 * @try_enter: enters if it can without waiting; may be %NULL, which
 *   never admits without a wait
 * @enter_blocking_timeout: waits, at most @timeout seconds (0 or less:
 *   as long as it takes), and enters
 * @enter_async: waits without blocking, and enters
 * @enter_finish: finishes @enter_async
 * @leave: leaves, once for each successful enter
 *
 * The virtual functions of a [iface@Gate]. An implementation's
 * @enter_async calls back on the thread-default main context of its
 * caller, never from inside the call, and a wait it admits keeps its
 * admission even if its cancellable is cancelled afterwards (so that no
 * admission is lost): see [method@Gate.enter_async].
 *
 * Since: 0.3
 */
struct _DvtGateInterface
{
  GTypeInterface g_iface;

  gboolean (*try_enter)              (DvtGate              *gate);
  gboolean (*enter_blocking_timeout) (DvtGate              *gate,
                                      double                timeout,
                                      GCancellable         *cancellable,
                                      GError              **error);
  void     (*enter_async)            (DvtGate              *gate,
                                      GCancellable         *cancellable,
                                      GAsyncReadyCallback   callback,
                                      gpointer              user_data);
  gboolean (*enter_finish)           (DvtGate              *gate,
                                      GAsyncResult         *result,
                                      GError              **error);
  void     (*leave)                  (DvtGate              *gate);

  /*< private >*/
  gpointer padding[8];
};

DVT_AVAILABLE_IN_ALL
gboolean dvt_gate_try_enter              (DvtGate              *gate);
DVT_AVAILABLE_IN_ALL
gboolean dvt_gate_enter_blocking         (DvtGate              *gate,
                                          GCancellable         *cancellable,
                                          GError              **error);
DVT_AVAILABLE_IN_ALL
gboolean dvt_gate_enter_blocking_timeout (DvtGate              *gate,
                                          double                timeout,
                                          GCancellable         *cancellable,
                                          GError              **error);
DVT_AVAILABLE_IN_ALL
void     dvt_gate_enter_async            (DvtGate              *gate,
                                          GCancellable         *cancellable,
                                          GAsyncReadyCallback   callback,
                                          gpointer              user_data);
DVT_AVAILABLE_IN_ALL
gboolean dvt_gate_enter_finish           (DvtGate              *gate,
                                          GAsyncResult         *result,
                                          GError              **error);
DVT_AVAILABLE_IN_ALL
void     dvt_gate_leave                  (DvtGate              *gate);

/* ---- DvtSemaphore ---------------------------------------------------------- */

#define DVT_TYPE_SEMAPHORE (dvt_semaphore_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtSemaphore, dvt_semaphore, DVT, SEMAPHORE, GObject)

DVT_AVAILABLE_IN_ALL
DvtSemaphore *dvt_semaphore_new                   (guint                 value) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
guint         dvt_semaphore_get_value             (DvtSemaphore         *semaphore);
DVT_AVAILABLE_IN_ALL
guint         dvt_semaphore_get_available         (DvtSemaphore         *semaphore);
DVT_AVAILABLE_IN_ALL
guint         dvt_semaphore_get_n_waiting         (DvtSemaphore         *semaphore);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_semaphore_enter_with_priority_blocking (DvtSemaphore  *semaphore,
                                                          int            priority,
                                                          double         timeout,
                                                          GCancellable  *cancellable,
                                                          GError       **error);
DVT_AVAILABLE_IN_ALL
void          dvt_semaphore_enter_with_priority_async    (DvtSemaphore        *semaphore,
                                                          int                  priority,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean      dvt_semaphore_enter_with_priority_finish   (DvtSemaphore        *semaphore,
                                                          GAsyncResult        *result,
                                                          GError             **error);

/* ---- DvtRateLimiter -------------------------------------------------------- */

#define DVT_TYPE_RATE_LIMITER (dvt_rate_limiter_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtRateLimiter, dvt_rate_limiter, DVT, RATE_LIMITER, GObject)

DVT_AVAILABLE_IN_ALL
DvtRateLimiter *dvt_rate_limiter_new         (guint            limit,
                                              double           period,
                                              GError         **error) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
guint           dvt_rate_limiter_get_limit     (DvtRateLimiter *limiter);
DVT_AVAILABLE_IN_ALL
double          dvt_rate_limiter_get_period    (DvtRateLimiter *limiter);
DVT_AVAILABLE_IN_ALL
guint           dvt_rate_limiter_get_n_waiting (DvtRateLimiter *limiter);

/* ---- DvtLockout ------------------------------------------------------------ */

#define DVT_TYPE_LOCKOUT (dvt_lockout_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtLockout, dvt_lockout, DVT, LOCKOUT, GObject)

DVT_AVAILABLE_IN_ALL
DvtLockout *dvt_lockout_new           (gboolean      fifo) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
gboolean    dvt_lockout_get_fifo      (DvtLockout   *lockout);
DVT_AVAILABLE_IN_ALL
gboolean    dvt_lockout_lock_for      (DvtLockout   *lockout,
                                       double        seconds,
                                       GError      **error);
DVT_AVAILABLE_IN_ALL
double      dvt_lockout_get_remaining (DvtLockout   *lockout);
DVT_AVAILABLE_IN_ALL
guint       dvt_lockout_get_n_waiting (DvtLockout   *lockout);

G_END_DECLS
