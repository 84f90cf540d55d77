/* bench-queue.c: DvtQueue (and the DvtChannel and DvtBatcher built on a
 * runtime) against GAsyncQueue, side by side in one process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every case measures DvtQueue and its GLib baseline alternately, REPS
 * times, and reports the medians and their ratio, in the format of
 * dvt-bench.c. Output: a table, or with --json one JSON object per case.
 */

#include <dovetail.h>
#include <string.h>

#define REPS 5

static gboolean opt_json;
static double opt_scale = 1.0;
static char *opt_only;

/* ---- helpers (as in dvt-bench.c) ------------------------------------------- */

static int
cmp_double (gconstpointer a,
            gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
median (double *v,
        guint   n)
{
  qsort (v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

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

/* Items are the numbers 1..n as pointers; every consumer checks the sum. */
#define ITEM(i) GUINT_TO_POINTER (i)

/* ---- blocking push+pop between two threads ------------------------------------- */

typedef struct
{
  DvtQueue    *dvt;
  GAsyncQueue *glib;
  guint        n;
} Stream;

static gpointer
dvt_producer (gpointer data)
{
  Stream *s = data;

  for (guint i = 1; i <= s->n; i++)
    if (!dvt_queue_push_pointer_blocking (s->dvt, ITEM (i), NULL, 0, 0, NULL, NULL))
      g_error ("push failed");
  return NULL;
}

static gpointer
glib_producer (gpointer data)
{
  Stream *s = data;

  for (guint i = 1; i <= s->n; i++)
    g_async_queue_push (s->glib, ITEM (i));
  return NULL;
}

static void
check_sum (guint64 sum,
           guint   n)
{
  if (sum != (guint64) n * (n + 1) / 2)
    g_error ("lost or repeated items: sum %" G_GUINT64_FORMAT, sum);
}

/* Items per second. */
static double
stream_dvt (guint n)
{
  Stream s = { dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0), NULL, n };
  gint64 start = g_get_monotonic_time ();
  GThread *thread = g_thread_new ("producer", dvt_producer, &s);
  guint64 sum = 0;

  for (guint i = 0; i < n; i++)
    sum += GPOINTER_TO_UINT (dvt_queue_pop_pointer_blocking (s.dvt, 0, NULL, NULL));
  g_thread_join (thread);
  check_sum (sum, n);
  g_object_unref (s.dvt);

  return n / ((g_get_monotonic_time () - start) / 1e6);
}

static double
stream_glib (guint n)
{
  Stream s = { NULL, g_async_queue_new (), n };
  gint64 start = g_get_monotonic_time ();
  GThread *thread = g_thread_new ("producer", glib_producer, &s);
  guint64 sum = 0;

  for (guint i = 0; i < n; i++)
    sum += GPOINTER_TO_UINT (g_async_queue_pop (s.glib));
  g_thread_join (thread);
  check_sum (sum, n);
  g_async_queue_unref (s.glib);

  return n / ((g_get_monotonic_time () - start) / 1e6);
}

/* ---- a round trip through two queues --------------------------------------------- */

typedef struct
{
  DvtQueue    *dvt_there, *dvt_back;
  GAsyncQueue *glib_there, *glib_back;
  guint        n;
} PingPong;

static gpointer
dvt_echo (gpointer data)
{
  PingPong *p = data;

  for (guint i = 0; i < p->n; i++)
    dvt_queue_push_pointer_blocking (p->dvt_back,
                                     dvt_queue_pop_pointer_blocking (p->dvt_there, 0, NULL, NULL),
                                     NULL, 0, 0, NULL, NULL);
  return NULL;
}

static gpointer
glib_echo (gpointer data)
{
  PingPong *p = data;

  for (guint i = 0; i < p->n; i++)
    g_async_queue_push (p->glib_back, g_async_queue_pop (p->glib_there));
  return NULL;
}

/* Microseconds per round trip. */
static double
ping_pong_dvt (guint n)
{
  PingPong p = { dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0), dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0),
                 NULL, NULL, n };
  GThread *thread = g_thread_new ("echo", dvt_echo, &p);
  gint64 start = g_get_monotonic_time ();
  guint64 sum = 0;

  for (guint i = 1; i <= n; i++)
    {
      dvt_queue_push_pointer_blocking (p.dvt_there, ITEM (i), NULL, 0, 0, NULL, NULL);
      sum += GPOINTER_TO_UINT (dvt_queue_pop_pointer_blocking (p.dvt_back, 0, NULL, NULL));
    }
  start = g_get_monotonic_time () - start;
  g_thread_join (thread);
  check_sum (sum, n);
  g_object_unref (p.dvt_there);
  g_object_unref (p.dvt_back);

  return (double) start / n;
}

