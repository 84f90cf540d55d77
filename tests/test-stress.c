/* test-stress.c: many tasks, random cancellation, shutdown racing
 * submission
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

/* Counts are smaller under valgrind, which is ~50 times slower. */
static guint
scaled (guint normal,
        guint under_valgrind)
{
  return is_valgrind () ? under_valgrind : normal;
}

/* Aborts the program if a test has not disarmed it in time: a hang is a
 * failure, not a stuck CI job. */
typedef struct
{
  GMutex      lock;
  GCond       cond;
  gboolean    disarmed;
  double      seconds;
  const char *what;
  GThread    *thread;
} Watchdog;

static gpointer
watchdog_thread (gpointer data)
{
  Watchdog *wd = data;
  gint64 deadline = g_get_monotonic_time () + (gint64) (wd->seconds * G_USEC_PER_SEC);

  g_mutex_lock (&wd->lock);
  while (!wd->disarmed)
    if (!g_cond_wait_until (&wd->cond, &wd->lock, deadline))
      {
        if (!wd->disarmed)
          g_error ("watchdog: %s did not finish within %.0f s", wd->what, wd->seconds);
      }
  g_mutex_unlock (&wd->lock);

  return NULL;
}

static Watchdog *
watchdog_start (const char *what)
{
  Watchdog *wd = g_new0 (Watchdog, 1);

  g_mutex_init (&wd->lock);
  g_cond_init (&wd->cond);
  wd->seconds = 60.0 * (is_valgrind () ? 5 : 1);
  wd->what = what;
  wd->thread = g_thread_new ("watchdog", watchdog_thread, wd);

  return wd;
}

static void
watchdog_stop (Watchdog *wd)
{
  g_mutex_lock (&wd->lock);
  wd->disarmed = TRUE;
  g_cond_signal (&wd->cond);
  g_mutex_unlock (&wd->lock);
  g_thread_join (wd->thread);
  g_mutex_clear (&wd->lock);
  g_cond_clear (&wd->cond);
  g_free (wd);
}

static void
check_stats_settled (DvtRuntime *rt)
{
  g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

  g_test_message ("queued %" G_GUINT64_FORMAT " started %" G_GUINT64_FORMAT
                  " done %" G_GUINT64_FORMAT " error %" G_GUINT64_FORMAT
                  " cancelled %" G_GUINT64_FORMAT " running %" G_GUINT64_FORMAT
                  " pending %" G_GUINT64_FORMAT,
                  stats->queued, stats->started, stats->done, stats->error,
                  stats->cancelled, stats->running, stats->pending);
  g_assert_cmpuint (stats->queued, ==, stats->done + stats->error + stats->cancelled);
  g_assert_cmpuint (stats->running, ==, 0);
  g_assert_cmpuint (stats->pending, ==, 0);
}

/* ---- many tasks -------------------------------------------------------- */

typedef struct
{
  guint index;
  int   ran;
  int   destroyed;
} Item;

static void
item_destroyed (gpointer data)
{
  Item *item = data;

  g_atomic_int_inc (&item->destroyed);
}

static void
work_item (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  Item *item = user_data;

  g_atomic_int_inc (&item->ran);
  if (item->index % 97 == 0)
    g_usleep (50);
  dvt_task_return_int (task, (gint64) item->index * 3);
}

typedef struct
{
  DvtRuntime *rt;
  Item       *items;
  guint       first;
  guint       n;
} Submitter;

static gpointer
submit_and_wait_thread (gpointer data)
{
  Submitter *s = data;
  DvtTask **tasks = g_new0 (DvtTask *, s->n);

  for (guint i = 0; i < s->n; i++)
    {
      g_autoptr(GError) error = NULL;

      tasks[i] = dvt_runtime_submit (s->rt, work_item, &s->items[s->first + i], item_destroyed,
                                     NULL, NULL, &error);
      g_assert_no_error (error);
    }
  for (guint i = 0; i < s->n; i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 v;

      g_assert_true (dvt_task_wait (tasks[i], 0, &error));
      v = dvt_task_propagate_int (tasks[i], &error);
      g_assert_no_error (error);
      g_assert_cmpint (v, ==, (gint64) (s->first + i) * 3);
      g_object_unref (tasks[i]);
    }
  g_free (tasks);

  return NULL;
}

