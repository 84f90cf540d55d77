/* dvt-bench.c: Dovetail against raw GLib, side by side in one process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case measures Dovetail, its plain-GLib baseline and its floor
 * (the same hand-off or work with nothing in between) in turns, REPS
 * times, each time starting with the next of them, and reports the
 * medians, their ratios and the CPU time of the whole process per item.
 * Output: a table, or with --json one JSON object per row: case, busy,
 * unit, dovetail, baseline_name, baseline, speedup, target (the least
 * speed-up that meets it; 0: none), and where measured
 * cpu_us, baseline_cpu_us, floor_name, floor and floor_ratio (what
 * Dovetail costs in floors: 1 is the floor itself, for rates and times
 * alike), floor_target (the largest floor_ratio that meets it; 0 or
 * absent: none), and met: whether the row meets its targets (true or
 * false; null for a row with neither target).
 *
 * The default run measures the cases with nothing else running, then
 * beside one and two CPU-burning processes that the benchmark starts
 * before each case and kills after it (--busy N: beside N only). Beside
 * burners every Dovetail row's target is its baseline (1x), and floor
 * targets do not apply.
 */

#include <dovetail.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "bench-util.h"

#define REPS 5

static gboolean opt_json;
static double opt_scale = 1.0;
static char *opt_only;
static gboolean opt_scaling;
static int opt_busy = -1;
static char *opt_memory_child;
static int opt_memory_items;

/* How many burners run beside the current case. */
static int busy;

/* ---- helpers ----------------------------------------------------------- */

static guint
scaled (guint n)
{
  return MAX (1, (guint) (n * opt_scale));
}

