/* test-gates.c: DvtGate, DvtSemaphore, DvtRateLimiter, DvtLockout, and
 * gates on the tasks of a runtime
 *
 * Built with the static library: the rate limiter's window is checked from
 * the admission times the limiter itself records (see
 * dvt_rate_limiter_set_admission_log()), since a time taken by the test
 * after an entry returns can be late by a preemption.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <math.h>
#include <string.h>

#include "dvt-test-util.h"
#include "dvt-gate-core-private.h"
#include "dvt-rate-limiter-private.h"
#include "dvt-semaphore-private.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Dovetail's own g_critical() calls are structured log messages, which
 * GLib 2.74's g_test_expect_message() does not see: this writer counts
 * the criticals of a leave too many, and hands every other message to
 * GLib's writer (where G_DEBUG=fatal-warnings makes it abort the test). */
static int n_extra_leaves;  /* atomic */

static GLogWriterOutput
test_log_writer (GLogLevelFlags   level,
                 const GLogField *fields,
                 gsize            n_fields,
                 gpointer         user_data)
{
  const char *domain = NULL;
  const char *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
    }

  if ((level & G_LOG_LEVEL_CRITICAL) && g_strcmp0 (domain, "Dovetail") == 0 &&
      message != NULL && strstr (message, "left more times than it was entered") != NULL)
    {
      g_atomic_int_inc (&n_extra_leaves);
      return G_LOG_WRITER_HANDLED;
    }

  return g_log_writer_default (level, fields, n_fields, user_data);
}

#define EXPECT_EXTRA_LEAVE(stmt)                                             \
  G_STMT_START {                                                             \
    int _before = g_atomic_int_get (&n_extra_leaves);                        \
    stmt;                                                                    \
    g_assert_cmpint (g_atomic_int_get (&n_extra_leaves), ==, _before + 1);   \
  } G_STMT_END

typedef struct
{
  int       n;
  gboolean  entered;
  GError   *error;
} Entry;

static void
on_entered (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Entry *entry = user_data;

  entry->entered = dvt_gate_enter_finish (DVT_GATE (source), result, &entry->error);
  entry->n++;
}

/* ---- the semaphore --------------------------------------------------------------- */

