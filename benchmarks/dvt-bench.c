/* dvt-bench.c: Dovetail against raw GLib, side by side in one process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case measures Dovetail and its baseline alternately, REPS times,
 * and reports the medians and their ratio. Output: a table, or with
 * --json one JSON object per case.
 */

#include <dovetail.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/resource.h>

#include "bench-util.h"

#define REPS 5

static gboolean opt_json;
static double opt_scale = 1.0;
static char *opt_only;
static gboolean opt_scaling;

/* ---- helpers ----------------------------------------------------------- */

static guint
scaled (guint n)
{
  return MAX (1, (guint) (n * opt_scale));
}

typedef enum { LOWER_IS_BETTER, HIGHER_IS_BETTER } Direction;

static void
report (const char *name,
        const char *unit,
        Direction   direction,
        double      dovetail,
        const char *baseline_name,
        double      baseline,
        double      target)
{
  double speedup;

  if (direction == LOWER_IS_BETTER)
    speedup = dovetail > 0 ? baseline / dovetail : 0;
  else
    speedup = baseline > 0 ? dovetail / baseline : 0;

  if (opt_json)
    g_print ("{\"case\": \"%s\", \"unit\": \"%s\", \"dovetail\": %.6g, "
             "\"baseline_name\": \"%s\", \"baseline\": %.6g, "
             "\"speedup\": %.4g, \"target\": %.4g}\n",
             name, unit, dovetail, baseline_name, baseline, speedup, target);
  else
    g_print ("%-34s %12.4g %-10s %-34s %12.4g  %6.2fx (target %gx)\n",
             name, dovetail, unit, baseline_name, baseline, speedup, target);
}

static gboolean
want (const char *name)
{
  return opt_only == NULL || strstr (name, opt_only) != NULL;
}

/* ---- work functions ---------------------------------------------------- */

static void
dvt_nop (DvtTask      *task,
         GCancellable *cancellable,
         gpointer      user_data,
         GError      **error)
{
  dvt_task_return_int (task, 1);
}

static void
dvt_item (DvtTask      *task,
          GCancellable *cancellable,
          gpointer      user_data,
          GError      **error)
{
  dvt_task_return_int (task, dvt_task_get_index (task));
}

static void
gtask_nop (GTask        *task,
           gpointer      source,
           gpointer      data,
           GCancellable *cancellable)
{
  g_task_return_int (task, 1);
}

/* A loop thread for the invoke + GCond baselines. */
typedef struct
{
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
} LoopThread;

static gpointer
loop_thread_main (gpointer data)
{
  LoopThread *lt = data;

  g_main_context_push_thread_default (lt->context);
  g_main_loop_run (lt->loop);
  g_main_context_pop_thread_default (lt->context);
  return NULL;
}

static void
loop_thread_start (LoopThread *lt)
{
  lt->context = g_main_context_new ();
  lt->loop = g_main_loop_new (lt->context, FALSE);
  lt->thread = g_thread_new ("bench-loop", loop_thread_main, lt);
}

static void
loop_thread_stop (LoopThread *lt)
{
  g_main_loop_quit (lt->loop);
  g_thread_join (lt->thread);
  g_main_loop_unref (lt->loop);
  g_main_context_unref (lt->context);
}

typedef struct
{
  GMutex   lock;
  GCond    cond;
  gboolean done;
  int      result;
} Rendezvous;

static gboolean
invoke_cb (gpointer data)
{
  Rendezvous *r = data;

  g_mutex_lock (&r->lock);
  r->result = 1;
  r->done = TRUE;
  g_cond_signal (&r->cond);
  g_mutex_unlock (&r->lock);

  return G_SOURCE_REMOVE;
}

static void
invoke_and_wait (LoopThread *lt)
{
  Rendezvous r = { 0 };

  g_mutex_init (&r.lock);
  g_cond_init (&r.cond);
  g_main_context_invoke (lt->context, invoke_cb, &r);
  g_mutex_lock (&r.lock);
  while (!r.done)
    g_cond_wait (&r.cond, &r.lock);
  g_mutex_unlock (&r.lock);
  g_mutex_clear (&r.lock);
  g_cond_clear (&r.cond);
}