/* CPU time of the whole process (every thread), in µs. */
static double
cpu_usec (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* A measurement: wall and CPU time since it began. Every measuring
 * function leaves the CPU time per item of its last run in last_cpu. */
typedef struct
{
  gint64 wall;
  double cpu;
} Stamp;

static double last_cpu;

static Stamp
stamp (void)
{
  return (Stamp) { g_get_monotonic_time (), cpu_usec () };
}

/* µs per item since @t0; sets last_cpu. */
static double
usec_per_item (Stamp t0,
               guint n)
{
  Stamp t1 = stamp ();

  last_cpu = (t1.cpu - t0.cpu) / n;
  return (t1.wall - t0.wall) / (double) n;
}

/* Items per second since @t0; sets last_cpu. */
static double
per_second (Stamp t0,
            guint n)
{
  return 1e6 / usec_per_item (t0, n);
}

typedef enum { LOWER_IS_BETTER, HIGHER_IS_BETTER } Direction;

/* One row: Dovetail against its baseline, and against its floor (what
 * the same hand-off or work costs with nothing in between; NULL: none). */
typedef struct
{
  const char *name;
  const char *unit;
  Direction   direction;
  double      dovetail;
  double      dovetail_cpu;  /* µs of CPU per item, 0: not measured */
  const char *baseline_name;
  double      baseline;
  double      baseline_cpu;
  double      target;        /* the least speed-up that meets it, 0: none */
  const char *floor_name;
  double      floor;
  double      floor_target;  /* the largest floor ratio that meets it, 0: none */
} Row;

static void
report (const Row *row)
{
  double speedup, floor_ratio = 0;
  const char *floor_name = row->floor_name != NULL ? row->floor_name : "";
  gboolean has_target = row->target > 0 || row->floor_target > 0;
  gboolean met = TRUE;

  if (row->direction == LOWER_IS_BETTER)
    {
      speedup = row->dovetail > 0 ? row->baseline / row->dovetail : 0;
      if (row->floor > 0)
        floor_ratio = row->dovetail / row->floor;
    }
  else
    {
      speedup = row->baseline > 0 ? row->dovetail / row->baseline : 0;
      if (row->dovetail > 0)
        floor_ratio = row->floor / row->dovetail;
    }

  /* Both ratios are "Dovetail's cost": in floors, and over the baseline. */
  if (row->target > 0 && !(speedup >= row->target))
    met = FALSE;
  if (row->floor_target > 0 && !(floor_ratio > 0 && floor_ratio <= row->floor_target))
    met = FALSE;

  if (opt_json)
    {
      g_print ("{\"case\": \"%s\", \"busy\": %d, \"unit\": \"%s\", \"dovetail\": %.6g, "
               "\"baseline_name\": \"%s\", \"baseline\": %.6g, "
               "\"speedup\": %.4g, \"target\": %.4g",
               row->name, busy, row->unit, row->dovetail, row->baseline_name,
               row->baseline, speedup, row->target);
      if (row->dovetail_cpu > 0)
        g_print (", \"cpu_us\": %.4g, \"baseline_cpu_us\": %.4g",
                 row->dovetail_cpu, row->baseline_cpu);
      if (row->floor_name != NULL)
        g_print (", \"floor_name\": \"%s\", \"floor\": %.6g, \"floor_ratio\": %.4g, "
                 "\"floor_target\": %.4g",
                 row->floor_name, row->floor, floor_ratio, row->floor_target);
      g_print (", \"met\": %s}\n", !has_target ? "null" : met ? "true" : "false");
    }
  else
    {
      g_autofree char *target = row->target > 0 ? g_strdup_printf ("%gx", row->target) : g_strdup ("-");
      g_autofree char *ratio = floor_ratio > 0 ? g_strdup_printf ("%.1fx", floor_ratio) : g_strdup ("");
      g_autofree char *most = row->floor_target > 0 ?
        g_strdup_printf ("<=%gx", row->floor_target) : g_strdup (floor_ratio > 0 ? "-" : "");
      g_autofree char *cpu = row->dovetail_cpu > 0 ?
        g_strdup_printf ("%.3g/%.3g", row->dovetail_cpu, row->baseline_cpu) : g_strdup ("");

      g_print ("%-34s %4d %11.4g %-9s %-28s %11.4g %7.2fx %6s %13s %7s %6s %4s  %s\n",
               row->name, busy, row->dovetail, row->unit, row->baseline_name,
               row->baseline, speedup, target, cpu, ratio, most,
               !has_target ? "" : met ? "ok" : "MISS", floor_name);
    }
}

/* What a Dovetail row must reach beside burners: its baseline. */
static double
target (double quiet)
{
  return busy > 0 && quiet > 0 ? 1 : quiet;
}

/* A floor target holds on a quiet machine only: beside burners a floor
 * that spins loses its CPU for whole time slices. */
static double
floor_target (double quiet)
{
  return busy > 0 ? 0 : quiet;
}

static gboolean
want (const char *name)
{
  return opt_only == NULL || strstr (name, opt_only) != NULL;
}

/* Threads that wait until it opens. */
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

/* ---- CPU burners ------------------------------------------------------- */

#define MAX_BURNERS 16

static pid_t burners[MAX_BURNERS];
static volatile sig_atomic_t n_burners;

static void
burners_kill (void)
{
  for (int i = 0; i < n_burners; i++)
    kill (burners[i], SIGKILL);
}

/* Stops the burners, then waits for them. */
static void
burners_stop (void)
{
  burners_kill ();
  for (int i = 0; i < n_burners; i++)
    waitpid (burners[i], NULL, 0);
  n_burners = 0;
}

static void
on_fatal_signal (int signum)
{
  burners_kill ();
  signal (signum, SIG_DFL);
  raise (signum);
}

#define BURNERS_SETTLE_USEC (1000 * 1000)

/* Starts @n processes that keep a CPU busy each, as other programs on a
 * desktop would, until burners_stop(). They die with this thread. */
static void
burners_start (int n)
{
  pid_t parent = getpid ();

  g_assert (n_burners == 0 && n <= MAX_BURNERS);
  for (int i = 0; i < n; i++)
    {
      pid_t pid = fork ();

      if (pid < 0)
        g_error ("fork: %s", g_strerror (errno));
      if (pid == 0)
        {
          volatile unsigned long spin = 0;

          /* Only async-signal-safe calls here: the parent has threads.
           * The burner stays in the benchmark's session, so Linux puts it
           * in the same scheduling group (autogroup) as the benchmark's
           * threads: a yield or a spin then hands it whole time slices,
           * as a busy program started from the same terminal would. */
          prctl (PR_SET_PDEATHSIG, SIGKILL);
          if (getppid () != parent)
            _exit (0);
          for (;;)
            spin++;
        }
      burners[i] = pid;
      n_burners = i + 1;
    }
  /* Measure the busy machine, not its first moments: for a second or two
   * after CPU-bound processes start, Linux (on the 2-CPU virtual machines
   * these figures come from) lets woken threads wait for a CPU far longer
   * than it does later. A g_main_context_invoke()+GCond round trip then
   * costs 40-170 us instead of 15, and Dovetail's alike, so whichever
   * series a case measures first would pay for it. */
  if (n > 0)
    g_usleep (BURNERS_SETTLE_USEC);
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

/* ---- floors ------------------------------------------------------------ */

/* The hardware floor of a hand-off: two threads spinning on one word. The
 * ping thread stores 1, the pong thread answers with 0; 2 ends it. */
typedef struct
{
  int word; /* atomic */
} PingPong;

static int
ping_pong_await (PingPong *pp,
                 int       a,
                 int       b)
{
  int v;

  while ((v = __atomic_load_n (&pp->word, __ATOMIC_ACQUIRE)) != a && v != b)
    {
#if defined(__x86_64__) || defined(__i386__)
      __asm__ __volatile__ ("pause" ::: "memory");
#endif
    }

  return v;
}

static gpointer
pong_main (gpointer data)
{
  PingPong *pp = data;

  while (ping_pong_await (pp, 1, 2) == 1)
    __atomic_store_n (&pp->word, 0, __ATOMIC_RELEASE);

  return NULL;
}

/* µs per round trip, over 0.1 s: beside burners a spinning thread loses
 * its CPU for whole time slices, which a short run would not show. */
static double
spin_ping_pong (void)
{
  PingPong pp = { 0 };
  GThread *pong = g_thread_new ("bench-pong", pong_main, &pp);
  gint64 limit;
  Stamp t0;
  guint i;
  double r;

  /* One exchange first: the pong thread is running from then on. */
  __atomic_store_n (&pp.word, 1, __ATOMIC_RELEASE);
  ping_pong_await (&pp, 0, 0);

  t0 = stamp ();
  limit = t0.wall + G_USEC_PER_SEC / 10;
  for (i = 1; ; i++)
    {
      __atomic_store_n (&pp.word, 1, __ATOMIC_RELEASE);
      ping_pong_await (&pp, 0, 0);
      if ((i & 63) == 0 && g_get_monotonic_time () > limit)
        break;
    }
  r = usec_per_item (t0, i);

  __atomic_store_n (&pp.word, 2, __ATOMIC_RELEASE);
  g_thread_join (pong);

  return r;
}

/* The floor of a parallel map: @threads threads claiming the same trivial
 * items (each returns its index) one at a time with an atomic counter. */
typedef struct
{
  guint  n;
  guint  next; /* atomic */
  gint  *results;
} CounterLoop;

static gpointer
counter_loop_main (gpointer data)
{
  CounterLoop *loop = data;
  guint i;

  while ((i = __atomic_fetch_add (&loop->next, 1, __ATOMIC_RELAXED)) < loop->n)
    loop->results[i] = (gint) i;

  return NULL;
}

/* Items per second. */
static double
counter_loop_run (guint n,
                  guint threads)
{
  CounterLoop loop = { n, 0, NULL };
  GThread *t[64];
  Stamp t0 = stamp ();
  double rate;

  threads = CLAMP (threads, 1, G_N_ELEMENTS (t));
  loop.results = g_new (gint, n);
  for (guint i = 0; i < threads; i++)
    t[i] = g_thread_new ("bench-counter", counter_loop_main, &loop);
  for (guint i = 0; i < threads; i++)
    g_thread_join (t[i]);
  rate = per_second (t0, n);
  g_assert (loop.results[n - 1] == (gint) (n - 1));
  g_free (loop.results);

  return rate;
}

/* The floor under submit + wait: objects per second that one thread can
 * make and then release, with nothing handed to any other thread. */
static double
gobject_floor (guint n)
{
  GObject **objects = g_new (GObject *, n);
  Stamp t0 = stamp ();
  double rate;

  for (guint i = 0; i < n; i++)
    objects[i] = g_object_new (G_TYPE_OBJECT, NULL);
  for (guint i = 0; i < n; i++)
    g_object_unref (objects[i]);
  rate = per_second (t0, n);
  g_free (objects);

  return rate;
}

#define FLOOR_PING_PONG "spin ping-pong"
#define FLOOR_COUNTER   "atomic-counter loop"
#define FLOOR_GOBJECT   "GObject new+unref"

/* ---- cases ------------------------------------------------------------- */

/* One repetition of each side of a case: the time per item, in µs. */

/* to_thread_blocking, or run_blocking with @on_loop; each call with
 * @cancellable (the same one for all). */
static double
blocking_round_trip (DvtRuntime   *rt,
                     gboolean      on_loop,
                     GCancellable *cancellable,
                     guint         n)
{
  Stamp t0 = stamp ();

  for (guint i = 0; i < n; i++)
    {
      g_auto(GValue) v = G_VALUE_INIT;

      if (on_loop)
        dvt_runtime_run_blocking (rt, dvt_async_nop, NULL, NULL, NULL, cancellable, &v, NULL);
      else
        dvt_runtime_to_thread_blocking (rt, dvt_nop, NULL, NULL, NULL, cancellable, &v, NULL);
    }

  return usec_per_item (t0, n);
}

static double
round_trip_dvt (DvtRuntime *rt,
                guint       n)
{
  return blocking_round_trip (rt, FALSE, NULL, n);
}

static double
run_blocking_dvt (DvtRuntime *rt,
                  guint       n)
{
  return blocking_round_trip (rt, TRUE, NULL, n);
}

static double
round_trip_gtask_with (GCancellable *cancellable,
                       guint         n)
{
  Stamp t0 = stamp ();

  for (guint i = 0; i < n; i++)
    {
      GTask *task = g_task_new (NULL, cancellable, NULL, NULL);

      g_task_run_in_thread_sync (task, gtask_nop);
      g_task_propagate_int (task, NULL);
      g_object_unref (task);
    }

  return usec_per_item (t0, n);
}

static double
round_trip_gtask (guint n)
{
  return round_trip_gtask_with (NULL, n);
}

static double
invoke_round_trip (LoopThread *lt,
                   guint       n)
{
  Stamp t0 = stamp ();

  for (guint i = 0; i < n; i++)
    invoke_and_wait (lt);

  return usec_per_item (t0, n);
}

/* A repetition's figure and the CPU time per item it took. */
typedef struct
{
  double v[REPS];
  double cpu[REPS];
} Series;

/* Stores one repetition's figure of @series. A case measures its series
 * in turns, each repetition starting with the next one, as in
 *
 *   for (guint rep = 0; rep < REPS; rep++)
 *     for (guint k = 0; k < N; k++)
 *       switch ((rep + k) % N) { case 0: MEASURE (...); break; ... }
 *
 * so that no series always runs right after the same other one: beside
 * burners, a series that runs after the spinning floor, or after another
 * that woke many threads, meets the scheduler in another state. */
#define MEASURE(series, rep, expr) \
  G_STMT_START { (series).v[rep] = (expr); (series).cpu[rep] = last_cpu; } G_STMT_END

static double
series_median (Series *s)
{
  return median (s->v, REPS);
}

static double
series_cpu (Series *s)
{
  return median (s->cpu, REPS);
}

/* Reports the medians of @d against those of @b and of the floor @f
 * (NULL: none). @quiet_target is the target on a quiet machine (the
 * least speed-up over @b), @quiet_floor_target the largest cost in floors
 * there (0: none). */
static void
report_series (const char *name,
               const char *unit,
               Direction   direction,
               Series     *d,
               const char *baseline_name,
               Series     *b,
               double      quiet_target,
               const char *floor_name,
               Series     *f,
               double      quiet_floor_target)
{
  report (&(Row) { name, unit, direction, series_median (d), series_cpu (d),
                   baseline_name, series_median (b), series_cpu (b),
                   target (quiet_target), floor_name, f != NULL ? series_median (f) : 0,
                   floor_target (quiet_floor_target) });
}

static void
case_round_trip (DvtRuntime *rt)
{
  guint n = scaled (20000);
  Series d, g, inv, f;
  LoopThread lt;

  if (!want ("round-trip") && !want ("round trip"))
    return;

  loop_thread_start (&lt);
  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 4; k++)
      switch ((rep + k) % 4)
        {
        case 0: MEASURE (d, rep, round_trip_dvt (rt, n)); break;
        case 1: MEASURE (g, rep, round_trip_gtask (n)); break;
        case 2: MEASURE (inv, rep, invoke_round_trip (&lt, n)); break;
        default: MEASURE (f, rep, spin_ping_pong ()); break;
        }
  burners_stop ();
  loop_thread_stop (&lt);

  /* Both rows: within 10 floors on a quiet machine. */
  report_series ("to_thread_blocking round trip", "us", LOWER_IS_BETTER,
                 &d, "g_task_run_in_thread_sync", &g, 5, FLOOR_PING_PONG, &f, 10);
  report_series ("to_thread_blocking round trip", "us", LOWER_IS_BETTER,
                 &d, "g_main_context_invoke+GCond", &inv, 1, FLOOR_PING_PONG, &f, 10);
  /* No target: what a hand-off costs with nothing in between. */
  report_series ("floor: spin ping-pong round trip", "us", LOWER_IS_BETTER,
                 &f, "g_main_context_invoke+GCond", &inv, 0, NULL, NULL, 0);
}

/* The same round trip, each call with the same GCancellable: what a
 * caller's cancellable adds to a blocking call. */
static void
case_round_trip_cancellable (DvtRuntime *rt)
{
  guint n = scaled (20000);
  GCancellable *cancellable;
  Series d, g, f;

  if (!want ("round trip with a GCancellable"))
    return;

  cancellable = g_cancellable_new ();
  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 3; k++)
      switch ((rep + k) % 3)
        {
        case 0:
          MEASURE (d, rep, blocking_round_trip (rt, FALSE, cancellable, n));
          break;
        case 1: MEASURE (g, rep, round_trip_gtask_with (cancellable, n)); break;
        default: MEASURE (f, rep, spin_ping_pong ()); break;
        }
  burners_stop ();
  g_object_unref (cancellable);

  /* As the round trip without one. */
  report_series ("to_thread_blocking round trip with a GCancellable", "us", LOWER_IS_BETTER,
                 &d, "g_task_run_in_thread_sync", &g, 5, FLOOR_PING_PONG, &f, 10);
}