static void
test_submit_wait (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  guint n = scaled (10000, 2000);
  Item *items = g_new0 (Item, n);
  Submitter s[4];
  GThread *threads[4];
  Watchdog *wd = watchdog_start ("/stress/submit-wait");
  g_autoptr(DvtStats) stats = NULL;

  for (guint i = 0; i < n; i++)
    items[i].index = i;

  /* From one thread, then from four at once. */
  s[0] = (Submitter) { rt, items, 0, n / 2 };
  submit_and_wait_thread (&s[0]);
  for (guint t = 0; t < 4; t++)
    {
      guint share = (n - n / 2) / 4;

      s[t] = (Submitter) { rt, items, n / 2 + t * share, t == 3 ? n - n / 2 - 3 * share : share };
      threads[t] = g_thread_new ("submitter", submit_and_wait_thread, &s[t]);
    }
  for (guint t = 0; t < 4; t++)
    g_thread_join (threads[t]);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  for (guint i = 0; i < n; i++)
    {
      g_assert_cmpint (items[i].ran, ==, 1);
      g_assert_cmpint (g_atomic_int_get (&items[i].destroyed), ==, 1);
    }

  check_stats_settled (rt);
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, n);
  g_assert_cmpuint (stats->done, ==, n);
  g_assert_cmpuint (stats->started, ==, n);

  watchdog_stop (wd);
  g_free (items);
}

/* ---- random cancellation ----------------------------------------------- */

typedef struct
{
  Item          item;
  DvtTask      *task;          /* futures */
  GCancellable *cancellable;   /* async calls */
  int           callbacks;
  int           cancelled_ok;
  int           succeeded;
} RandomItem;

typedef struct
{
  RandomItem *items;
  guint       n;
  guint       seed;
  int         cancels;
} Canceller;

static gpointer
canceller_thread (gpointer data)
{
  Canceller *c = data;
  GRand *rand = g_rand_new_with_seed (c->seed);

  for (guint k = 0; k < c->n / 2; k++)
    {
      RandomItem *ri = &c->items[g_rand_int_range (rand, 0, (gint32) c->n)];

      if (ri->task != NULL)
        dvt_task_cancel (ri->task);
      else
        g_cancellable_cancel (ri->cancellable);
      c->cancels++;
      if (k % 64 == 0)
        g_usleep (100);
    }
  g_rand_free (rand);

  return NULL;
}

static void
random_async_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  RandomItem *ri = user_data;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  ri->callbacks++;
  if (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, &value, &error))
    {
      g_assert_cmpint (g_value_get_int64 (&value), ==, (gint64) ri->item.index * 3);
      ri->succeeded++;
    }
  else
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      ri->cancelled_ok++;
    }
}