static void
dvt_async_nop (DvtTask      *task,
               GCancellable *cancellable,
               gpointer      user_data,
               GError      **error)
{
  dvt_task_return_int (task, 1);
}

/* ---- cases ------------------------------------------------------------- */

/* One repetition of each side of a case: the time per item, in µs. */

/* to_thread_blocking, or run_blocking with @on_loop. */
static double
blocking_round_trip (DvtRuntime *rt,
                     gboolean    on_loop,
                     guint       n)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_auto(GValue) v = G_VALUE_INIT;

      if (on_loop)
        dvt_runtime_run_blocking (rt, dvt_async_nop, NULL, NULL, NULL, NULL, &v, NULL);
      else
        dvt_runtime_to_thread_blocking (rt, dvt_nop, NULL, NULL, NULL, NULL, &v, NULL);
    }

  return (g_get_monotonic_time () - t0) / (double) n;
}

static double
round_trip_dvt (DvtRuntime *rt,
                guint       n)
{
  return blocking_round_trip (rt, FALSE, n);
}

static double
run_blocking_dvt (DvtRuntime *rt,
                  guint       n)
{
  return blocking_round_trip (rt, TRUE, n);
}

static double
round_trip_gtask (guint n)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      GTask *task = g_task_new (NULL, NULL, NULL, NULL);

      g_task_run_in_thread_sync (task, gtask_nop);
      g_task_propagate_int (task, NULL);
      g_object_unref (task);
    }

  return (g_get_monotonic_time () - t0) / (double) n;
}

static double
invoke_round_trip (LoopThread *lt,
                   guint       n)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    invoke_and_wait (lt);

  return (g_get_monotonic_time () - t0) / (double) n;
}

static void
case_round_trip (DvtRuntime *rt)
{
  guint n = scaled (20000);
  double d[REPS], g[REPS], inv[REPS];
  LoopThread lt;

  if (!want ("round-trip"))
    return;

  loop_thread_start (&lt);
  for (guint rep = 0; rep < REPS; rep++)
    {
      d[rep] = round_trip_dvt (rt, n);
      g[rep] = round_trip_gtask (n);
      inv[rep] = invoke_round_trip (&lt, n);
    }
  loop_thread_stop (&lt);

  {
    double dm = median (d, REPS);

    report ("to_thread_blocking round trip", "us", LOWER_IS_BETTER,
            dm, "g_task_run_in_thread_sync", median (g, REPS), 5);
    report ("to_thread_blocking round trip", "us", LOWER_IS_BETTER,
            dm, "g_main_context_invoke+GCond", median (inv, REPS), 1);
  }
}

static void
case_run_blocking (DvtRuntime *rt)
{
  guint n = scaled (20000);
  double d[REPS], inv[REPS];
  LoopThread lt;

  if (!want ("run_blocking"))
    return;

  loop_thread_start (&lt);
  for (guint rep = 0; rep < REPS; rep++)
    {
      d[rep] = run_blocking_dvt (rt, n);
      inv[rep] = invoke_round_trip (&lt, n);
    }
  loop_thread_stop (&lt);

  report ("run_blocking round trip", "us", LOWER_IS_BETTER,
          median (d, REPS), "g_main_context_invoke+GCond", median (inv, REPS), 3);
}

typedef struct
{
  int      remaining;
  GMutex   lock;
  GCond    cond;
  guint64  sum;
} PoolBatch;

static void
pool_item (gpointer data,
           gpointer user_data)
{
  PoolBatch *b = user_data;

  __atomic_fetch_add (&b->sum, GPOINTER_TO_UINT (data), __ATOMIC_RELAXED);
  if (g_atomic_int_dec_and_test (&b->remaining))
    {
      g_mutex_lock (&b->lock);
      g_cond_signal (&b->cond);
      g_mutex_unlock (&b->lock);
    }
}