static void
dvt_sleep_briefly (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  g_usleep (20 * 1000);
  dvt_task_return_int (task, 1);
}

static gpointer
sleep_on_worker (gpointer data)
{
  g_auto(GValue) v = G_VALUE_INIT;

  dvt_runtime_to_thread_blocking (data, dvt_sleep_briefly, NULL, NULL, NULL, NULL, &v, NULL);

  return NULL;
}

/* Two calls at once, from two threads: both workers of a 2-worker runtime
 * have run, and are idle. */
static void
use_two_workers (DvtRuntime *rt)
{
  GThread *a = g_thread_new ("bench-a", sleep_on_worker, rt);
  GThread *b = g_thread_new ("bench-b", sleep_on_worker, rt);

  g_thread_join (a);
  g_thread_join (b);
}

/* The round trip once two workers are idle: which of them takes the next
 * job should not turn every round trip into a wake-up (it did, when the
 * pool woke the worker parked longest and the two took turns). */
static void
case_round_trip_two_idle (void)
{
  guint n = scaled (20000);
  DvtRuntime *rt;
  Series d, g, f;

  if (!want ("round trip, two workers idle"))
    return;

  rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2, NULL);
  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 3; k++)
      switch ((rep + k) % 3)
        {
        case 0: use_two_workers (rt); MEASURE (d, rep, round_trip_dvt (rt, n)); break;
        case 1: MEASURE (g, rep, round_trip_gtask (n)); break;
        default: MEASURE (f, rep, spin_ping_pong ()); break;
        }
  burners_stop ();
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);

  /* As the round trip with one worker. */
  report_series ("to_thread_blocking round trip, two workers idle", "us", LOWER_IS_BETTER,
                 &d, "g_task_run_in_thread_sync", &g, 5, FLOOR_PING_PONG, &f, 10);
}