static void
test_semaphore_basic (void)
{
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (2);
  DvtGate *gate = DVT_GATE (sem);
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (dvt_semaphore_get_value (sem), ==, 2);
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 2);
  g_assert_true (dvt_gate_try_enter (gate));
  g_assert_true (dvt_gate_enter_blocking (gate, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 0);
  g_assert_false (dvt_gate_try_enter (gate));

  /* A timeout, then a cancellation already set. */
  g_assert_false (dvt_gate_enter_blocking_timeout (gate, 0.02, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_cancellable_cancel (cancellable);
    g_assert_false (dvt_gate_enter_blocking (gate, cancellable, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }
  g_assert_cmpuint (dvt_semaphore_get_n_waiting (sem), ==, 0);

  dvt_gate_leave (gate);
  dvt_gate_leave (gate);
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 2);

  /* Leaving more times than entered: a critical, no permit gained. */
  EXPECT_EXTRA_LEAVE (dvt_gate_leave (gate));
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 2);
}

static gpointer
cancel_after (gpointer data)
{
  g_usleep (20000);
  g_cancellable_cancel (data);
  return NULL;
}

static void
test_semaphore_cancel_blocking (void)
{
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GThread *thread;

  g_assert_true (dvt_gate_try_enter (DVT_GATE (sem)));
  thread = g_thread_new ("cancel", cancel_after, cancellable);
  g_assert_false (dvt_gate_enter_blocking (DVT_GATE (sem), cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_thread_join (thread);
  g_assert_cmpuint (dvt_semaphore_get_n_waiting (sem), ==, 0);
  dvt_gate_leave (DVT_GATE (sem));
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 1);
}

static void
test_semaphore_async (void)
{
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  Entry a = { 0 }, b = { 0 };
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();

  /* Admitted at once: the callback still comes from the loop. */
  dvt_gate_enter_async (DVT_GATE (sem), NULL, on_entered, &a);
  g_assert_cmpint (a.n, ==, 0);
  g_assert_true (ITERATE_UNTIL (NULL, a.n == 1, 10));
  g_assert_true (a.entered);

  /* Waits, then is cancelled. */
  dvt_gate_enter_async (DVT_GATE (sem), cancellable, on_entered, &b);
  g_assert_true (ITERATE_UNTIL (NULL, dvt_semaphore_get_n_waiting (sem) == 1, 10));
  g_cancellable_cancel (cancellable);
  g_assert_true (ITERATE_UNTIL (NULL, b.n == 1, 10));
  g_assert_false (b.entered);
  g_assert_error (b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&b.error);

  dvt_gate_leave (DVT_GATE (sem));
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 1);
  g_assert_cmpuint (dvt_semaphore_get_n_waiting (sem), ==, 0);
}

/* A chain of async enters, each made from the callback of the one before
 * (which left first): every callback runs after its call returned, and a
 * result kept beyond its callback is finished later, still that call's. A
 * semaphore dropped by its caller while a wait is pending lives until the
 * wait's callback has run. */
typedef struct
{
  DvtSemaphore *sem;
  guint         n;
  guint         got;
  gboolean      in_call;
  GPtrArray    *kept;
} GateChain;

static void
on_gate_chain (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GateChain *c = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_false (c->in_call);
  g_assert_true (source == G_OBJECT (c->sem));
  g_assert_true (g_async_result_get_user_data (result) == c);
  if (++c->got % 4 == 0)
    g_ptr_array_add (c->kept, g_object_ref (result));
  else
    {
      g_assert_true (dvt_gate_enter_finish (DVT_GATE (source), result, &error));
      g_assert_no_error (error);
      dvt_gate_leave (DVT_GATE (source));
    }

  if (c->got < c->n && c->got % 4 != 0)
    {
      c->in_call = TRUE;
      dvt_gate_enter_async (DVT_GATE (c->sem), NULL, on_gate_chain, c);
      c->in_call = FALSE;
    }
}

static void
test_semaphore_async_chain (void)
{
  DvtSemaphore *sem = dvt_semaphore_new (1);
  GateChain c = { sem, 200, 0, FALSE, g_ptr_array_new_with_free_func (g_object_unref) };
  g_autoptr(GError) error = NULL;
  GWeakRef weak;
  Entry e = { 0 };

  /* Every fourth result is kept, holding its permit until finished. */
  while (c.got < c.n)
    {
      guint kept = c.kept->len;

      c.in_call = TRUE;
      dvt_gate_enter_async (DVT_GATE (sem), NULL, on_gate_chain, &c);
      c.in_call = FALSE;
      g_assert_true (ITERATE_UNTIL (NULL, c.kept->len > kept || c.got == c.n, 10));
      g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, c.kept->len > kept ? 0 : 1);
      if (c.kept->len > kept)
        {
          g_assert_true (dvt_gate_enter_finish (DVT_GATE (sem),
                                                g_ptr_array_index (c.kept, kept), &error));
          g_assert_no_error (error);
          dvt_gate_leave (DVT_GATE (sem));
        }
    }
  g_assert_cmpuint (c.kept->len, ==, c.n / 4);
  g_ptr_array_unref (c.kept);

  /* Dropped while a wait is pending. */
  g_weak_ref_init (&weak, sem);
  g_assert_true (dvt_gate_enter_blocking (DVT_GATE (sem), NULL, &error));
  dvt_gate_enter_async (DVT_GATE (sem), NULL, on_entered, &e);
  g_assert_true (ITERATE_UNTIL (NULL, dvt_semaphore_get_n_waiting (sem) == 1, 10));
  dvt_gate_leave (DVT_GATE (sem));
  g_object_unref (sem);
  g_assert_true (ITERATE_UNTIL (NULL, e.n == 1, 10));
  g_assert_true (e.entered);
  {
    g_autoptr(DvtSemaphore) alive = g_weak_ref_get (&weak);

    /* The result went with its callback; it held the last reference. */
    g_assert_null (alive);
  }
  g_weak_ref_clear (&weak);
}

/* Priority order among waiters present at the same time: one permit,
 * held; blocking threads and async waiters join one at a time with random
 * priorities; then each admitted entrant logs its priority and leaves. */
typedef struct
{
  DvtSemaphore *sem;
  int           priority;
  guint         order;      /* when it joined */
  GMutex       *lock;
  GArray       *log;        /* (priority, order) pairs */
} PriorityWaiter;

static void
log_admission (PriorityWaiter *w)
{
  g_mutex_lock (w->lock);
  g_array_append_val (w->log, w->priority);
  g_array_append_val (w->log, w->order);
  g_mutex_unlock (w->lock);
  dvt_gate_leave (DVT_GATE (w->sem));
}

static gpointer
priority_thread (gpointer data)
{
  PriorityWaiter *w = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_semaphore_enter_with_priority_blocking (w->sem, w->priority, 0,
                                                             NULL, &error));
  log_admission (w);
  return NULL;
}

static void
on_priority_entered (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  PriorityWaiter *w = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_gate_enter_finish (DVT_GATE (source), result, &error));
  log_admission (w);
}

static guint
locked_len (GMutex *lock,
            GArray *array)
{
  guint len;

  g_mutex_lock (lock);
  len = array->len;
  g_mutex_unlock (lock);

  return len;
}