/* Pushes n items through a GThreadPool of `threads` threads and waits. */
static double
thread_pool_run (guint n,
                 guint threads)
{
  PoolBatch b = { 0 };
  GThreadPool *pool;
  gint64 t0;

  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  b.remaining = (int) n;
  pool = g_thread_pool_new (pool_item, &b, (int) threads, FALSE, NULL);

  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    g_thread_pool_push (pool, GUINT_TO_POINTER (i + 1), NULL);
  g_mutex_lock (&b.lock);
  while (g_atomic_int_get (&b.remaining) > 0)
    g_cond_wait (&b.cond, &b.lock);
  g_mutex_unlock (&b.lock);
  t0 = g_get_monotonic_time () - t0;

  g_thread_pool_free (pool, FALSE, TRUE);
  g_mutex_clear (&b.lock);
  g_cond_clear (&b.cond);

  return n / (t0 / 1e6);
}

typedef struct
{
  int        remaining;
  GMainLoop *loop;
} Countdown;

static void
gtask_done (GObject      *source,
            GAsyncResult *result,
            gpointer      data)
{
  Countdown *c = data;

  g_task_propagate_int (G_TASK (result), NULL);
  if (--c->remaining == 0)
    g_main_loop_quit (c->loop);
}

/* One GTask per item, run in GLib's task pool, callbacks on a loop. */
static double
gtask_per_item_run (guint n)
{
  GMainContext *context = g_main_context_new ();
  Countdown c = { (int) n, g_main_loop_new (context, FALSE) };
  gint64 t0;

  g_main_context_push_thread_default (context);
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    {
      GTask *task = g_task_new (NULL, NULL, gtask_done, &c);

      g_task_run_in_thread (task, gtask_nop);
      g_object_unref (task);
    }
  g_main_loop_run (c.loop);
  t0 = g_get_monotonic_time () - t0;
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (c.loop);
  g_main_context_unref (context);

  return n / (t0 / 1e6);
}

/* Items (or tasks) per second. */
static double
map_dvt (DvtRuntime *rt,
         guint       n)
{
  gint64 t0 = g_get_monotonic_time ();
  GArray *results = dvt_runtime_map_blocking (rt, n, dvt_item, NULL, NULL, NULL, NULL, NULL);
  double rate = n / ((g_get_monotonic_time () - t0) / 1e6);

  g_assert (results != NULL && results->len == n);
  g_array_unref (results);

  return rate;
}

static double
submit_dvt (DvtRuntime *rt,
            guint       n)
{
  DvtTask **tasks = g_new (DvtTask *, n);
  gint64 t0 = g_get_monotonic_time ();
  double rate;

  for (guint i = 0; i < n; i++)
    tasks[i] = dvt_runtime_submit (rt, dvt_nop, NULL, NULL, NULL, NULL, NULL);
  for (guint i = 0; i < n; i++)
    {
      dvt_task_wait (tasks[i], 0, NULL);
      g_object_unref (tasks[i]);
    }
  rate = n / ((g_get_monotonic_time () - t0) / 1e6);
  g_free (tasks);

  return rate;
}

static void
case_map (DvtRuntime *rt)
{
  guint n = scaled (1000000);
  guint n_gtask = scaled (100000);
  double d[REPS], p[REPS], g[REPS];
  guint workers = dvt_runtime_get_max_workers (rt);

  if (!want ("map"))
    return;

  for (guint rep = 0; rep < REPS; rep++)
    {
      d[rep] = map_dvt (rt, n);
      p[rep] = thread_pool_run (n, workers);
      g[rep] = gtask_per_item_run (n_gtask);
    }

  report ("map_blocking 1M trivial items", "items/s", HIGHER_IS_BETTER,
          median (d, REPS), "GThreadPool push+wait", median (p, REPS), 5);
  report ("map_blocking 1M trivial items", "items/s", HIGHER_IS_BETTER,
          median (d, REPS), "one GTask per item", median (g, REPS), 5);
}

/* The floor under submit + wait: objects per second that one thread can
 * make and then release, with nothing handed to any other thread. */
static double
gobject_floor (guint n)
{
  GObject **objects = g_new (GObject *, n);
  gint64 t0 = g_get_monotonic_time ();
  double rate;

  for (guint i = 0; i < n; i++)
    objects[i] = g_object_new (G_TYPE_OBJECT, NULL);
  for (guint i = 0; i < n; i++)
    g_object_unref (objects[i]);
  rate = n / ((g_get_monotonic_time () - t0) / 1e6);
  g_free (objects);

  return rate;
}