static void
case_run_blocking (DvtRuntime *rt)
{
  guint n = scaled (20000);
  Series d, inv, f;
  LoopThread lt;

  if (!want ("run_blocking"))
    return;

  loop_thread_start (&lt);
  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 3; k++)
      switch ((rep + k) % 3)
        {
        case 0: MEASURE (d, rep, run_blocking_dvt (rt, n)); break;
        case 1: MEASURE (inv, rep, invoke_round_trip (&lt, n)); break;
        default: MEASURE (f, rep, spin_ping_pong ()); break;
        }
  burners_stop ();
  loop_thread_stop (&lt);

  report_series ("run_blocking round trip", "us", LOWER_IS_BETTER,
                 &d, "g_main_context_invoke+GCond", &inv, 3, FLOOR_PING_PONG, &f, 12);
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

/* Waits until every item of @b has run. */
static void
pool_batch_wait (PoolBatch *b)
{
  g_mutex_lock (&b->lock);
  while (g_atomic_int_get (&b->remaining) > 0)
    g_cond_wait (&b->cond, &b->lock);
  g_mutex_unlock (&b->lock);
}

/* Pushes n items through a GThreadPool of `threads` threads and waits:
 * item i is items[i], or i + 1 if @items is NULL; @sort, if not NULL,
 * orders the pool's queue. */
static double
thread_pool_push_all (guint             n,
                      guint             threads,
                      gpointer         *items,
                      GCompareDataFunc  sort)
{
  PoolBatch b = { 0 };
  GThreadPool *pool;
  Stamp t0;
  double rate;

  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  b.remaining = (int) n;
  pool = g_thread_pool_new (pool_item, &b, (int) threads, FALSE, NULL);
  if (sort != NULL)
    g_thread_pool_set_sort_function (pool, sort, NULL);

  t0 = stamp ();
  for (guint i = 0; i < n; i++)
    g_thread_pool_push (pool, items != NULL ? items[i] : GUINT_TO_POINTER (i + 1), NULL);
  pool_batch_wait (&b);
  rate = per_second (t0, n);

  g_thread_pool_free (pool, FALSE, TRUE);
  g_mutex_clear (&b.lock);
  g_cond_clear (&b.cond);

  return rate;
}

static double
thread_pool_run (guint n,
                 guint threads)
{
  return thread_pool_push_all (n, threads, NULL, NULL);
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
  Stamp t0;
  double rate;

  g_main_context_push_thread_default (context);
  t0 = stamp ();
  for (guint i = 0; i < n; i++)
    {
      GTask *task = g_task_new (NULL, NULL, gtask_done, &c);

      g_task_run_in_thread (task, gtask_nop);
      g_object_unref (task);
    }
  g_main_loop_run (c.loop);
  rate = per_second (t0, n);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (c.loop);
  g_main_context_unref (context);

  return rate;
}

/* Items (or tasks) per second. */
static double
map_dvt (DvtRuntime *rt,
         guint       n)
{
  Stamp t0 = stamp ();
  GArray *results = dvt_runtime_map_blocking (rt, n, dvt_item, NULL, NULL, NULL, NULL, NULL);
  double rate = per_second (t0, n);

  g_assert (results != NULL && results->len == n);
  g_array_unref (results);

  return rate;
}

/* Submits @n tasks into @tasks, task i with options[i % n_options] (none
 * if @n_options is 0), then waits for them all and drops them. */
static void
submit_and_wait (DvtRuntime  *rt,
                 DvtTask    **tasks,
                 guint        n,
                 DvtOptions **options,
                 guint        n_options)
{
  for (guint i = 0; i < n; i++)
    tasks[i] = dvt_runtime_submit (rt, dvt_nop, NULL, NULL,
                                   n_options > 0 ? options[i % n_options] : NULL, NULL, NULL);
  for (guint i = 0; i < n; i++)
    {
      dvt_task_wait (tasks[i], 0, NULL);
      g_object_unref (tasks[i]);
    }
}

/* Tasks per second through submit_and_wait(). */
static double
submit_all_dvt (DvtRuntime  *rt,
                guint        n,
                DvtOptions **options,
                guint        n_options)
{
  DvtTask **tasks = g_new (DvtTask *, n);
  Stamp t0 = stamp ();
  double rate;

  submit_and_wait (rt, tasks, n, options, n_options);
  rate = per_second (t0, n);
  g_free (tasks);

  return rate;
}