static void
test_semaphore_priority (void)
{
  for (guint round = 0; round < 5; round++)
    {
      g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
      GMutex lock;
      g_autoptr(GArray) log = g_array_new (FALSE, FALSE, sizeof (int));
      PriorityWaiter waiters[16];
      GThread *threads[16] = { NULL };
      guint n = G_N_ELEMENTS (waiters);

      g_mutex_init (&lock);
      g_assert_true (dvt_gate_try_enter (DVT_GATE (sem)));
      for (guint i = 0; i < n; i++)
        {
          PriorityWaiter *w = &waiters[i];

          w->sem = sem;
          w->priority = g_test_rand_int_range (-2, 3);
          w->order = i;
          w->lock = &lock;
          w->log = log;
          if (i % 2 == 0)
            threads[i] = g_thread_new ("waiter", priority_thread, w);
          else
            dvt_semaphore_enter_with_priority_async (sem, w->priority, NULL,
                                                     on_priority_entered, w);
          g_assert_true (POLL_UNTIL (dvt_semaphore_get_n_waiting (sem) == i + 1, 30));
        }

      dvt_gate_leave (DVT_GATE (sem));
      g_assert_true (ITERATE_UNTIL (NULL, locked_len (&lock, log) == 2 * n, 30));
      for (guint i = 0; i < n; i++)
        if (threads[i] != NULL)
          g_thread_join (threads[i]);

      for (guint i = 1; i < n; i++)
        {
          int p0 = g_array_index (log, int, 2 * (i - 1));
          int o0 = g_array_index (log, int, 2 * (i - 1) + 1);
          int p1 = g_array_index (log, int, 2 * i);
          int o1 = g_array_index (log, int, 2 * i + 1);

          g_assert_true (p0 < p1 || (p0 == p1 && o0 < o1));
        }
      g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 1);
      g_mutex_clear (&lock);
    }
}

/* A waiter cancelled at the instant it is admitted: either it enters (and
 * leaves), or the permit stays free. Never lost, never doubled. */
typedef struct
{
  DvtSemaphore *sem;
  GCancellable *cancellable;
  Gate          go;
} Race;

static gpointer
race_leave (gpointer data)
{
  Race *race = data;

  gate_wait (&race->go);
  dvt_gate_leave (DVT_GATE (race->sem));
  return NULL;
}

static gpointer
race_cancel (gpointer data)
{
  Race *race = data;

  gate_wait (&race->go);
  g_cancellable_cancel (race->cancellable);
  return NULL;
}

static void
test_semaphore_cancel_race (void)
{
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  guint n_rounds = is_valgrind () ? 200 : 2000;
  guint n_entered = 0;

  for (guint i = 0; i < n_rounds; i++)
    {
      Race race = { .sem = sem, .cancellable = g_cancellable_new () };
      Entry entry = { 0 };
      GThread *leaver, *canceller;

      gate_init (&race.go);
      g_assert_true (dvt_gate_try_enter (DVT_GATE (sem)));
      dvt_gate_enter_async (DVT_GATE (sem), race.cancellable, on_entered, &entry);
      leaver = g_thread_new ("leave", race_leave, &race);
      canceller = g_thread_new ("cancel", race_cancel, &race);
      gate_open (&race.go);
      g_thread_join (leaver);
      g_thread_join (canceller);
      g_assert_true (ITERATE_UNTIL (NULL, entry.n == 1, 30));

      if (entry.entered)
        {
          n_entered++;
          g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 0);
          dvt_gate_leave (DVT_GATE (sem));
        }
      else
        g_assert_error (entry.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&entry.error);
      g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 1);
      g_assert_cmpuint (dvt_semaphore_get_n_waiting (sem), ==, 0);
      g_object_unref (race.cancellable);
      gate_clear (&race.go);
    }
  g_test_message ("%u of %u waiters entered before their cancellation", n_entered, n_rounds);
}

/* The acceptance stress: 8 threads and an async loop contend for a
 * 3-permit semaphore with random priorities and cancellations. */
typedef struct
{
  DvtSemaphore *sem;
  int           from_list;     /* under the semaphore's lock: admitted waiters */
  int           out_of_order;  /* same: admitted before a waiter that came first */
  int           inside;        /* atomic */
  int           max_inside;    /* atomic */
  int           remaining;     /* atomic: acquisitions still to make */
  int           acquired;      /* atomic */
  int           cancelled;     /* atomic */
  int           async_pending; /* the loop's, on the main thread */
} Stress;

static void
stress_inside (Stress *s)
{
  int now = g_atomic_int_add (&s->inside, 1) + 1;
  int max = g_atomic_int_get (&s->max_inside);

  while (now > max && !g_atomic_int_compare_and_exchange_full (&s->max_inside, max, now, &max))
    ;
  g_assert_cmpint (now, <=, 3);
  /* Stay a moment now and then, so that the others queue up. */
  if (g_random_int_range (0, 64) == 0)
    g_thread_yield ();
  g_atomic_int_inc (&s->acquired);
  g_atomic_int_add (&s->inside, -1);
  dvt_gate_leave (DVT_GATE (s->sem));
}