static void
case_submit (DvtRuntime *rt)
{
  guint n = scaled (100000);
  double d[REPS], p[REPS], f[REPS];

  if (!want ("submit"))
    return;

  for (guint rep = 0; rep < REPS; rep++)
    {
      d[rep] = submit_dvt (rt, n);
      p[rep] = thread_pool_run (n, dvt_runtime_get_max_workers (rt));
      f[rep] = gobject_floor (n);
    }

  report ("submit+wait 100k", "tasks/s", HIGHER_IS_BETTER,
          median (d, REPS), "GThreadPool push+wait", median (p, REPS), 2);
  /* No target: shows how far one GObject per future lets submit go. */
  report ("floor: GObject new+unref 100k", "objects/s", HIGHER_IS_BETTER,
          median (f, REPS), "GThreadPool push+wait", median (p, REPS), 0);
}

static void
dvt_done (GObject      *source,
          GAsyncResult *result,
          gpointer      data)
{
  Countdown *c = data;

  dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, NULL, NULL);
  if (--c->remaining == 0)
    g_main_loop_quit (c->loop);
}

static double
to_thread_async_dvt (DvtRuntime *rt,
                     guint       n)
{
  GMainContext *context = g_main_context_new ();
  Countdown c = { (int) n, g_main_loop_new (context, FALSE) };
  gint64 t0;
  double rate;

  g_main_context_push_thread_default (context);
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    dvt_runtime_to_thread_async (rt, dvt_nop, NULL, NULL, NULL, NULL, dvt_done, &c);
  g_main_loop_run (c.loop);
  rate = n / ((g_get_monotonic_time () - t0) / 1e6);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (c.loop);
  g_main_context_unref (context);

  return rate;
}

static void
case_to_thread_async (DvtRuntime *rt)
{
  guint n = scaled (100000);
  double d[REPS], g[REPS];

  if (!want ("to_thread_async"))
    return;

  for (guint rep = 0; rep < REPS; rep++)
    {
      d[rep] = to_thread_async_dvt (rt, n);
      g[rep] = gtask_per_item_run (n);
    }

  report ("to_thread_async 100k from a loop", "tasks/s", HIGHER_IS_BETTER,
          median (d, REPS), "g_task_run_in_thread", median (g, REPS), 2);
}

/* ---- how the cost per item scales --------------------------------------- */

typedef enum { PER_ITEM_USEC, PER_SECOND } Measured;

/* The per-item cases at 1 000 to 1 000 000 items (times --scale): the cost
 * of one item, in µs, for Dovetail and its baseline, each the median of
 * SCALING_REPS alternating repetitions. */
#define SCALING_REPS 3

typedef struct
{
  const char *name;
  const char *baseline_name;
  Measured    measured;
  double    (*dovetail) (DvtRuntime *rt, guint n);
  double    (*baseline) (DvtRuntime *rt, LoopThread *lt, guint n);
} ScalingCase;

static double
baseline_round_trip (DvtRuntime *rt, LoopThread *lt, guint n)
{
  return round_trip_gtask (n);
}

static double
baseline_invoke (DvtRuntime *rt, LoopThread *lt, guint n)
{
  return invoke_round_trip (lt, n);
}

static double
baseline_thread_pool (DvtRuntime *rt, LoopThread *lt, guint n)
{
  return thread_pool_run (n, dvt_runtime_get_max_workers (rt));
}

static double
baseline_gtask_per_item (DvtRuntime *rt, LoopThread *lt, guint n)
{
  return gtask_per_item_run (n);
}

