/* dvt-latch-private.h: one-shot latches with spin-then-park waits, and the
 * striped locks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A one-shot latch: two words. On Linux a thread that parks waits on the
 * flag itself (a futex); elsewhere on one of a fixed set of shared
 * mutex/condition pairs chosen by the latch's address. Either way a
 * latch costs no lock of its own. */
typedef struct
{
  int set;      /* atomic */
  int n_parked; /* atomic */
} DvtLatch;

void     dvt_latch_init  (DvtLatch *latch);
void     dvt_latch_clear (DvtLatch *latch);
void     dvt_latch_set   (DvtLatch *latch);
gboolean dvt_latch_wait_iterating (DvtLatch     *latch,
                                   GMainContext *context,
                                   gint64        until);
gboolean dvt_latch_wait  (DvtLatch *latch,
                          gint64    deadline);
GMutex  *dvt_stripe_lock  (gpointer  address);

void     dvt_stripe_locks_acquire (void);
void     dvt_stripe_locks_release (void);
void     dvt_stripe_locks_reset   (void);

static inline gboolean
dvt_latch_is_set (DvtLatch *latch)
{
  return g_atomic_int_get (&latch->set) != 0;
}

G_END_DECLS