static double
submit_dvt (DvtRuntime *rt,
            guint       n)
{
  return submit_all_dvt (rt, n, NULL, 0);
}

static void
case_map (DvtRuntime *rt)
{
  guint n = scaled (1000000);
  guint n_gtask = scaled (100000);
  Series d, p, g, f;
  guint workers = dvt_runtime_get_max_workers (rt);

  if (!want ("map"))
    return;

  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 4; k++)
      switch ((rep + k) % 4)
        {
        case 0: MEASURE (d, rep, map_dvt (rt, n)); break;
        case 1: MEASURE (p, rep, thread_pool_run (n, workers)); break;
        case 2: MEASURE (g, rep, gtask_per_item_run (n_gtask)); break;
        default: MEASURE (f, rep, counter_loop_run (n, workers)); break;
        }
  burners_stop ();

  report_series ("map_blocking 1M trivial items", "items/s", HIGHER_IS_BETTER,
                 &d, "GThreadPool push+wait", &p, 5, FLOOR_COUNTER, &f, 0);
  report_series ("map_blocking 1M trivial items", "items/s", HIGHER_IS_BETTER,
                 &d, "one GTask per item", &g, 5, FLOOR_COUNTER, &f, 0);
  /* No target: the same items claimed one by one with nothing else. */
  report_series ("floor: atomic-counter loop 1M", "items/s", HIGHER_IS_BETTER,
                 &f, "GThreadPool push+wait", &p, 0, NULL, NULL, 0);
}

static void
case_submit (DvtRuntime *rt)
{
  guint n = scaled (100000);
  Series d, p, g, f;

  if (!want ("submit"))
    return;

  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 4; k++)
      switch ((rep + k) % 4)
        {
        case 0: MEASURE (d, rep, submit_dvt (rt, n)); break;
        case 1:
          MEASURE (p, rep, thread_pool_run (n, dvt_runtime_get_max_workers (rt)));
          break;
        case 2: MEASURE (g, rep, gtask_per_item_run (n)); break;
        default: MEASURE (f, rep, gobject_floor (n)); break;
        }
  burners_stop ();

  /* No target: a GThreadPool moves bare pointers, a future is a GObject;
   * the row stays for information. */
  report_series ("submit+wait 100k", "tasks/s", HIGHER_IS_BETTER,
                 &d, "GThreadPool push+wait", &p, 0, FLOOR_GOBJECT, &f, 0);
  /* A future per item against a GTask per item, and within 2 floors: at
   * least half the rate at which one thread makes and drops GObjects. */
  report_series ("submit+wait 100k", "tasks/s", HIGHER_IS_BETTER,
                 &d, "one GTask per item", &g, 2.5, FLOOR_GOBJECT, &f, 2);
  /* No target: shows how far one GObject per future lets submit go. */
  report_series ("floor: GObject new+unref 100k", "objects/s", HIGHER_IS_BETTER,
                 &f, "GThreadPool push+wait", &p, 0, NULL, NULL, 0);
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
  Stamp t0;
  double rate;

  g_main_context_push_thread_default (context);
  t0 = stamp ();
  for (guint i = 0; i < n; i++)
    dvt_runtime_to_thread_async (rt, dvt_nop, NULL, NULL, NULL, NULL, dvt_done, &c);
  g_main_loop_run (c.loop);
  rate = per_second (t0, n);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (c.loop);
  g_main_context_unref (context);

  return rate;
}

static void
case_to_thread_async (DvtRuntime *rt)
{
  guint n = scaled (100000);
  Series d, g, f;

  if (!want ("to_thread_async"))
    return;

  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 3; k++)
      switch ((rep + k) % 3)
        {
        case 0: MEASURE (d, rep, to_thread_async_dvt (rt, n)); break;
        case 1: MEASURE (g, rep, gtask_per_item_run (n)); break;
        default: MEASURE (f, rep, gobject_floor (n)); break;
        }
  burners_stop ();

  report_series ("to_thread_async 100k from a loop", "tasks/s", HIGHER_IS_BETTER,
                 &d, "g_task_run_in_thread", &g, 3, FLOOR_GOBJECT, &f, 0);
}

/* ---- submit + wait, in parts ------------------------------------------ */

/* What submit + wait is made of, each part measured alone: how long a
 * submit takes while nothing runs, how long one worker takes per task to
 * run a full queue, and how long the last unref of an ended future takes;
 * against the parts of the GObject floor, a new and a last unref. Their
 * sum is what one thread would pay doing it all itself; submit + wait
 * measured beside it shows what running the parts on two cores at once
 * costs or saves. */

/* A job that holds the one worker of a runtime until @release opens.
 * It waits on a GCond, not on anything of Dovetail's: a parked wait of
 * the library's would let the pool start a compensating worker, which
 * would run the queue meanwhile. */
typedef struct
{
  Gate started;
  Gate release;
} Hold;

static void
dvt_hold_worker (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  Hold *hold = user_data;

  gate_open (&hold->started);
  gate_wait (&hold->release);
  dvt_task_return_int (task, 0);
}

typedef struct
{
  Series submit;  /* µs per submit, nothing running */
  Series run;     /* µs per task, one worker running the queue */
  Series unref;   /* µs per last unref of an ended future */
  Series serial;  /* the sum of the three */
} SubmitParts;

/* One repetition of each part, on @rt1, a runtime of one worker. */
static void
submit_parts_run (DvtRuntime  *rt1,
                  guint        n,
                  SubmitParts *parts,
                  guint        rep)
{
  Hold hold = { 0 };
  DvtTask **tasks = g_new (DvtTask *, n);
  DvtTask *holder;
  Stamp t0;

  holder = dvt_runtime_submit (rt1, dvt_hold_worker, &hold, NULL, NULL, NULL, NULL);
  gate_wait (&hold.started);

  t0 = stamp ();
  for (guint i = 0; i < n; i++)
    tasks[i] = dvt_runtime_submit (rt1, dvt_nop, NULL, NULL, NULL, NULL, NULL);
  MEASURE (parts->submit, rep, usec_per_item (t0, n));

  /* One worker runs the queue in order: the last task ends last. */
  t0 = stamp ();
  gate_open (&hold.release);
  dvt_task_wait (tasks[n - 1], 0, NULL);
  MEASURE (parts->run, rep, usec_per_item (t0, n));

  for (guint i = 0; i < n; i++)
    dvt_task_wait (tasks[i], 0, NULL);
  dvt_task_wait (holder, 0, NULL);
  g_object_unref (holder);

  t0 = stamp ();
  for (guint i = 0; i < n; i++)
    g_object_unref (tasks[i]);
  MEASURE (parts->unref, rep, usec_per_item (t0, n));

  parts->serial.v[rep] = parts->submit.v[rep] + parts->run.v[rep] + parts->unref.v[rep];
  parts->serial.cpu[rep] = parts->submit.cpu[rep] + parts->run.cpu[rep] + parts->unref.cpu[rep];
  g_free (tasks);
}

