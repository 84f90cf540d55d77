/* dvt-wait.c: one-shot events with spin-then-park waits
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <sched.h>

#include "dvt-wait-private.h"
#include "dvt-pool-private.h"

#ifdef DVT_HAVE_FUTEX
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* ---- spinning ---------------------------------------------------------- */

/* A spin is worth it only while the thread that will end it runs on
 * another CPU. When the machine is oversubscribed, the partner may be
 * waiting for this very CPU, and every microsecond spent spinning delays
 * it. So a spin first spins on the CPU for at most pure_spin_usec, then
 * yields it at each step (sched_yield() returns at once when nothing else
 * wants the CPU), and parks once DVT_SPIN_USEC have passed.
 *
 * pure_spin_usec adapts per thread: a yield that took long means another
 * thread ran meanwhile, so the CPU is contended, and a spin that ends in a
 * park found nothing worth spinning for: both halve it. A spin that ends
 * without either grows it to twice the wait it covered, so on a quiet
 * machine hand-offs are caught while spinning, as before. */
#define DVT_PURE_SPIN_MAX_USEC DVT_SPIN_USEC
#define DVT_YIELD_SLOW_USEC    3

static _Thread_local gint64 pure_spin_usec = DVT_PURE_SPIN_MAX_USEC;

/* Looks at the clock: FALSE once the spin has lasted DVT_SPIN_USEC. Past
 * this thread's pure spin, yields the CPU first. */
gboolean
dvt_spin_check (DvtSpin *spin)
{
  gint64 now = g_get_monotonic_time ();

  if (spin->start == 0)
    spin->start = now;
  spin->now = now;

  if (now - spin->start >= DVT_SPIN_USEC)
    return FALSE;

  if (now - spin->start >= pure_spin_usec)
    {
      sched_yield ();
      spin->now = g_get_monotonic_time ();
      if (spin->now - now >= DVT_YIELD_SLOW_USEC)
        spin->contended = TRUE;
    }

  return TRUE;
}

/* Called when a spin is over: @parked tells that it ran out. */
void
dvt_spin_done (DvtSpin  *spin,
               gboolean  parked)
{
  gint64 waited = spin->now > 0 ? spin->now - spin->start : 0;

  if (parked || spin->contended)
    pure_spin_usec /= 2;
  else
    pure_spin_usec = CLAMP (2 * waited, pure_spin_usec, DVT_PURE_SPIN_MAX_USEC);
}

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
dvt_event_lock (gpointer address)
{
  return &stripes[stripe_of (address)].lock;
}

/* Around fork(): the parent takes every stripe before it forks and
 * releases them after; the child, whose only thread is the one that
 * forked, starts with fresh ones. */
void
dvt_event_locks_acquire (void)
{
  for (guint i = 0; i < N_STRIPES; i++)
    g_mutex_lock (&stripes[i].lock);
}

void
dvt_event_locks_release (void)
{
  for (guint i = N_STRIPES; i > 0; i--)
    g_mutex_unlock (&stripes[i - 1].lock);
}

void
dvt_event_locks_reset (void)
{
  for (guint i = 0; i < N_STRIPES; i++)
    {
      g_mutex_init (&stripes[i].lock);
      g_cond_init (&stripes[i].cond);
    }
}

void
dvt_event_init (DvtEvent *event)
{
  event->set = 0;
  event->n_parked = 0;
}

void
dvt_event_clear (DvtEvent *event)
{
  g_assert (g_atomic_int_get (&event->n_parked) == 0);
}

#ifdef DVT_HAVE_FUTEX
/* Sleeps while *@word is @expected, until the monotonic time @deadline
 * (-1: none). Returns early on a wake-up, a signal or a spurious wake:
 * callers look again at what they wait for. */