static double
ping_pong_glib (guint n)
{
  PingPong p = { NULL, NULL, g_async_queue_new (), g_async_queue_new (), n };
  GThread *thread = g_thread_new ("echo", glib_echo, &p);
  gint64 start = g_get_monotonic_time ();
  guint64 sum = 0;

  for (guint i = 1; i <= n; i++)
    {
      g_async_queue_push (p.glib_there, ITEM (i));
      sum += GPOINTER_TO_UINT (g_async_queue_pop (p.glib_back));
    }
  start = g_get_monotonic_time () - start;
  g_thread_join (thread);
  check_sum (sum, n);
  g_async_queue_unref (p.glib_there);
  g_async_queue_unref (p.glib_back);

  return (double) start / n;
}

/* ---- a thread feeding a main loop -------------------------------------------------
 *
 * A producer thread pushes n items; the main thread consumes them on a
 * GMainLoop. DvtQueue: a chain of dvt_queue_pop_async() calls. GLib: the
 * usual hand-off, g_async_queue_push() and a g_idle_add() per item on the
 * loop's context that pops one item. */

typedef struct
{
  DvtQueue     *dvt;
  GAsyncQueue  *glib;
  GMainContext *context;
  GMainLoop    *loop;
  guint         n;
  guint         got;
  guint64       sum;
} Feed;

static void
on_dvt_pop (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Feed *f = user_data;
  gpointer item = dvt_queue_pop_pointer_finish (f->dvt, result, NULL);

  f->sum += GPOINTER_TO_UINT (item);
  if (++f->got == f->n)
    g_main_loop_quit (f->loop);
  else
    dvt_queue_pop_async (f->dvt, NULL, on_dvt_pop, f);
}

static gpointer
feed_dvt_producer (gpointer data)
{
  Feed *f = data;

  for (guint i = 1; i <= f->n; i++)
    dvt_queue_push_pointer_blocking (f->dvt, ITEM (i), NULL, 0, 0, NULL, NULL);
  return NULL;
}

static gboolean
on_glib_idle (gpointer user_data)
{
  Feed *f = user_data;

  f->sum += GPOINTER_TO_UINT (g_async_queue_try_pop (f->glib));
  if (++f->got == f->n)
    g_main_loop_quit (f->loop);
  return G_SOURCE_REMOVE;
}

static gpointer
feed_glib_producer (gpointer data)
{
  Feed *f = data;

  for (guint i = 1; i <= f->n; i++)
    {
      GSource *idle = g_idle_source_new ();

      g_async_queue_push (f->glib, ITEM (i));
      g_source_set_callback (idle, on_glib_idle, f, NULL);
      g_source_attach (idle, f->context);
      g_source_unref (idle);
    }
  return NULL;
}

/* Items per second. */
static double
feed_run (Feed         *f,
          GThreadFunc   producer,
          guint         n)
{
  gint64 start;
  GThread *thread;

  f->context = g_main_context_new ();
  f->loop = g_main_loop_new (f->context, FALSE);
  f->n = n;
  g_main_context_push_thread_default (f->context);

  start = g_get_monotonic_time ();
  if (f->dvt != NULL)
    dvt_queue_pop_async (f->dvt, NULL, on_dvt_pop, f);
  thread = g_thread_new ("producer", producer, f);
  g_main_loop_run (f->loop);
  start = g_get_monotonic_time () - start;
  g_thread_join (thread);
  check_sum (f->sum, n);

  g_main_context_pop_thread_default (f->context);
  g_main_loop_unref (f->loop);
  g_main_context_unref (f->context);

  return n / (start / 1e6);
}

static double
feed_dvt (guint n)
{
  Feed f = { .dvt = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0) };
  double rate = feed_run (&f, feed_dvt_producer, n);

  g_object_unref (f.dvt);
  return rate;
}

static double
feed_glib (guint n)
{
  Feed f = { .glib = g_async_queue_new () };
  double rate = feed_run (&f, feed_glib_producer, n);

  g_async_queue_unref (f.glib);
  return rate;
}

/* The floor of any GTask-based pop on a loop: a chain of bare GTasks, each
 * returned at once and called back in the next iteration, no queue. */
typedef struct
{
  GMainLoop *loop;
  guint      n;
  guint      got;
} Chain;

static void chain_next (Chain *c);