static gpointer
stress_thread (gpointer data)
{
  Stress *s = data;
  GCancellable *cancelled = g_cancellable_new ();

  /* Some waits come cancelled already, some time out. */
  g_cancellable_cancel (cancelled);
  while (g_atomic_int_add (&s->remaining, -1) > 0)
    {
      g_autoptr(GError) error = NULL;
      int priority = g_random_int_range (0, 4);
      GCancellable *cancellable = g_random_int_range (0, 32) == 0 ? cancelled : NULL;
      double timeout = g_random_int_range (0, 16) == 0 ? 1e-4 : 0;

      if (dvt_semaphore_enter_with_priority_blocking (s->sem, priority, timeout,
                                                      cancellable, &error))
        stress_inside (s);
      else
        {
          g_assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
          g_atomic_int_inc (&s->cancelled);
        }
    }
  g_object_unref (cancelled);
  return NULL;
}

typedef struct
{
  Stress       *s;
  GCancellable *cancellable;
} StressOp;

static void stress_async_start (Stress *s);

static void
on_stress_entered (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  StressOp *op = user_data;
  Stress *s = op->s;
  g_autoptr(GError) error = NULL;

  if (dvt_gate_enter_finish (DVT_GATE (source), result, &error))
    stress_inside (s);
  else
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_atomic_int_inc (&s->cancelled);
    }
  g_clear_object (&op->cancellable);
  g_free (op);
  s->async_pending--;
  stress_async_start (s);
}

static gboolean
cancel_idle (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
stress_async_start (Stress *s)
{
  StressOp *op;

  if (g_atomic_int_add (&s->remaining, -1) <= 0)
    return;

  op = g_new0 (StressOp, 1);
  op->s = s;
  op->cancellable = g_cancellable_new ();
  s->async_pending++;
  dvt_semaphore_enter_with_priority_async (s->sem, g_random_int_range (0, 4), op->cancellable,
                                           on_stress_entered, op);
  /* Some are cancelled from the loop a moment later, admitted or not. */
  if (g_random_int_range (0, 8) == 0)
    g_idle_add_full (G_PRIORITY_DEFAULT, cancel_idle, g_object_ref (op->cancellable),
                     g_object_unref);
}

/* Called by the semaphore, under its lock, for each waiter it admits:
 * priority order among the waiters present at that instant. */
static void
on_admitted (gboolean in_order,
             gpointer data)
{
  Stress *s = data;

  s->from_list++;
  if (!in_order)
    s->out_of_order++;
}

static void
test_semaphore_stress (void)
{
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (3);
  Stress s = { .sem = sem, .remaining = is_valgrind () ? 5000 : 200000 };
  int total = s.remaining;
  GThread *threads[8];

  dvt_semaphore_set_order_hook (sem, on_admitted, &s);

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("stress", stress_thread, &s);
  for (guint i = 0; i < 4; i++)
    stress_async_start (&s);
  g_assert_true (ITERATE_UNTIL (NULL, g_atomic_int_get (&s.remaining) <= 0 &&
                                      s.async_pending == 0, 600));
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  dvt_semaphore_set_order_hook (sem, NULL, NULL);
  g_assert_cmpint (s.acquired + s.cancelled, ==, total);
  g_assert_cmpint (s.max_inside, <=, 3);
  g_assert_cmpint (s.out_of_order, ==, 0);
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 3);
  g_assert_cmpuint (dvt_semaphore_get_n_waiting (sem), ==, 0);
  g_test_message ("%d acquisitions (%d of them waiters, all in priority order), "
                  "%d cancelled or timed out, at most %d inside",
                  s.acquired, s.from_list, s.cancelled, s.max_inside);
}

/* ---- the rate limiter ----------------------------------------------------------- */

static void
test_limiter_bad_args (void)
{
  const struct { guint limit; double period; } bad[] = {
    { 0, 1 }, { 1, 0 }, { 1, -1 }, { 1, NAN }, { 1, INFINITY }, { 1, -INFINITY },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      DvtRateLimiter *limiter = dvt_rate_limiter_new (bad[i].limit, bad[i].period, &error);

      g_assert_null (limiter);
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
    }
}

typedef struct
{
  DvtRateLimiter *limiter;
  int             remaining;   /* atomic */
  int             async_pending;
} LimiterRun;

static gpointer
limiter_thread (gpointer data)
{
  LimiterRun *run = data;

  while (g_atomic_int_add (&run->remaining, -1) > 0)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (dvt_gate_enter_blocking (DVT_GATE (run->limiter), NULL, &error));
      dvt_gate_leave (DVT_GATE (run->limiter));
    }
  return NULL;
}