void
dvt_futex_wait (int    *word,
                int     expected,
                gint64  deadline)
{
  if (deadline < 0)
    syscall (SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
  else
    {
      /* An absolute CLOCK_MONOTONIC time, the clock of g_get_monotonic_time(). */
      struct timespec ts = { deadline / G_USEC_PER_SEC, (deadline % G_USEC_PER_SEC) * 1000 };

      syscall (SYS_futex, word, FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, NULL,
               FUTEX_BITSET_MATCH_ANY);
    }
}

/* Wakes up to @n_threads threads sleeping on @word. */
void
dvt_futex_wake (int *word,
                int  n_threads)
{
  syscall (SYS_futex, word, FUTEX_WAKE_PRIVATE, n_threads, NULL, NULL, 0);
}
#endif

/* The caller must keep the memory of @event alive for the whole call: a
 * waiter may return (and free it) as soon as the flag is visible. */
void
dvt_event_set (DvtEvent *event)
{
  /* Both the store and the load are sequentially consistent: either a
   * parking waiter sees the flag, or we see it parked and wake it. */
  g_atomic_int_set (&event->set, 1);
  if (g_atomic_int_get (&event->n_parked) > 0)
    {
#ifdef DVT_HAVE_FUTEX
      dvt_futex_wake (&event->set, G_MAXINT);
#else
      guint i = stripe_of (event);

      /* Other events of the stripe wake too and go back to sleep. */
      g_mutex_lock (&stripes[i].lock);
      g_cond_broadcast (&stripes[i].cond);
      g_mutex_unlock (&stripes[i].lock);
#endif
    }
}

/* Parks until @event is set or the monotonic time @deadline (-1: none)
 * passes. Returns %FALSE on timeout. */
static gboolean
event_park (DvtEvent *event,
            gint64    deadline)
{
  gboolean timed_out = FALSE;

  g_atomic_int_inc (&event->n_parked);
#ifdef DVT_HAVE_FUTEX
  /* The kernel sleeps only while the flag is still 0: a set that comes
   * between our look and the sleep is not missed. */
  while (!dvt_event_is_set (event))
    {
      if (deadline >= 0 && g_get_monotonic_time () >= deadline)
        {
          timed_out = !dvt_event_is_set (event);
          break;
        }
      dvt_futex_wait (&event->set, 0, deadline);
    }
#else
  {
    guint stripe = stripe_of (event);

    g_mutex_lock (&stripes[stripe].lock);
    while (!dvt_event_is_set (event))
      {
        if (deadline < 0)
          g_cond_wait (&stripes[stripe].cond, &stripes[stripe].lock);
        else if (!g_cond_wait_until (&stripes[stripe].cond, &stripes[stripe].lock, deadline) &&
                 g_get_monotonic_time () >= deadline)
          {
            timed_out = !dvt_event_is_set (event);
            break;
          }
      }
    g_mutex_unlock (&stripes[stripe].lock);
  }
#endif
  g_atomic_int_add (&event->n_parked, -1);

  return !timed_out;
}

/* Waits until @event is set or the monotonic time @deadline (-1: none)
 * passes. Returns %FALSE on timeout. A worker thread that parks here lets
 * its pool start a compensating thread, so nested waits cannot starve it. */
gboolean
dvt_event_wait (DvtEvent *event,
                gint64    deadline)
{
  DvtSpin spin = DVT_SPIN_INIT;
  gboolean completed;
  DvtPool *pool;

  for (;;)
    {
      if (dvt_event_is_set (event))
        {
          dvt_spin_done (&spin, FALSE);
          return TRUE;
        }
      if (!dvt_spin_step (&spin))
        break;
      if (deadline >= 0 && spin.now >= deadline)
        {
          dvt_spin_done (&spin, TRUE);
          return dvt_event_is_set (event);
        }
    }
  dvt_spin_done (&spin, TRUE);

  pool = dvt_pool_enter_blocking ();
  completed = event_park (event, deadline);
  dvt_pool_leave_blocking (pool);

  return completed;
}

static gboolean
on_wait_over (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Waits for @event by iterating @context, which the caller has acquired,
 * until the monotonic time @until (-1: no limit). Whoever sets the event
 * wakes @context. Returns whether the event is set. */
gboolean
dvt_event_wait_iterating (DvtEvent     *event,
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

  while (!dvt_event_is_set (event) && !over)
    g_main_context_iteration (context, TRUE);

  if (timer != NULL)
    {
      g_source_destroy (timer);
      g_source_unref (timer);
    }

  return dvt_event_is_set (event);
}
