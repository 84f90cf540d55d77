/* dvt-latch.c: one-shot latches with spin-then-park waits, and the
 * striped locks they park on where there is no futex
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-latch-private.h"
#include "dvt-pool-private.h"
#include "dvt-spin-private.h"


#define N_STRIPES 64

/* Static GMutex and GCond need no initialisation. */
static struct
{
  GMutex lock;
  GCond  cond;
} __attribute__((aligned (64))) stripes[N_STRIPES];

static inline guint
stripe_of (gconstpointer address)
{
  guintptr a = GPOINTER_TO_SIZE (address);

  return (guint) ((a >> 6) ^ (a >> 12)) % N_STRIPES;
}

/* A lock shared by every object whose address falls in the same stripe;
 * for short critical sections only. */
GMutex *
dvt_stripe_lock (gpointer address)
{
  return &stripes[stripe_of (address)].lock;
}

/* Around fork(): the parent takes every stripe before it forks and
 * releases them after; the child, whose only thread is the one that
 * forked, starts with fresh ones. */
void
dvt_stripe_locks_acquire (void)
{
  for (guint i = 0; i < N_STRIPES; i++)
    g_mutex_lock (&stripes[i].lock);
}

void
dvt_stripe_locks_release (void)
{
  for (guint i = N_STRIPES; i > 0; i--)
    g_mutex_unlock (&stripes[i - 1].lock);
}

void
dvt_stripe_locks_reset (void)
{
  for (guint i = 0; i < N_STRIPES; i++)
    {
      g_mutex_init (&stripes[i].lock);
      g_cond_init (&stripes[i].cond);
    }
}

void
dvt_latch_init (DvtLatch *latch)
{
  latch->set = 0;
  latch->n_parked = 0;
}

void
dvt_latch_clear (DvtLatch *latch)
{
  g_assert (g_atomic_int_get (&latch->n_parked) == 0);
}


/* The caller must keep the memory of @latch alive for the whole call: a
 * waiter may return (and free it) as soon as the flag is visible. */
void
dvt_latch_set (DvtLatch *latch)
{
  /* Both the store and the load are sequentially consistent: either a
   * parking waiter sees the flag, or we see it parked and wake it. */
  g_atomic_int_set (&latch->set, 1);
  if (g_atomic_int_get (&latch->n_parked) > 0)
    {
#ifdef DVT_HAVE_FUTEX
      dvt_futex_wake (&latch->set, G_MAXINT);
#else
      guint i = stripe_of (latch);

      /* Other latches of the stripe wake too and go back to sleep. */
      g_mutex_lock (&stripes[i].lock);
      g_cond_broadcast (&stripes[i].cond);
      g_mutex_unlock (&stripes[i].lock);
#endif
    }
}

/* Parks until @latch is set or the monotonic time @deadline (-1: none)
 * passes. Returns %FALSE on timeout. */
static gboolean
latch_park (DvtLatch *latch,
            gint64    deadline)
{
  gboolean timed_out = FALSE;

  g_atomic_int_inc (&latch->n_parked);
#ifdef DVT_HAVE_FUTEX
  /* The kernel sleeps only while the flag is still 0: a set that comes
   * between our look and the sleep is not missed. */
  while (!dvt_latch_is_set (latch))
    {
      if (deadline >= 0 && g_get_monotonic_time () >= deadline)
        {
          timed_out = !dvt_latch_is_set (latch);
          break;
        }
      dvt_futex_wait (&latch->set, 0, deadline);
    }
#else
  {
    guint stripe = stripe_of (latch);

    g_mutex_lock (&stripes[stripe].lock);
    while (!dvt_latch_is_set (latch))
      {
        if (deadline < 0)
          g_cond_wait (&stripes[stripe].cond, &stripes[stripe].lock);
        else if (!g_cond_wait_until (&stripes[stripe].cond, &stripes[stripe].lock, deadline) &&
                 g_get_monotonic_time () >= deadline)
          {
            timed_out = !dvt_latch_is_set (latch);
            break;
          }
      }
    g_mutex_unlock (&stripes[stripe].lock);
  }
#endif
  g_atomic_int_add (&latch->n_parked, -1);

  return !timed_out;
}

/* Waits until @latch is set or the monotonic time @deadline (-1: none)
 * passes. Returns %FALSE on timeout. A worker thread that parks here lets
 * its pool start a compensating thread, so nested waits cannot starve it. */
gboolean
dvt_latch_wait (DvtLatch *latch,
                gint64    deadline)
{
  DvtSpin spin = DVT_SPIN_INIT;
  gboolean completed;
  DvtPool *pool;

  for (;;)
    {
      if (dvt_latch_is_set (latch))
        {
          dvt_spin_done (&spin, FALSE);
          return TRUE;
        }
      if (!dvt_spin_step (&spin))
        break;
      if (deadline >= 0 && spin.now >= deadline)
        break;
    }
  dvt_spin_done (&spin, TRUE);
  if (deadline >= 0 && spin.now >= deadline)
    return dvt_latch_is_set (latch);

  pool = dvt_pool_enter_blocking ();
  completed = latch_park (latch, deadline);
  if (completed)
    dvt_spin_woken (&spin);
  dvt_pool_leave_blocking (pool);

  return completed;
}

static gboolean
on_wait_over (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Waits for @latch by iterating @context, which the caller has acquired,
 * until the monotonic time @until (-1: no limit). Whoever sets the latch
 * wakes @context. Returns whether the latch is set. */
gboolean
dvt_latch_wait_iterating (DvtLatch     *latch,
                          GMainContext *context,
                          gint64        until)
{
  gboolean over = FALSE;
  GSource *timer = NULL;

  if (until >= 0)
    {
      gint64 ms = MAX (0, (until - g_get_monotonic_time () + 999) / 1000);

      timer = g_timeout_source_new ((guint) MIN (ms, G_MAXUINT));
      g_source_set_callback (timer, on_wait_over, &over, NULL);
      g_source_attach (timer, context);
    }

  while (!dvt_latch_is_set (latch) && !over)
    g_main_context_iteration (context, TRUE);

  if (timer != NULL)
    {
      g_source_destroy (timer);
      g_source_unref (timer);
    }

  return dvt_latch_is_set (latch);
}