static void limiter_async_start (LimiterRun *run);

static void
on_limiter_entered (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  LimiterRun *run = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_gate_enter_finish (DVT_GATE (source), result, &error));
  dvt_gate_leave (DVT_GATE (source));
  run->async_pending--;
  limiter_async_start (run);
}

static void
limiter_async_start (LimiterRun *run)
{
  if (g_atomic_int_add (&run->remaining, -1) <= 0)
    return;
  run->async_pending++;
  dvt_gate_enter_async (DVT_GATE (run->limiter), NULL, on_limiter_entered, run);
}

/* Every window of @period_us holds at most @limit admissions. */
static void
check_windows (GArray *log,
               guint   limit,
               gint64  period_us)
{
  g_assert_cmpuint (log->len, >, limit);
  for (guint i = 0; i + limit < log->len; i++)
    {
      gint64 first = g_array_index (log, gint64, i);
      gint64 next = g_array_index (log, gint64, i + limit);

      g_assert_cmpint (next - first, >=, period_us);
    }
}

/* 4 threads and an async loop share a limiter of 10 per 0.5 s for about
 * 5 s (1.5 s under valgrind); every window is checked from the admission
 * times the limiter recorded. */
static void
test_limiter_window (void)
{
  g_autoptr(GError) error = NULL;
  guint limit = 10;
  double period = 0.5;
  g_autoptr(DvtRateLimiter) limiter = dvt_rate_limiter_new (limit, period, &error);
  g_autoptr(GArray) log = g_array_new (FALSE, FALSE, sizeof (gint64));
  LimiterRun run = { limiter, is_valgrind () ? 30 : 100, 0 };
  GThread *threads[4];

  g_assert_no_error (error);
  dvt_rate_limiter_set_admission_log (limiter, log);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("limiter", limiter_thread, &run);
  for (guint i = 0; i < 3; i++)
    limiter_async_start (&run);
  g_assert_true (ITERATE_UNTIL (NULL, g_atomic_int_get (&run.remaining) <= 0 &&
                                      run.async_pending == 0, 120));
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  dvt_rate_limiter_set_admission_log (limiter, NULL);
  check_windows (log, limit, (gint64) (period * G_USEC_PER_SEC));
  g_assert_cmpuint (dvt_rate_limiter_get_n_waiting (limiter), ==, 0);
}

/* Caller N + 1 is admitted once the window slides. */
static void
test_limiter_slides (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtRateLimiter) limiter = dvt_rate_limiter_new (2, 0.1, &error);
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < 2; i++)
    {
      g_assert_true (dvt_gate_try_enter (DVT_GATE (limiter)));
      dvt_gate_leave (DVT_GATE (limiter));
    }
  g_assert_false (dvt_gate_try_enter (DVT_GATE (limiter)));
  g_assert_true (dvt_gate_enter_blocking (DVT_GATE (limiter), NULL, &error));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 100000);
  dvt_gate_leave (DVT_GATE (limiter));

  /* Leaving more times than entered: a critical. */
  EXPECT_EXTRA_LEAVE (dvt_gate_leave (DVT_GATE (limiter)));
}

/* A thread waiting behind an async waiter whose context nobody iterates
 * yet is not held up by that context: the clock admits both. */
static void
test_limiter_async_head_idle_context (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtRateLimiter) limiter = dvt_rate_limiter_new (1, 0.05, &error);
  g_autoptr(GMainContext) context = g_main_context_new ();
  Entry entry = { 0 };

  g_assert_true (dvt_gate_try_enter (DVT_GATE (limiter)));
  dvt_gate_leave (DVT_GATE (limiter));
  g_main_context_push_thread_default (context);
  dvt_gate_enter_async (DVT_GATE (limiter), NULL, on_entered, &entry);
  g_main_context_pop_thread_default (context);

  g_assert_true (dvt_gate_enter_blocking (DVT_GATE (limiter), NULL, &error));
  dvt_gate_leave (DVT_GATE (limiter));
  g_assert_cmpint (entry.n, ==, 0);
  g_assert_true (ITERATE_UNTIL (context, entry.n == 1, 30));
  g_assert_true (entry.entered);
  dvt_gate_leave (DVT_GATE (limiter));
  g_assert_cmpuint (dvt_rate_limiter_get_n_waiting (limiter), ==, 0);
}

/* ---- the lockout ------------------------------------------------------------------ */