/* The floor in the same parts: µs per g_object_new() into @created, and
 * per last g_object_unref() into @released. */
static void
gobject_floor_parts (guint   n,
                     Series *created,
                     Series *released,
                     guint   rep)
{
  GObject **objects = g_new (GObject *, n);
  Stamp t0 = stamp ();

  for (guint i = 0; i < n; i++)
    objects[i] = g_object_new (G_TYPE_OBJECT, NULL);
  MEASURE (*created, rep, usec_per_item (t0, n));

  t0 = stamp ();
  for (guint i = 0; i < n; i++)
    g_object_unref (objects[i]);
  MEASURE (*released, rep, usec_per_item (t0, n));
  g_free (objects);
}

/* submit + wait as case_submit() measures it, on @rt: µs per task into
 * @together, and µs per submit, the workers running meanwhile, into
 * @submits. */
static void
submit_wait_phases (DvtRuntime *rt,
                    guint       n,
                    Series     *together,
                    Series     *submits,
                    guint       rep)
{
  DvtTask **tasks = g_new (DvtTask *, n);
  Stamp t0 = stamp ();

  for (guint i = 0; i < n; i++)
    tasks[i] = dvt_runtime_submit (rt, dvt_nop, NULL, NULL, NULL, NULL, NULL);
  MEASURE (*submits, rep, usec_per_item (t0, n));
  for (guint i = 0; i < n; i++)
    {
      dvt_task_wait (tasks[i], 0, NULL);
      g_object_unref (tasks[i]);
    }
  MEASURE (*together, rep, usec_per_item (t0, n));
  g_free (tasks);
}

static void
case_submit_parts (DvtRuntime *rt)
{
  guint n = scaled (100000);
  DvtRuntime *rt1;
  SubmitParts parts;
  Series created, released, floor, together, submits;

  if (!want ("submit+wait in parts"))
    return;

  rt1 = dvt_runtime_new (1);
  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    {
      for (guint k = 0; k < 3; k++)
        switch ((rep + k) % 3)
          {
          case 0: submit_parts_run (rt1, n, &parts, rep); break;
          case 1: gobject_floor_parts (n, &created, &released, rep); break;
          default: submit_wait_phases (rt, n, &together, &submits, rep); break;
          }
      floor.v[rep] = created.v[rep] + released.v[rep];
      floor.cpu[rep] = created.cpu[rep] + released.cpu[rep];
    }
  burners_stop ();
  dvt_runtime_shutdown (rt1, TRUE, FALSE);
  g_object_unref (rt1);

  /* No targets: these rows say where the time of submit + wait goes. */
  report_series ("submit+wait in parts: submit", "us", LOWER_IS_BETTER,
                 &parts.submit, "GObject new", &created, 0, NULL, NULL, 0);
  report_series ("submit+wait in parts: run, 1 worker", "us", LOWER_IS_BETTER,
                 &parts.run, "GObject new+unref", &floor, 0, NULL, NULL, 0);
  report_series ("submit+wait in parts: last unref", "us", LOWER_IS_BETTER,
                 &parts.unref, "GObject last unref", &released, 0, NULL, NULL, 0);
  report_series ("submit+wait in parts: the 3, one by one", "us", LOWER_IS_BETTER,
                 &parts.serial, "GObject new+unref", &floor, 0, NULL, NULL, 0);
  report_series ("submit+wait in parts: submit+wait", "us", LOWER_IS_BETTER,
                 &together, "the 3 parts, one by one", &parts.serial, 0, NULL, NULL, 0);
  report_series ("submit+wait in parts: submit, workers running", "us", LOWER_IS_BETTER,
                 &submits, "submit, nothing running", &parts.submit, 0, NULL, NULL, 0);
}

/* ---- many submitters --------------------------------------------------- */

/* SUBMITTERS threads submit at once, each as the one thread of
 * case_submit does: n tasks, then a wait for each. */
#define SUBMITTERS 8

typedef struct
{
  DvtRuntime  *rt;      /* NULL: push into pool */
  GThreadPool *pool;
  guint        n;       /* per submitter */
  Gate         start;
} Submitters;

static gpointer
submitter_main (gpointer data)
{
  Submitters *s = data;
  DvtTask **tasks = s->rt != NULL ? g_new (DvtTask *, s->n) : NULL;

  gate_wait (&s->start);
  if (s->rt != NULL)
    submit_and_wait (s->rt, tasks, s->n, NULL, 0);
  else
    for (guint i = 0; i < s->n; i++)
      g_thread_pool_push (s->pool, GUINT_TO_POINTER (i + 1), NULL);
  g_free (tasks);

  return NULL;
}

/* Starts the submitters of @s, lets them go at once and waits for them:
 * tasks per second from the moment they go, over all of them. Without a
 * runtime, @b counts the pool's items down and is waited for too. */
static double
submitters_run (Submitters *s,
                PoolBatch  *b)
{
  GThread *threads[SUBMITTERS];
  Stamp t0;

  g_mutex_init (&s->start.lock);
  g_cond_init (&s->start.cond);
  s->start.open = FALSE;
  for (guint i = 0; i < SUBMITTERS; i++)
    threads[i] = g_thread_new ("bench-submitter", submitter_main, s);
  /* Let them reach the gate. */
  g_usleep (10000);

  t0 = stamp ();
  gate_open (&s->start);
  for (guint i = 0; i < SUBMITTERS; i++)
    g_thread_join (threads[i]);
  if (b != NULL)
    pool_batch_wait (b);
  g_mutex_clear (&s->start.lock);
  g_cond_clear (&s->start.cond);

  return per_second (t0, SUBMITTERS * s->n);
}