static void
test_random_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtStats) stats = NULL;
  guint n = scaled (6000, 1200);
  RandomItem *items = g_new0 (RandomItem, n);
  Canceller canceller;
  GThread *thread;
  guint n_done = 0, n_cancelled = 0, n_callbacks = 0;
  guint32 seed = g_test_rand_int ();
  Watchdog *wd = watchdog_start ("/stress/random-cancel");

  g_test_message ("seed %u", seed);

  /* Every item exists (with its task or cancellable) before the
   * canceller starts, so it can pick any of them. */
  for (guint i = 0; i < n; i++)
    {
      items[i].item.index = i;
      if (i % 2 == 1)
        items[i].cancellable = g_cancellable_new ();
    }

  canceller = (Canceller) { items, n, seed, 0 };
  /* Half the items are futures, submitted now... */
  for (guint i = 0; i < n; i += 2)
    {
      g_autoptr(GError) error = NULL;

      items[i].task = dvt_runtime_submit (rt, work_item, &items[i].item, item_destroyed,
                                          NULL, NULL, &error);
      g_assert_no_error (error);
    }
  thread = g_thread_new ("canceller", canceller_thread, &canceller);
  /* ...the other half async calls, submitted while the canceller runs. */
  for (guint i = 1; i < n; i += 2)
    dvt_runtime_to_thread_async (rt, work_item, &items[i].item, item_destroyed, NULL,
                                 items[i].cancellable, random_async_cb, &items[i]);
  g_thread_join (thread);

  while (n_callbacks < n / 2)
    {
      g_main_context_iteration (NULL, TRUE);
      n_callbacks = 0;
      for (guint i = 1; i < n; i += 2)
        n_callbacks += items[i].callbacks != 0;
    }

  for (guint i = 0; i < n; i += 2)
    {
      g_autoptr(GError) error = NULL;
      RandomItem *ri = &items[i];
      gint64 v;

      g_assert_true (dvt_task_wait (ri->task, 0, &error));
      v = dvt_task_propagate_int (ri->task, &error);
      if (error == NULL)
        {
          g_assert_cmpint (v, ==, (gint64) ri->item.index * 3);
          g_assert_cmpint (ri->item.ran, ==, 1);
          n_done++;
        }
      else
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          n_cancelled++;
        }
      g_clear_object (&ri->task);
    }

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  /* The data of async calls is freed on this context: let it happen, and
   * late callbacks (there must be none) show up. */
  {
    int n_destroyed;

    ITERATE_UNTIL (NULL, ({
                     n_destroyed = 0;
                     for (guint i = 0; i < n; i++)
                       n_destroyed += g_atomic_int_get (&items[i].item.destroyed);
                     n_destroyed == (int) n;
                   }), 20);
  }
  while (g_main_context_iteration (NULL, FALSE))
    ;

  for (guint i = 0; i < n; i++)
    {
      RandomItem *ri = &items[i];

      /* Each ran at most once, ended exactly once, and its data was
       * freed exactly once. */
      g_assert_cmpint (ri->item.ran, <=, 1);
      g_assert_cmpint (g_atomic_int_get (&ri->item.destroyed), ==, 1);
      if (i % 2 == 1)
        {
          g_assert_cmpint (ri->callbacks, ==, 1);
          g_assert_cmpint (ri->succeeded + ri->cancelled_ok, ==, 1);
          if (ri->succeeded)
            g_assert_cmpint (ri->item.ran, ==, 1);
          n_done += ri->succeeded;
          n_cancelled += ri->cancelled_ok;
          g_object_unref (ri->cancellable);
        }
    }
  g_test_message ("%u done, %u cancelled, %d cancel calls", n_done, n_cancelled,
                  canceller.cancels);
  g_assert_cmpuint (n_done + n_cancelled, ==, n);

  check_stats_settled (rt);
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, n);
  g_assert_cmpuint (stats->done, ==, n_done);
  g_assert_cmpuint (stats->cancelled, ==, n_cancelled);
  g_assert_cmpuint (stats->error, ==, 0);

  watchdog_stop (wd);
  g_free (items);
}

/* ---- shutdown racing submission ----------------------------------------- */

typedef struct
{
  DvtRuntime *rt;
  guint       max;
  gboolean    use_async;
  int        *total_submitted;
  /* results */
  guint       attempts;
  guint       accepted;
  guint       closed;
  guint       ended_ok;
  guint       ended_cancelled;
  guint       callbacks;
  int         destroyed;
  gboolean    accepted_after_closed;
} Racer;

static void
racer_destroy (gpointer data)
{
  Racer *r = data;

  g_atomic_int_inc (&r->destroyed);
}

static void
work_racer (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  if (g_random_int_range (0, 8) == 0)
    g_usleep (100);
  dvt_task_return_int (task, 1);
}

static void
racer_async_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Racer *r = user_data;
  g_autoptr(GError) error = NULL;

  r->callbacks++;
  if (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, NULL, &error))
    r->ended_ok++;
  else if (g_error_matches (error, DVT_ERROR, DVT_ERROR_CLOSED))
    r->closed++;
  else
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      r->ended_cancelled++;
    }
}