static void
on_chain (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Chain *c = user_data;

  g_task_propagate_boolean (G_TASK (result), NULL);
  if (++c->got == c->n)
    g_main_loop_quit (c->loop);
  else
    chain_next (c);
}

static void
chain_next (Chain *c)
{
  GTask *task = g_task_new (NULL, NULL, on_chain, c);

  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static double
gtask_floor (guint n)
{
  GMainContext *context = g_main_context_new ();
  Chain c = { g_main_loop_new (context, FALSE), n, 0 };
  gint64 start;

  g_main_context_push_thread_default (context);
  start = g_get_monotonic_time ();
  chain_next (&c);
  g_main_loop_run (c.loop);
  start = g_get_monotonic_time () - start;
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (c.loop);
  g_main_context_unref (context);

  return n / (start / 1e6);
}

/* ---- a channel: a producer on a worker, a consumer thread ------------------------
 *
 * dvt_runtime_produce() with a bounded buffer of 256 values (ints, as
 * GValues: copied in, moved out) against a GAsyncQueue (unbounded, bare
 * pointers) between a producer thread and the consumer. */

#define CHANNEL_CAPACITY 256

static gboolean
count_to (DvtChannel    *channel,
          GCancellable  *cancellable,
          gpointer       data,
          GError       **error)
{
  guint n = GPOINTER_TO_UINT (data);
  GValue value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_UINT);
  for (guint i = 1; i <= n; i++)
    {
      g_value_set_uint (&value, i);
      if (!dvt_channel_send (channel, &value, cancellable, error))
        return FALSE;
    }
  return TRUE;
}

/* Items per second. */
static double
channel_dvt (guint n)
{
  DvtRuntime *runtime = dvt_runtime_new (2);
  gint64 start = g_get_monotonic_time ();
  DvtChannel *channel = dvt_runtime_produce (runtime, count_to, GUINT_TO_POINTER (n), NULL,
                                             CHANNEL_CAPACITY, NULL, NULL, NULL);
  GValue value = G_VALUE_INIT;
  guint64 sum = 0;
  double rate;

  while (dvt_channel_receive_blocking (channel, 0, NULL, &value, NULL))
    {
      sum += g_value_get_uint (&value);
      g_value_unset (&value);
    }
  rate = n / ((g_get_monotonic_time () - start) / 1e6);
  check_sum (sum, n);
  g_object_unref (channel);
  dvt_runtime_shutdown (runtime, TRUE, FALSE);
  g_object_unref (runtime);

  return rate;
}

/* The same with a GAsyncQueue between two threads of our own. */
static double
channel_glib (guint n)
{
  return stream_glib (n);
}

/* ---- a batcher: items from one thread, run in batches of 100 ----------------------
 *
 * DvtBatcher (max-items 100, max-wait 10 ms; every batch a task on a
 * worker of a two-worker runtime) against a GAsyncQueue feeding a batching
 * thread of our own that collects 100 items (or what came within 10 ms)
 * and runs each batch itself. */

#define BATCH_ITEMS 100

typedef struct
{
  guint64 sum;   /* atomic adds */
} BatchSink;

static void
sum_batch (DvtTask       *task,
           GPtrArray     *items,
           GCancellable  *cancellable,
           gpointer       data,
           GError       **error)
{
  BatchSink *sink = data;
  guint64 sum = 0;

  for (guint i = 0; i < items->len; i++)
    sum += g_value_get_uint (g_ptr_array_index (items, i));
  __atomic_fetch_add (&sink->sum, sum, __ATOMIC_RELAXED);
}

static double
batcher_dvt (guint n)
{
  DvtRuntime *runtime = dvt_runtime_new (2);
  BatchSink sink = { 0 };
  gint64 start = g_get_monotonic_time ();
  DvtBatcher *batcher = dvt_batcher_new (runtime, sum_batch, &sink, NULL,
                                         BATCH_ITEMS, 0.01, NULL, NULL);
  GValue value = G_VALUE_INIT;
  double rate;

  g_value_init (&value, G_TYPE_UINT);
  for (guint i = 1; i <= n; i++)
    {
      g_value_set_uint (&value, i);
      dvt_batcher_add (batcher, &value, NULL);
    }
  if (!dvt_batcher_close_blocking (batcher, 0, NULL, NULL))
    g_error ("a batch failed");
  rate = n / ((g_get_monotonic_time () - start) / 1e6);
  check_sum (sink.sum, n);
  g_object_unref (batcher);
  dvt_runtime_shutdown (runtime, TRUE, FALSE);
  g_object_unref (runtime);

  return rate;
}