/* Tasks per second, over all submitters. */
static double
many_submitters_dvt (DvtRuntime *rt,
                     guint       n)
{
  Submitters s = { rt, NULL, n };

  return submitters_run (&s, NULL);
}

/* The same into one GThreadPool of @threads threads, counted down by its
 * items. */
static double
many_pushers_thread_pool (guint n,
                          guint threads)
{
  PoolBatch b = { 0 };
  Submitters s = { NULL, NULL, n };
  double rate;

  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  b.remaining = (int) (SUBMITTERS * n);
  s.pool = g_thread_pool_new (pool_item, &b, (int) threads, FALSE, NULL);
  rate = submitters_run (&s, &b);
  g_thread_pool_free (s.pool, FALSE, TRUE);
  g_mutex_clear (&b.lock);
  g_cond_clear (&b.cond);

  return rate;
}

static void
case_many_submitters (DvtRuntime *rt)
{
  guint n = scaled (100000);
  Series d, p, one;

  if (!want ("submitters"))
    return;

  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 3; k++)
      switch ((rep + k) % 3)
        {
        case 0: MEASURE (d, rep, many_submitters_dvt (rt, n)); break;
        case 1:
          MEASURE (p, rep, many_pushers_thread_pool (n, dvt_runtime_get_max_workers (rt)));
          break;
        default: MEASURE (one, rep, submit_dvt (rt, n)); break;
        }
  burners_stop ();

  /* No target against the pool. The floor is one submitter of the same
   * run: eight at once may cost each task at most twice what one does. */
  report_series ("submit+wait, 8 submitters x100k", "tasks/s", HIGHER_IS_BETTER,
                 &d, "GThreadPool, 8 pushers+wait", &p, 0,
                 "submit+wait, 1 submitter", &one, 2);
}

/* ---- priorities ------------------------------------------------------------ */

/* Tasks at mixed priorities through one worker: the priority lane of the
 * pool against a GThreadPool that sorts its queue
 * (g_thread_pool_set_sort_function()). */
static const int bench_priorities[] = {
  G_PRIORITY_DEFAULT, G_PRIORITY_HIGH, G_PRIORITY_LOW, G_PRIORITY_DEFAULT_IDLE, 50,
};

typedef struct
{
  int   priority;
  guint seq;
} SortedItem;

static gint
sorted_item_compare (gconstpointer a,
                     gconstpointer b,
                     gpointer      user_data)
{
  const SortedItem *x = a, *y = b;

  if (x->priority != y->priority)
    return x->priority < y->priority ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static double
priority_thread_pool (guint n)
{
  SortedItem *items = g_new (SortedItem, n);
  gpointer *pointers = g_new (gpointer, n);
  double rate;

  for (guint i = 0; i < n; i++)
    {
      items[i] = (SortedItem) { bench_priorities[i % G_N_ELEMENTS (bench_priorities)], i };
      pointers[i] = &items[i];
    }
  rate = thread_pool_push_all (n, 1, pointers, sorted_item_compare);
  g_free (pointers);
  g_free (items);

  return rate;
}

static void
case_priority (void)
{
  guint n = scaled (100000);
  DvtOptions *options[G_N_ELEMENTS (bench_priorities)];
  DvtRuntime *rt;
  Series d, p;

  if (!want ("priorit"))
    return;

  rt = dvt_runtime_new (1);
  for (guint i = 0; i < G_N_ELEMENTS (options); i++)
    {
      options[i] = dvt_options_new ();
      dvt_options_set_priority (options[i], bench_priorities[i]);
    }

  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 2; k++)
      switch ((rep + k) % 2)
        {
        case 0:
          MEASURE (d, rep, submit_all_dvt (rt, n, options, G_N_ELEMENTS (options)));
          break;
        default: MEASURE (p, rep, priority_thread_pool (n)); break;
        }
  burners_stop ();

  /* Target 1x: a heap beside the default lane against GLib's sorted
   * insertion. */
  report_series ("1 worker, 100k at mixed priorities", "tasks/s", HIGHER_IS_BETTER,
                 &d, "GThreadPool with a sort function", &p, 1, NULL, NULL, 0);

  for (guint i = 0; i < G_N_ELEMENTS (options); i++)
    g_object_unref (options[i]);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);
}

/* ---- wait_async: a future awaited from a main loop ----------------------- */

/* One future at a time: submit, wait_async, and the callback submits the
 * next, as a main-loop program awaiting one result after another does. */
typedef struct
{
  DvtRuntime *rt;
  Countdown   c;
} WaitChain;

static void wait_chain_next (WaitChain *w);

static void
wait_chain_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  WaitChain *w = data;

  dvt_task_wait_finish (DVT_TASK (source), result, NULL);
  if (--w->c.remaining == 0)
    g_main_loop_quit (w->c.loop);
  else
    wait_chain_next (w);
}

static void
wait_chain_next (WaitChain *w)
{
  DvtTask *task = dvt_runtime_submit (w->rt, dvt_nop, NULL, NULL, NULL, NULL, NULL);

  dvt_task_wait_async (task, NULL, wait_chain_done, w);
  g_object_unref (task);
}

/* µs per round trip. */
static double
wait_async_dvt (DvtRuntime *rt,
                guint       n)
{
  GMainContext *context = g_main_context_new ();
  WaitChain w = { rt, { (int) n, g_main_loop_new (context, FALSE) } };
  Stamp t0;
  double us;

  g_main_context_push_thread_default (context);
  t0 = stamp ();
  wait_chain_next (&w);
  g_main_loop_run (w.c.loop);
  us = usec_per_item (t0, n);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (w.c.loop);
  g_main_context_unref (context);

  return us;
}

static void gtask_chain_next (Countdown *c);

static void
gtask_chain_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      data)
{
  Countdown *c = data;

  g_task_propagate_int (G_TASK (result), NULL);
  if (--c->remaining == 0)
    g_main_loop_quit (c->loop);
  else
    gtask_chain_next (c);
}

static void
gtask_chain_next (Countdown *c)
{
  GTask *task = g_task_new (NULL, NULL, gtask_chain_done, c);

  g_task_run_in_thread (task, gtask_nop);
  g_object_unref (task);
}