static void
test_lockout_basic (void)
{
  g_autoptr(DvtLockout) lockout = dvt_lockout_new (FALSE);
  DvtGate *gate = DVT_GATE (lockout);
  g_autoptr(GError) error = NULL;
  const double bad[] = { -1, -1e-9, NAN, INFINITY, -INFINITY, 1e12 };
  gint64 start;

  g_assert_true (dvt_gate_try_enter (gate));   /* inside, unaffected below */
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_false (dvt_lockout_lock_for (lockout, bad[i], &error));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }
  g_assert_cmpfloat (dvt_lockout_get_remaining (lockout), ==, 0);

  start = g_get_monotonic_time ();
  g_assert_true (dvt_lockout_lock_for (lockout, 0.15, &error));
  g_assert_true (dvt_lockout_lock_for (lockout, 0.01, &error));   /* the latest counts */
  g_assert_cmpfloat (dvt_lockout_get_remaining (lockout), >, 0);
  g_assert_false (dvt_gate_try_enter (gate));
  g_assert_true (dvt_gate_enter_blocking (gate, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 150000);
  dvt_gate_leave (gate);
  dvt_gate_leave (gate);

  EXPECT_EXTRA_LEAVE (dvt_gate_leave (gate));
}

typedef struct
{
  GArray *order;
  guint   index;
} FifoEntry;

static void
on_fifo_entered (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  FifoEntry *entry = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_gate_enter_finish (DVT_GATE (source), result, &error));
  g_array_append_val (entry->order, entry->index);
  dvt_gate_leave (DVT_GATE (source));
}

/* Async waiters of a FIFO lockout wait on timers on this loop and come
 * in the order they came; a lockout set meanwhile holds them longer. */
static void
test_lockout_fifo_async (void)
{
  g_autoptr(DvtLockout) lockout = dvt_lockout_new (TRUE);
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GError) error = NULL;
  FifoEntry entries[6];
  gint64 start = g_get_monotonic_time ();

  g_assert_true (dvt_lockout_lock_for (lockout, 0.05, &error));
  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      entries[i].order = order;
      entries[i].index = i;
      dvt_gate_enter_async (DVT_GATE (lockout), NULL, on_fifo_entered, &entries[i]);
    }
  g_assert_cmpuint (dvt_lockout_get_n_waiting (lockout), ==, G_N_ELEMENTS (entries));
  g_assert_false (dvt_gate_try_enter (DVT_GATE (lockout)));   /* FIFO: no passing */
  g_assert_true (dvt_lockout_lock_for (lockout, 0.1, &error));
  g_assert_true (ITERATE_UNTIL (NULL, order->len == G_N_ELEMENTS (entries), 30));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 100000);
  for (guint i = 0; i < order->len; i++)
    g_assert_cmpuint (g_array_index (order, guint, i), ==, i);
  g_assert_cmpuint (dvt_lockout_get_n_waiting (lockout), ==, 0);
}

/* ---- gates on the tasks of a runtime -------------------------------------------- */

typedef struct
{
  DvtSemaphore *sem;
  int           inside;      /* atomic */
  int           max_inside;  /* atomic */
  int           fail_first;  /* atomic: attempts still to fail */
  gboolean      check_held;  /* the attempt holds the only permit */
} Work;

static void
gated_work (DvtTask       *task,
            GCancellable  *cancellable,
            gpointer       data,
            GError       **error)
{
  Work *work = data;
  int now = g_atomic_int_add (&work->inside, 1) + 1;
  int max = g_atomic_int_get (&work->max_inside);

  while (now > max && !g_atomic_int_compare_and_exchange_full (&work->max_inside, max, now, &max))
    ;
  if (work->check_held)
    g_assert_cmpuint (dvt_semaphore_get_available (work->sem), ==, 0);
  g_usleep (2000);
  g_atomic_int_add (&work->inside, -1);

  if (g_atomic_int_add (&work->fail_first, -1) > 0)
    {
      g_set_error_literal (error, TEST_ERROR, 1, "try again");
      return;
    }
  dvt_task_return_int (task, 1);
}

static void
on_throttled (DvtRuntime *runtime,
              DvtTask    *task,
              double      wait,
              gpointer    user_data)
{
  g_assert_cmpfloat (wait, ==, 0);
  g_atomic_int_inc ((int *) user_data);
}