#define END_OF_ITEMS GUINT_TO_POINTER (G_MAXUINT)

static gpointer
batching_thread (gpointer data)
{
  GAsyncQueue *queue = data;
  gpointer batch[BATCH_ITEMS];
  guint64 sum = 0;
  guint len = 0;
  gboolean end = FALSE;

  while (!end)
    {
      gint64 deadline = g_get_monotonic_time () + 10000;

      len = 0;
      while (len < BATCH_ITEMS)
        {
          gint64 wait = deadline - g_get_monotonic_time ();
          gpointer item = len == 0 ? g_async_queue_pop (queue)
                                   : g_async_queue_timeout_pop (queue, MAX (wait, 0));

          if (item == NULL)
            break;
          if (item == END_OF_ITEMS)
            {
              end = TRUE;
              break;
            }
          batch[len++] = item;
        }
      for (guint i = 0; i < len; i++)
        sum += GPOINTER_TO_UINT (batch[i]);
    }

  return GSIZE_TO_POINTER ((gsize) sum);
}

static double
batcher_glib (guint n)
{
  GAsyncQueue *queue = g_async_queue_new ();
  gint64 start = g_get_monotonic_time ();
  GThread *thread = g_thread_new ("batching", batching_thread, queue);
  guint64 sum;
  double rate;

  for (guint i = 1; i <= n; i++)
    g_async_queue_push (queue, ITEM (i));
  g_async_queue_push (queue, END_OF_ITEMS);
  sum = (guint64) GPOINTER_TO_SIZE (g_thread_join (thread));
  rate = n / ((g_get_monotonic_time () - start) / 1e6);
  check_sum (sum, n);
  g_async_queue_unref (queue);

  return rate;
}

/* ---- cases ----------------------------------------------------------------------- */

typedef struct
{
  const char *name;
  const char *unit;
  Direction   direction;
  guint       n;
  double    (*dovetail) (guint n);
  const char *baseline_name;
  double    (*baseline) (guint n);
  double      target;
} Case;

int
main (int   argc,
      char *argv[])
{
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON, one object per line", NULL },
    { "scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt_scale, "Scale the number of items (default 1)", "F" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "Run only the cases whose name contains S", "S" },
    { NULL }
  };
  static const Case cases[] = {
    { "queue blocking push+pop 1M", "items/s", HIGHER_IS_BETTER, 1000000,
      stream_dvt, "GAsyncQueue push+pop", stream_glib, 1 },
    { "queue round trip (2 threads)", "us", LOWER_IS_BETTER, 100000,
      ping_pong_dvt, "GAsyncQueue round trip", ping_pong_glib, 1 },
    { "queue pop_async on a loop 200k", "items/s", HIGHER_IS_BETTER, 200000,
      feed_dvt, "GAsyncQueue+g_idle_add per item", feed_glib, 2 },
    /* No targets: what streaming through a channel and batching through a
     * batcher cost against hand-made GAsyncQueue equivalents. */
    { "channel from a worker 1M (cap 256)", "items/s", HIGHER_IS_BETTER, 1000000,
      channel_dvt, "GAsyncQueue producer thread", channel_glib, 0 },
    { "batcher 1M items, batches of 100", "items/s", HIGHER_IS_BETTER, 1000000,
      batcher_dvt, "GAsyncQueue + batching thread", batcher_glib, 0 },
    /* No target: how far one GTask per pop lets a chain of pops go. */
    { "floor: GTask chain on a loop 200k", "items/s", HIGHER_IS_BETTER, 200000,
      gtask_floor, "GAsyncQueue+g_idle_add per item", feed_glib, 0 },
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- DvtQueue benchmarks");
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  if (!opt_json)
    g_print ("%-34s %12s %-10s %-34s %12s  %s\n", "case", "dovetail", "unit",
             "baseline", "baseline", "speed-up");

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      double d[REPS], b[REPS];
      guint n = scaled (cases[c].n);

      if (!want (cases[c].name))
        continue;

      /* One warm-up of each, then alternating repetitions. */
      cases[c].dovetail (MAX (1, n / 10));
      cases[c].baseline (MAX (1, n / 10));
      for (guint rep = 0; rep < REPS; rep++)
        {
          d[rep] = cases[c].dovetail (n);
          b[rep] = cases[c].baseline (n);
        }
      report (cases[c].name, cases[c].unit, cases[c].direction, median (d, REPS),
              cases[c].baseline_name, median (b, REPS), cases[c].target);
    }

  return 0;
}