static void
run_scaling (DvtRuntime *rt)
{
  static const ScalingCase cases[] = {
    { "to_thread_blocking round trip", "g_task_run_in_thread_sync", PER_ITEM_USEC,
      round_trip_dvt, baseline_round_trip },
    { "run_blocking round trip", "g_main_context_invoke+GCond", PER_ITEM_USEC,
      run_blocking_dvt, baseline_invoke },
    { "submit+wait", "GThreadPool push+wait", PER_SECOND,
      submit_dvt, baseline_thread_pool },
    { "to_thread_async from a loop", "g_task_run_in_thread", PER_SECOND,
      to_thread_async_dvt, baseline_gtask_per_item },
    { "map_blocking trivial items", "GThreadPool push+wait", PER_SECOND,
      map_dvt, baseline_thread_pool },
  };
  static const guint sizes[] = { 1000, 10000, 100000, 1000000 };
  LoopThread lt;

  loop_thread_start (&lt);
  if (!opt_json)
    g_print ("%-30s %9s %12s %12s %9s  (us per item, medians of %d)\n",
             "case", "items", "dovetail", "baseline", "speed-up", SCALING_REPS);

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      if (!want (cases[c].name))
        continue;

      for (guint k = 0; k < G_N_ELEMENTS (sizes); k++)
        {
          guint n = scaled (sizes[k]);
          double d[SCALING_REPS], b[SCALING_REPS];
          double dm, bm;

          for (guint rep = 0; rep < SCALING_REPS; rep++)
            {
              d[rep] = cases[c].dovetail (rt, n);
              b[rep] = cases[c].baseline (rt, &lt, n);
              if (cases[c].measured == PER_SECOND)
                {
                  d[rep] = 1e6 / d[rep];
                  b[rep] = 1e6 / b[rep];
                }
            }
          dm = median (d, SCALING_REPS);
          bm = median (b, SCALING_REPS);

          if (opt_json)
            g_print ("{\"case\": \"%s\", \"items\": %u, \"dovetail_us\": %.6g, "
                     "\"baseline_name\": \"%s\", \"baseline_us\": %.6g, \"speedup\": %.4g}\n",
                     cases[c].name, n, dm, cases[c].baseline_name, bm, bm / dm);
          else
            g_print ("%-30s %9u %12.4g %12.4g %8.2fx  (%s)\n",
                     cases[c].name, n, dm, bm, bm / dm, cases[c].baseline_name);
        }
    }
  loop_thread_stop (&lt);
}

/* ---- memory per queued task ------------------------------------------- */

typedef struct
{
  GMutex   lock;
  GCond    cond;
  gboolean open;
} Gate;

static void
gate_wait (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

static void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

static void
dvt_blocker (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  gate_wait (user_data);
  dvt_task_return_int (task, 0);
}

static void
gtask_blocker (GTask        *task,
               gpointer      source,
               gpointer      data,
               GCancellable *cancellable)
{
  gate_wait (data);
  g_task_return_int (task, 0);
}

static size_t
heap_in_use (void)
{
  struct mallinfo2 mi = mallinfo2 ();

  return mi.uordblks + mi.hblkhd;
}

static double
dvt_bytes_per_queued (guint n)
{
  DvtRuntime *rt = dvt_runtime_new (1);
  Gate gate = { 0 };
  DvtTask *blocker;
  DvtTask **tasks = g_new (DvtTask *, n);
  size_t before, after;

  blocker = dvt_runtime_submit (rt, dvt_blocker, &gate, NULL, NULL, NULL, NULL);
  g_usleep (10000);
  malloc_trim (0);
  before = heap_in_use ();
  for (guint i = 0; i < n; i++)
    tasks[i] = dvt_runtime_submit (rt, dvt_nop, NULL, NULL, NULL, NULL, NULL);
  after = heap_in_use ();

  gate_open (&gate);
  for (guint i = 0; i < n; i++)
    {
      dvt_task_wait (tasks[i], 0, NULL);
      g_object_unref (tasks[i]);
    }
  dvt_task_wait (blocker, 0, NULL);
  g_object_unref (blocker);
  g_free (tasks);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);

  /* The array of task pointers is the caller's, not the queue's. */
  return (double) (after - before) / n;
}