static void
test_options_semaphore (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (4);
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  Work work = { .sem = sem };
  DvtTask *tasks[10];
  int n_throttled = 0;

  dvt_options_add_gate (options, DVT_GATE (sem));
  g_assert_cmpuint (dvt_options_get_gates (options)->len, ==, 1);
  g_assert_true (dvt_runtime_has_task_policy (runtime, options));
  g_signal_connect (runtime, "throttled", G_CALLBACK (on_throttled), &n_throttled);

  /* Both permits held: every task waits for one. */
  g_assert_true (dvt_gate_try_enter (DVT_GATE (sem)));
  g_assert_true (dvt_gate_try_enter (DVT_GATE (sem)));
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_autoptr(GError) error = NULL;

      tasks[i] = dvt_runtime_submit (runtime, gated_work, &work, NULL, options, NULL, &error);
      g_assert_no_error (error);
    }
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_n_waiting (sem) == G_N_ELEMENTS (tasks), 30));
  dvt_gate_leave (DVT_GATE (sem));
  dvt_gate_leave (DVT_GATE (sem));

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (dvt_task_wait (tasks[i], 0, &error));
      g_assert_cmpint (dvt_task_propagate_int (tasks[i], &error), ==, 1);
      g_assert_no_error (error);
      g_object_unref (tasks[i]);
    }
  g_assert_cmpint (work.max_inside, <=, 2);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_available (sem) == 2, 30));
  {
    g_autoptr(DvtStats) stats = dvt_runtime_get_stats (runtime);

    g_assert_cmpuint (stats->throttled, ==, G_N_ELEMENTS (tasks));
  }
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&n_throttled) == G_N_ELEMENTS (tasks), 30));
  g_signal_handlers_disconnect_by_data (runtime, &n_throttled);
}

/* A task waiting for a gate holds no worker: with one worker, another
 * task runs meanwhile. */
static void
plain_work (DvtTask       *task,
            GCancellable  *cancellable,
            gpointer       data,
            GError       **error)
{
  dvt_task_return_int (task, 7);
}

static void
test_options_no_worker_held (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (1);
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  Work work = { .sem = sem, .check_held = TRUE };
  g_autoptr(DvtTask) gated = NULL;
  g_autoptr(DvtTask) plain = NULL;

  dvt_options_add_gate (options, DVT_GATE (sem));
  g_assert_true (dvt_gate_try_enter (DVT_GATE (sem)));
  gated = dvt_runtime_submit (runtime, gated_work, &work, NULL, options, NULL, &error);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_n_waiting (sem) == 1, 30));
  plain = dvt_runtime_submit (runtime, plain_work, NULL, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (plain, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (plain, &error), ==, 7);
  g_assert_false (dvt_task_get_completed (gated));

  dvt_gate_leave (DVT_GATE (sem));
  g_assert_true (dvt_task_wait (gated, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (gated, &error), ==, 1);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_available (sem) == 1, 30));
}

/* Cancelling a waiting task, and a shutdown that cancels pending work,
 * end the gate waits; nothing stays entered. */
static void
test_options_cancel_and_shutdown (void)
{
  g_autoptr(DvtRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  g_autoptr(DvtLockout) lockout = dvt_lockout_new (TRUE);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  Work work = { .sem = sem };
  DvtTask *tasks[4];

  /* Entered in order: the lockout lets them through, the semaphore not. */
  dvt_options_add_gate (options, DVT_GATE (lockout));
  dvt_options_add_gate (options, DVT_GATE (sem));
  g_assert_true (dvt_gate_try_enter (DVT_GATE (sem)));
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    tasks[i] = dvt_runtime_submit (runtime, gated_work, &work, NULL, options, NULL, &error);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_n_waiting (sem) == G_N_ELEMENTS (tasks), 30));

  dvt_task_cancel (tasks[0]);
  g_assert_true (dvt_task_wait (tasks[0], 0, &error));
  dvt_task_propagate_int (tasks[0], &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_n_waiting (sem) == G_N_ELEMENTS (tasks) - 1, 30));

  /* A lockout holds the next ones back before the semaphore. */
  g_assert_true (dvt_lockout_lock_for (lockout, 3600, &error));
  g_clear_error (&error);
  tasks[1] = (g_object_unref (tasks[1]),
              dvt_runtime_submit (runtime, gated_work, &work, NULL, options, NULL, &error));
  g_assert_true (POLL_UNTIL (dvt_lockout_get_n_waiting (lockout) == 1, 30));

  dvt_runtime_shutdown (runtime, TRUE, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    {
      g_assert_true (dvt_task_get_completed (tasks[i]));
      dvt_task_propagate_int (tasks[i], &error);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&error);
      g_object_unref (tasks[i]);
    }
  g_assert_cmpuint (dvt_semaphore_get_n_waiting (sem), ==, 0);
  g_assert_cmpuint (dvt_lockout_get_n_waiting (lockout), ==, 0);
  g_assert_cmpint (work.max_inside, ==, 0);
  dvt_gate_leave (DVT_GATE (sem));
  g_assert_cmpuint (dvt_semaphore_get_available (sem), ==, 1);
  /* The lockout was entered and left by each task that got through it. */
  EXPECT_EXTRA_LEAVE (dvt_gate_leave (DVT_GATE (lockout)));
}