static gpointer
racer_thread (gpointer data)
{
  Racer *r = data;
  GPtrArray *tasks = g_ptr_array_new_with_free_func (g_object_unref);
  GMainContext *context = g_main_context_new ();
  gboolean seen_closed = FALSE;

  g_main_context_push_thread_default (context);

  /* Submit until the runtime refuses: @max only guards against a runtime
   * that never closes. */
  for (guint i = 0; i < r->max; i++)
    {
      /* Leave the main thread room to shut down (valgrind runs one
       * thread at a time). */
      if (i % 32 == 31)
        g_usleep (50);
      r->attempts++;
      if (r->use_async)
        {
          dvt_runtime_to_thread_async (r->rt, work_racer, r, racer_destroy, NULL, NULL,
                                       racer_async_cb, r);
          /* Stop once a callback reported the runtime closed. */
          g_main_context_iteration (context, FALSE);
          if (r->closed > 0)
            break;
        }
      else
        {
          g_autoptr(GError) error = NULL;
          DvtTask *task = dvt_runtime_submit (r->rt, work_racer, r, racer_destroy, NULL, NULL,
                                              &error);

          if (task != NULL)
            {
              g_assert_no_error (error);
              if (seen_closed)
                r->accepted_after_closed = TRUE;
              r->accepted++;
              g_ptr_array_add (tasks, task);
            }
          else
            {
              g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
              r->closed++;
              seen_closed = TRUE;
              /* A few more tries: all must fail the same way. */
              if (r->closed >= 20)
                break;
            }
        }
      g_atomic_int_inc (r->total_submitted);
    }

  /* Every accepted task ends. */
  for (guint i = 0; i < tasks->len; i++)
    {
      DvtTask *task = g_ptr_array_index (tasks, i);
      g_autoptr(GError) error = NULL;

      g_assert_true (dvt_task_wait (task, 0, &error));
      g_assert_no_error (error);
      if (dvt_task_propagate_int (task, &error) == 1)
        r->ended_ok++;
      else
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          r->ended_cancelled++;
        }
    }
  g_ptr_array_unref (tasks);

  /* Every async call gets its callback, and then its data is freed on
   * this context. */
  while (r->use_async && r->callbacks < r->attempts)
    g_main_context_iteration (context, TRUE);
  if (r->use_async)
    ITERATE_UNTIL (context, g_atomic_int_get (&r->destroyed) == (int) r->attempts, 60);

  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);

  return NULL;
}

static void
run_shutdown_race (gboolean wait,
                   gboolean cancel_pending)
{
  DvtRuntime *rt = dvt_runtime_new (3);
  Racer racers[4];
  GThread *threads[4];
  int total_submitted = 0;
  guint n_accepted = 0, n_ended = 0;
  g_autoptr(DvtStats) stats = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (racers); i++)
    {
      memset (&racers[i], 0, sizeof racers[i]);
      racers[i].rt = rt;
      racers[i].max = 1000000;
      racers[i].use_async = i % 2 == 1;
      racers[i].total_submitted = &total_submitted;
      threads[i] = g_thread_new ("racer", racer_thread, &racers[i]);
    }

  /* Shut down while they are busy submitting. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&total_submitted) >= 400, 30));
  dvt_runtime_shutdown (rt, wait, cancel_pending);
  g_assert_true (dvt_runtime_is_shutdown (rt));

  for (guint i = 0; i < G_N_ELEMENTS (racers); i++)
    {
      Racer *r = &racers[i];

      g_thread_join (threads[i]);
      g_test_message ("racer %u (%s): %u attempts, %u ok, %u cancelled, %u closed",
                      i, r->use_async ? "async" : "submit", r->attempts, r->ended_ok,
                      r->ended_cancelled, r->closed);
      g_assert_false (r->accepted_after_closed);
      g_assert_cmpuint (r->closed, >=, 1);
      if (r->use_async)
        {
          g_assert_cmpuint (r->callbacks, ==, r->attempts);
          g_assert_cmpuint (r->ended_ok + r->ended_cancelled + r->closed, ==, r->attempts);
          n_accepted += r->attempts - r->closed;
        }
      else
        {
          g_assert_cmpuint (r->accepted + r->closed, ==, r->attempts);
          g_assert_cmpuint (r->ended_ok + r->ended_cancelled, ==, r->accepted);
          n_accepted += r->accepted;
        }
      n_ended += r->ended_ok + r->ended_cancelled;
      if (!cancel_pending)
        g_assert_cmpuint (r->ended_cancelled, ==, 0);
    }
  g_assert_cmpuint (n_ended, ==, n_accepted);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  check_stats_settled (rt);
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, n_accepted);
  g_object_unref (rt);

  /* Every call's data was freed exactly once, the refused ones included. */
  for (guint i = 0; i < G_N_ELEMENTS (racers); i++)
    {
      POLL_UNTIL (g_atomic_int_get (&racers[i].destroyed) == (int) racers[i].attempts, 20);
      g_assert_cmpint (g_atomic_int_get (&racers[i].destroyed), ==, racers[i].attempts);
    }
}