/* The same with g_task_run_in_thread and its callback: µs per round trip. */
static double
wait_async_gtask (guint n)
{
  GMainContext *context = g_main_context_new ();
  Countdown c = { (int) n, g_main_loop_new (context, FALSE) };
  Stamp t0;
  double us;

  g_main_context_push_thread_default (context);
  t0 = stamp ();
  gtask_chain_next (&c);
  g_main_loop_run (c.loop);
  us = usec_per_item (t0, n);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (c.loop);
  g_main_context_unref (context);

  return us;
}

static void
case_wait_async (DvtRuntime *rt)
{
  guint n = scaled (20000);
  Series d, g, f;

  if (!want ("wait_async"))
    return;

  burners_start (busy);
  for (guint rep = 0; rep < REPS; rep++)
    for (guint k = 0; k < 3; k++)
      switch ((rep + k) % 3)
        {
        case 0: MEASURE (d, rep, wait_async_dvt (rt, n)); break;
        case 1: MEASURE (g, rep, wait_async_gtask (n)); break;
        default: MEASURE (f, rep, spin_ping_pong ()); break;
        }
  burners_stop ();

  report_series ("submit+wait_async round trip from a loop", "us", LOWER_IS_BETTER,
                 &d, "g_task_run_in_thread+callback", &g, 2, FLOOR_PING_PONG, &f, 0);
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

/* Runs a measurement of case_memory() in a new process of this program
 * (--memory-child=@which), so that each figure starts from a fresh heap:
 * allocator caches filled by one side must not serve the other. A new
 * program, not fork(): a child forked from this multi-threaded process
 * may find one of GLib's locks (g_slice's, GThreadPool's) held by a
 * thread it does not have, and hang. */
static double
in_child (const char *which,
          guint       n)
{
  g_autofree char *arg = g_strdup_printf ("--memory-child=%s", which);
  g_autofree char *items = g_strdup_printf ("--memory-items=%u", n);
  const char *argv[] = { "/proc/self/exe", arg, items, NULL };
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                     &out, NULL, &status, &error) ||
      !g_spawn_check_wait_status (status, &error))
    g_error ("the memory measurement failed: %s", error->message);

  return g_ascii_strtod (out, NULL);
}

/* --memory-child: one measurement, printed; see in_child(). */
static int
memory_child (const char *which,
              guint       n)
{
  double r;

  if (g_strcmp0 (which, "dvt") == 0)
    r = dvt_bytes_per_queued (n);
  else if (g_strcmp0 (which, "gtask") == 0)
    r = gtask_bytes_per_queued (n);
  else
    {
      g_printerr ("--memory-child: dvt or gtask\n");
      return 2;
    }
  g_print ("%.17g\n", r);

  return 0;
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
      d[rep] = in_child ("dvt", n);
      g[rep] = in_child ("gtask", n);
    }

  report (&(Row) { "memory per queued task", "bytes", LOWER_IS_BETTER,
                   median (d, REPS), 0, "one queued GTask", median (g, REPS), 0,
                   1, NULL, 0 });
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

  report (&(Row) { "idle runtime CPU over 2 s", "% of a core", LOWER_IS_BETTER,
                   median (d, REPS), 0, "1% limit", 1.0, 0, 1, NULL, 0 });
}

int
main (int   argc,
      char *argv[])
{
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON, one object per line", NULL },
    { "scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt_scale, "Scale the number of items (default 1)", "F" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "Run only the cases whose name contains S", "S" },
    { "busy", 0, 0, G_OPTION_ARG_INT, &opt_busy, "Run the cases beside N CPU-burning processes only (default: with none, then 1, then 2)", "N" },
    { "scaling", 0, 0, G_OPTION_ARG_NONE, &opt_scaling, "Print the cost per item of the per-item cases at 1k, 10k, 100k and 1M items", NULL },
    { "memory-child", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_memory_child, NULL, NULL },
    { "memory-items", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_memory_items, NULL, NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- Dovetail benchmarks");
  g_autoptr(GError) error = NULL;
  static const int default_levels[] = { 0, 1, 2 };
  const int *levels = default_levels;
  guint n_levels = G_N_ELEMENTS (default_levels);
  DvtRuntime *rt;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (opt_memory_child != NULL)
    return memory_child (opt_memory_child, MAX (opt_memory_items, 1));
  if (opt_busy > MAX_BURNERS)
    {
      g_printerr ("--busy: at most %d\n", MAX_BURNERS);
      return 2;
    }
  if (opt_busy >= 0)
    {
      levels = &opt_busy;
      n_levels = 1;
    }

  /* Burners never outlive the benchmark: they die with the thread that
   * started them, and an interrupted run kills them first. */
  signal (SIGINT, on_fatal_signal);
  signal (SIGTERM, on_fatal_signal);
  signal (SIGHUP, on_fatal_signal);
  signal (SIGABRT, on_fatal_signal);

  if (opt_scaling)
    {
      busy = MAX (opt_busy, 0);
      rt = dvt_runtime_new (0);
      burners_start (busy);
      run_scaling (rt);
      burners_stop ();
      dvt_runtime_shutdown (rt, TRUE, FALSE);
      g_object_unref (rt);
      return 0;
    }

  if (!opt_json)
    g_print ("%-34s %4s %11s %-9s %-28s %11s %8s %6s %13s %7s %6s %4s  %s\n", "case", "busy",
             "dovetail", "unit", "baseline", "baseline", "speed-up", "target",
             "cpu us/item", "x floor", "max", "met", "floor");

  for (guint l = 0; l < n_levels; l++)
    {
      busy = levels[l];
      rt = dvt_runtime_new (0);
      case_round_trip (rt);
      case_round_trip_cancellable (rt);
      case_round_trip_two_idle ();
      case_run_blocking (rt);
      case_map (rt);
      case_submit (rt);
      case_submit_parts (rt);
      case_many_submitters (rt);
      case_to_thread_async (rt);
      case_wait_async (rt);
      case_priority ();
      dvt_runtime_shutdown (rt, TRUE, FALSE);
      g_object_unref (rt);
      /* What an idle runtime or a queue costs does not depend on load. */
      if (busy == 0)
        {
          case_memory ();
          case_idle ();
        }
    }

  return 0;
}