/* Every attempt enters: a retried task leaves during its back-off. */
static void
test_options_retry (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  Work work = { .sem = sem, .fail_first = 2, .check_held = TRUE };
  g_autoptr(DvtTask) task = NULL;

  dvt_options_add_gate (options, DVT_GATE (sem));
  dvt_options_set_retries (options, 3);
  dvt_options_set_retry_backoff (options, 0.001);
  task = dvt_runtime_submit (runtime, gated_work, &work, NULL, options, NULL, &error);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 1);
  g_assert_no_error (error);
  g_assert_cmpuint (dvt_task_get_attempt (task), ==, 3);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_available (sem) == 1, 30));
}

/* The items of a map each enter; async work waits on the loop. */
static void
map_work (DvtTask       *task,
          GCancellable  *cancellable,
          gpointer       data,
          GError       **error)
{
  gated_work (task, cancellable, data, error);
}

static void
test_options_map (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (4);
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  Work work = { .sem = sem };
  g_autoptr(GArray) results = NULL;

  dvt_options_add_gate (options, DVT_GATE (sem));
  results = dvt_runtime_map_blocking (runtime, 40, map_work, &work, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 40);
  g_assert_cmpint (work.max_inside, <=, 2);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_available (sem) == 2, 30));
}

/* A task ended while the rate limit holds its attempt back, inside its
 * gates: the attempt will never run, and the gates are left. */
static void
test_options_rate_limited (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (2);
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  Work work = { .sem = sem };
  g_autoptr(DvtTask) first = NULL;
  g_autoptr(DvtTask) second = NULL;

  dvt_options_add_gate (options, DVT_GATE (sem));
  g_assert_true (dvt_runtime_set_rate_limit (runtime, 0.1, 1, &error));
  first = dvt_runtime_submit (runtime, gated_work, &work, NULL, options, NULL, &error);
  g_assert_true (dvt_task_wait (first, 0, &error));
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_available (sem) == 1, 30));

  /* Inside the semaphore, then ten seconds behind the rate limit. */
  second = dvt_runtime_submit (runtime, gated_work, &work, NULL, options, NULL, &error);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_available (sem) == 0, 30));
  dvt_task_cancel (second);
  g_assert_true (dvt_task_wait (second, 0, &error));
  dvt_task_propagate_int (second, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (POLL_UNTIL (dvt_semaphore_get_available (sem) == 1, 30));
  dvt_runtime_clear_rate_limit (runtime);
}

static void
async_work (DvtTask       *task,
            GCancellable  *cancellable,
            gpointer       data,
            GError       **error)
{
  dvt_task_return_int (task, g_get_monotonic_time ());
}

static void
test_options_lockout_async (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (1);
  g_autoptr(DvtLockout) lockout = dvt_lockout_new (FALSE);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  gint64 start = g_get_monotonic_time ();

  dvt_options_add_gate (options, DVT_GATE (lockout));
  g_assert_true (dvt_lockout_lock_for (lockout, 0.1, &error));
  task = dvt_runtime_schedule (runtime, async_work, NULL, NULL, options, NULL, &error);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (task, &error) - start, >=, 100000);
  g_assert_no_error (error);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (test_log_writer, NULL, NULL);
  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/gates/semaphore/basic", test_semaphore_basic);
  g_test_add_func ("/gates/semaphore/cancel-blocking", test_semaphore_cancel_blocking);
  g_test_add_func ("/gates/semaphore/async", test_semaphore_async);
  g_test_add_func ("/gates/semaphore/async-chain", test_semaphore_async_chain);
  g_test_add_func ("/gates/semaphore/priority", test_semaphore_priority);
  g_test_add_func ("/gates/semaphore/cancel-race", test_semaphore_cancel_race);
  g_test_add_func ("/gates/semaphore/stress", test_semaphore_stress);
  g_test_add_func ("/gates/limiter/bad-args", test_limiter_bad_args);
  g_test_add_func ("/gates/limiter/slides", test_limiter_slides);
  g_test_add_func ("/gates/limiter/window", test_limiter_window);
  g_test_add_func ("/gates/limiter/async-head-idle-context", test_limiter_async_head_idle_context);
  g_test_add_func ("/gates/lockout/basic", test_lockout_basic);
  g_test_add_func ("/gates/lockout/fifo-async", test_lockout_fifo_async);
  g_test_add_func ("/gates/options/semaphore", test_options_semaphore);
  g_test_add_func ("/gates/options/no-worker-held", test_options_no_worker_held);
  g_test_add_func ("/gates/options/cancel-and-shutdown", test_options_cancel_and_shutdown);
  g_test_add_func ("/gates/options/retry", test_options_retry);
  g_test_add_func ("/gates/options/map", test_options_map);
  g_test_add_func ("/gates/options/rate-limited", test_options_rate_limited);
  g_test_add_func ("/gates/options/lockout-async", test_options_lockout_async);

  return g_test_run ();
}