static void
test_shutdown_race (void)
{
  Watchdog *wd = watchdog_start ("/stress/shutdown-race");

  for (guint round = 0; round < scaled (3, 1); round++)
    {
      run_shutdown_race (FALSE, TRUE);
      run_shutdown_race (TRUE, FALSE);
      run_shutdown_race (TRUE, TRUE);
      run_shutdown_race (FALSE, FALSE);
    }

  watchdog_stop (wd);
}

/* ---- a shared cancellable cancelled while its tasks are dropped ----------- */

static void
work_quick (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  dvt_task_return_int (task, 1);
}

static gpointer
cancel_after_a_while (gpointer data)
{
  GCancellable *cancellable = data;

  g_usleep (g_random_int_range (0, 200));
  g_cancellable_cancel (cancellable);

  return NULL;
}

/* One GCancellable serves many calls, GIO-style. The tasks have ended and
 * their last references are dropped while another thread cancels the
 * cancellable: no task may be touched once it is being finalized. */
static void
cancel_while_finalizing_body (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  guint n_rounds = scaled (400, 40);

  for (guint round = 0; round < n_rounds; round++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      DvtTask *tasks[64];
      GThread *canceller;

      for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
        {
          g_autoptr(GError) error = NULL;

          tasks[i] = dvt_runtime_submit (rt, work_quick, NULL, NULL, NULL, cancellable, &error);
          g_assert_no_error (error);
        }
      for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
        g_assert_true (dvt_task_wait (tasks[i], 0, NULL));

      canceller = g_thread_new ("canceller", cancel_after_a_while, cancellable);
      for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
        {
          g_object_unref (tasks[i]);
          if (i % 8 == 0)
            g_usleep (5);
        }
      g_thread_join (canceller);
    }
}

static void
test_cancel_while_finalizing (void)
{
  cancel_while_finalizing_body ();
}

/* ---- gathers racing the end of their tasks ------------------------------ */

static void
work_index_quick (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  dvt_task_return_int (task, GPOINTER_TO_INT (user_data));
}

/* Tasks end while the gather registers with them: every end must be
 * seen, or the gather waits forever. */
static void
gather_race_body (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  /* Always in a native child process, even under the valgrind setup. */
  guint n_rounds = 3000;

  for (guint round = 0; round < n_rounds; round++)
    {
      DvtTask *tasks[8];
      g_autoptr(GArray) results = NULL;
      g_autoptr(GError) error = NULL;

      for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
        {
          tasks[i] = dvt_runtime_submit (rt, work_index_quick, GUINT_TO_POINTER (i), NULL,
                                         NULL, NULL, &error);
          g_assert_no_error (error);
        }
      results = dvt_runtime_gather_blocking (rt, tasks, G_N_ELEMENTS (tasks), NULL, NULL,
                                             &error);
      g_assert_no_error (error);
      for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
        {
          g_assert_cmpint (g_value_get_int64 (&g_array_index (results, GValue, i)), ==, i);
          g_object_unref (tasks[i]);
        }
    }
}

static void
test_gather_race (void)
{
  /* A lost end hangs the gather: keep that to this test. */
  if (g_test_subprocess ())
    {
      gather_race_body ();
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  if (!g_test_trap_has_passed ())
    {
      g_test_message ("the child process failed or hung (killed after 60 s)");
      g_test_fail ();
    }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/stress/submit-wait", test_submit_wait);
  g_test_add_func ("/stress/random-cancel", test_random_cancel);
  g_test_add_func ("/stress/shutdown-race", test_shutdown_race);
  g_test_add_func ("/stress/cancel-while-finalizing", test_cancel_while_finalizing);
  g_test_add_func ("/stress/gather-race", test_gather_race);

  return g_test_run ();
}