static double
gtask_bytes_per_queued (guint n)
{
  Gate gate = { 0 };
  GTask **tasks = g_new (GTask *, n);
  GTask *blockers[16];
  size_t before, after;

  /* Fill GLib's task pool with blocked tasks, so the rest stays queued. */
  for (guint i = 0; i < G_N_ELEMENTS (blockers); i++)
    {
      blockers[i] = g_task_new (NULL, NULL, NULL, NULL);
      g_task_set_task_data (blockers[i], &gate, NULL);
      g_task_run_in_thread (blockers[i], gtask_blocker);
    }
  g_usleep (10000);
  malloc_trim (0);
  before = heap_in_use ();
  for (guint i = 0; i < n; i++)
    {
      tasks[i] = g_task_new (NULL, NULL, NULL, NULL);
      g_task_run_in_thread (tasks[i], gtask_nop);
    }
  after = heap_in_use ();

  gate_open (&gate);
  for (guint i = 0; i < G_N_ELEMENTS (blockers); i++)
    g_object_unref (blockers[i]);
  for (guint i = 0; i < n; i++)
    g_object_unref (tasks[i]);
  g_free (tasks);

  return (double) (after - before) / n;
}

/* Runs @measure in a child process, so that each figure starts from a
 * fresh heap: allocator caches filled by one side must not serve the other. */
static double
in_child (double (*measure) (guint),
          guint    n)
{
  int fds[2];
  pid_t pid;
  double result = 0;

  if (pipe (fds) != 0)
    g_error ("pipe: %s", g_strerror (errno));

  pid = fork ();
  if (pid == 0)
    {
      double r = measure (n);

      if (write (fds[1], &r, sizeof r) != sizeof r)
        _exit (1);
      _exit (0);
    }

  close (fds[1]);
  if (read (fds[0], &result, sizeof result) != sizeof result)
    g_error ("the memory measurement failed");
  close (fds[0]);
  waitpid (pid, NULL, 0);

  return result;
}

static void
case_memory (void)
{
  guint n = scaled (1000000);
  double d[REPS], g[REPS];

  if (!want ("memory"))
    return;

  for (guint rep = 0; rep < REPS; rep++)
    {
      d[rep] = in_child (dvt_bytes_per_queued, n);
      g[rep] = in_child (gtask_bytes_per_queued, n);
    }

  report ("memory per queued task", "bytes", LOWER_IS_BETTER,
          median (d, REPS), "one queued GTask", median (g, REPS), 1);
}

/* ---- idle CPU ---------------------------------------------------------- */

static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
case_idle (void)
{
  DvtRuntime *rt;
  double d[REPS];

  if (!want ("idle"))
    return;

  rt = dvt_runtime_new (0);
  for (guint rep = 0; rep < REPS; rep++)
    {
      double c0;

      /* Wake every thread first, then leave the runtime alone. */
      for (guint i = 0; i < 100; i++)
        {
          g_auto(GValue) v = G_VALUE_INIT;

          dvt_runtime_to_thread_blocking (rt, dvt_nop, NULL, NULL, NULL, NULL, &v, NULL);
        }
      c0 = cpu_seconds ();
      g_usleep ((gulong) (2 * G_USEC_PER_SEC * MIN (1.0, opt_scale * 4)));
      d[rep] = 100.0 * (cpu_seconds () - c0) / (2 * MIN (1.0, opt_scale * 4));
    }
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);

  report ("idle runtime CPU over 2 s", "% of a core", LOWER_IS_BETTER,
          median (d, REPS), "1% limit", 1.0, 1);
}

int
main (int   argc,
      char *argv[])
{
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON, one object per line", NULL },
    { "scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt_scale, "Scale the number of items (default 1)", "F" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "Run only the cases whose name contains S", "S" },
    { "scaling", 0, 0, G_OPTION_ARG_NONE, &opt_scaling, "Print the cost per item of the per-item cases at 1k, 10k, 100k and 1M items", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- Dovetail benchmarks");
  g_autoptr(GError) error = NULL;
  DvtRuntime *rt;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  if (opt_scaling)
    {
      rt = dvt_runtime_new (0);
      run_scaling (rt);
      dvt_runtime_shutdown (rt, TRUE, FALSE);
      g_object_unref (rt);
      return 0;
    }

  if (!opt_json)
    g_print ("%-34s %12s %-10s %-34s %12s  %s\n", "case", "dovetail", "unit",
             "baseline", "baseline", "speed-up");

  rt = dvt_runtime_new (0);
  case_round_trip (rt);
  case_run_blocking (rt);
  case_map (rt);
  case_submit (rt);
  case_to_thread_async (rt);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);
  case_memory ();
  case_idle ();

  return 0;
}
