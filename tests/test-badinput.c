/* test-badinput.c: every public entry point with bad arguments and
 * misbehaving work functions
 *
 * Three kinds of bad input, three kinds of answer:
 *
 * - programmer errors (NULL where not allowed, a wrong type, an
 *   out-of-range value, a set out value, a set error) give a
 *   g_return_if_fail() critical and a FALSE/NULL return;
 * - out-of-range property values give GObject's own warning and leave the
 *   property as it was;
 * - conditions reachable by ordinary use (a shut-down runtime, a blocking
 *   call on the loop thread, a work function that misbehaves) give a
 *   GError with a message a person can act on.
 *
 * Never a crash, a hang or a leak, and func_data_destroy runs exactly once
 * on every path that is not a programmer error (as in GLib, a call refused
 * by a critical owns nothing, so it frees nothing; it never frees twice).
 *
 * The entry points that take work share one table (entries[]) and one
 * runner per entry point, so each condition is tried on every one of them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- expecting criticals ----------------------------------------------- */

/* Dovetail's own g_critical() calls are structured log messages, which
 * GLib 2.74's g_test_expect_message() does not see: this log writer
 * swallows the ones a test expects, from any thread, and hands every
 * other message to GLib's writer (where G_DEBUG=fatal-warnings makes an
 * unexpected critical abort the test). */
static GMutex     expect_lock;
static GPtrArray *expected_criticals;  /* patterns not seen yet */

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
      message != NULL)
    {
      g_mutex_lock (&expect_lock);
      for (guint i = 0; expected_criticals != NULL && i < expected_criticals->len; i++)
        if (g_pattern_match_simple (g_ptr_array_index (expected_criticals, i), message))
          {
            g_ptr_array_remove_index (expected_criticals, i);
            g_mutex_unlock (&expect_lock);
            return G_LOG_WRITER_HANDLED;
          }
      g_mutex_unlock (&expect_lock);
    }

  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
expect_dvt_critical (const char *pattern)
{
  g_mutex_lock (&expect_lock);
  if (expected_criticals == NULL)
    expected_criticals = g_ptr_array_new ();
  g_ptr_array_add (expected_criticals, (gpointer) pattern);
  g_mutex_unlock (&expect_lock);
}

static guint
n_expected_criticals (void)
{
  guint n;

  g_mutex_lock (&expect_lock);
  n = expected_criticals != NULL ? expected_criticals->len : 0;
  g_mutex_unlock (&expect_lock);

  return n;
}

/* The expected criticals may come from another thread: give them time. */
static void
assert_dvt_criticals_seen (void)
{
  g_assert_true (POLL_UNTIL (n_expected_criticals () == 0, 20));
}

/* ---- helpers ----------------------------------------------------------- */

/* Like POLL_UNTIL, iterating this thread's default main context, where
 * callbacks and destroy notifies of async calls are delivered. */
#define POLL_ITERATING(expr, seconds)                                        \
  ({                                                                         \
    gint64 _end = g_get_monotonic_time () +                                  \
                  (gint64) ((seconds) * slow * G_USEC_PER_SEC);              \
    gboolean _ok;                                                            \
    while (!(_ok = !!(expr)) && g_get_monotonic_time () < _end)              \
      if (!g_main_context_iteration (NULL, FALSE))                           \
        g_usleep (500);                                                      \
    _ok;                                                                     \
  })

static void
drain_default_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
assert_message (const GError *error)
{
  g_assert_nonnull (error);
  g_assert_nonnull (error->message);
  g_assert_cmpuint (strlen (error->message), >, 10);
}

/* Once idle, every accepted call has ended exactly once. */
static void
assert_stats_settled (DvtRuntime *rt)
{
  g_autoptr(DvtStats) stats = NULL;

  g_assert_true (POLL_UNTIL (({ g_autoptr(DvtStats) s = dvt_runtime_get_stats (rt);
                                s->pending == 0 && s->running == 0; }), 20));
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, stats->done + stats->error + stats->cancelled);
}

static void
count_destroy (gpointer data)
{
  g_atomic_int_inc ((int *) data);
}

/* A runtime that is shut down (cancelling what is left) before its last
 * reference goes, as the library asks. */
typedef DvtRuntime TestRuntime;

static void
test_runtime_free (TestRuntime *rt)
{
  dvt_runtime_shutdown (rt, TRUE, TRUE);
  g_object_unref (rt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestRuntime, test_runtime_free)

/* An object of a type that no entry point takes where it is passed. */
static gpointer
wrong_object (void)
{
  static GObject *object;

  if (object == NULL)
    object = g_object_new (G_TYPE_OBJECT, NULL);

  return object;
}

/* A programmer's mistake refused with a critical is also reported in the
 * call's GError, so that language bindings raise. */
static void
assert_bad_argument (GError **error)
{
  g_assert_error (*error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (error);
}

/* ---- calls: one table for every entry point that takes work ------------ */

typedef struct _Call Call;

typedef struct
{
  const char *name;
  gboolean    async_func;   /* the work is a DvtAsyncFunc (on a main context) */
  gboolean    map;          /* the work is a map item */
  gboolean    async_items;  /* a map with DvtOptions:async-items */
  gboolean    future;       /* returns a DvtTask */
  gboolean    callback;     /* reports to a GAsyncReadyCallback */
  gboolean    blocking;     /* blocks until the work is done */
  gboolean    has_value;    /* takes an out GValue */
  gboolean    has_error;    /* takes a GError ** */
  gboolean  (*run) (Call *c);
} Entry;

/* One call through an entry point, run to its end. The work functions
 * below see it as their data. */
struct _Call
{
  const Entry   *entry;
  DvtRuntime    *rt;
  DvtOptions    *options;      /* always set; the entry adds async-items */
  gpointer       bad_runtime;  /* passed instead of rt, if set */
  gpointer       bad_options;  /* passed instead of options, if set */
  GCancellable  *cancellable;  /* not owned */
  DvtThreadFunc  func;         /* same signature as DvtAsyncFunc and DvtMapFunc */
  guint          n_items;      /* for maps */
  GValue        *value_arg;    /* passed instead of &value, if set */
  gboolean       refused;      /* a critical refuses the call: nothing comes back */

  /* the outcome */
  gboolean       ok;
  GError        *error;
  GValue         value;        /* a map's slot 0 */
  DvtTask       *task;
  GAsyncResult  *result;
  int            n_callbacks;

  /* what the work saw and did, from any thread */
  int            calls;
  int            destroyed;
  int            freed;        /* late pointer results freed */
  int            finished;     /* late completions done */
  Gate           gate;
  GThread       *late_thread;
  DvtTask       *kept;
  DvtTaskGroup  *group;        /* the group-submit and group-schedule entries' */
};

static void
call_data_destroy (gpointer data)
{
  Call *c = data;

  g_atomic_int_inc (&c->destroyed);
}

static DvtRuntime *
call_runtime (Call *c)
{
  return c->bad_runtime != NULL ? c->bad_runtime : c->rt;
}

static DvtOptions *
call_options (Call *c)
{
  return c->bad_options != NULL ? c->bad_options : c->options;
}

static GValue *
call_value (Call *c)
{
  return c->value_arg != NULL ? c->value_arg : &c->value;
}

static void
call_ready (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Call *c = user_data;

  g_assert_true (source == G_OBJECT (c->rt));
  g_assert_null (c->result);
  c->result = g_object_ref (result);
  c->n_callbacks++;
}

/* Waits for the callback of an async entry, on this thread's context. */
static gboolean
call_wait_callback (Call *c)
{
  if (c->refused)
    {
      drain_default_context ();
      g_assert_cmpint (c->n_callbacks, ==, 0);
      return FALSE;
    }

  g_assert_true (POLL_ITERATING (c->n_callbacks > 0, 60));
  /* Exactly one callback. */
  drain_default_context ();
  g_assert_cmpint (c->n_callbacks, ==, 1);

  return TRUE;
}

/* A map's results: slot 0 moves to c->value. */
static gboolean
call_take_results (Call   *c,
                   GArray *results)
{
  if (results == NULL)
    return FALSE;

  g_assert_cmpuint (results->len, ==, c->n_items);
  if (results->len > 0)
    {
      GValue *slot = &g_array_index (results, GValue, 0);

      c->value = *slot;
      memset (slot, 0, sizeof *slot);
    }
  g_array_unref (results);

  return TRUE;
}

static gboolean
run_run_blocking (Call *c)
{
  return dvt_runtime_run_blocking (call_runtime (c), c->func, c, call_data_destroy,
                                   call_options (c), c->cancellable, call_value (c),
                                   &c->error);
}

static gboolean
run_to_thread_blocking (Call *c)
{
  return dvt_runtime_to_thread_blocking (call_runtime (c), c->func, c, call_data_destroy,
                                         call_options (c), c->cancellable, call_value (c),
                                         &c->error);
}

static gboolean
run_to_thread_async (Call *c)
{
  dvt_runtime_to_thread_async (call_runtime (c), c->func, c, call_data_destroy,
                               call_options (c), c->cancellable, call_ready, c);
  if (!call_wait_callback (c))
    return FALSE;

  return dvt_runtime_to_thread_finish (c->rt, c->result, &c->value, &c->error);
}

static gboolean
wait_future (Call *c)
{
  if (c->task == NULL)
    return FALSE;
  if (!dvt_task_wait (c->task, 60 * slow, &c->error))
    return FALSE;

  return dvt_task_propagate_value (c->task, &c->value, &c->error);
}

static gboolean
run_schedule (Call *c)
{
  c->task = dvt_runtime_schedule (call_runtime (c), c->func, c, call_data_destroy,
                                  call_options (c), c->cancellable, &c->error);
  return wait_future (c);
}

static gboolean
run_submit (Call *c)
{
  c->task = dvt_runtime_submit (call_runtime (c), c->func, c, call_data_destroy,
                                call_options (c), c->cancellable, &c->error);
  return wait_future (c);
}

/* A new group of the call's runtime; a bad runtime stands for a bad group. */
static DvtTaskGroup *
call_group (Call *c)
{
  if (c->bad_runtime != NULL)
    return (DvtTaskGroup *) c->bad_runtime;
  if (c->rt == NULL)
    return NULL;
  g_clear_object (&c->group);
  c->group = dvt_task_group_new (c->rt);
  return c->group;
}

static gboolean
run_group_schedule (Call *c)
{
  c->task = dvt_task_group_schedule (call_group (c), c->func, c, call_data_destroy,
                                     call_options (c), c->cancellable, &c->error);
  return wait_future (c);
}

static gboolean
run_group_submit (Call *c)
{
  c->task = dvt_task_group_submit (call_group (c), c->func, c, call_data_destroy,
                                   call_options (c), c->cancellable, &c->error);
  return wait_future (c);
}

static gboolean
run_map_blocking (Call *c)
{
  return call_take_results (c, dvt_runtime_map_blocking (call_runtime (c), c->n_items,
                                                         c->func, c, call_data_destroy,
                                                         call_options (c), c->cancellable,
                                                         &c->error));
}

static gboolean
run_map_async (Call *c)
{
  dvt_runtime_map_async (call_runtime (c), c->n_items, c->func, c, call_data_destroy,
                         call_options (c), c->cancellable, call_ready, c);
  if (!call_wait_callback (c))
    return FALSE;

  return call_take_results (c, dvt_runtime_map_finish (c->rt, c->result, &c->error));
}

/*                                        async  map    items  future cb     block  value  error */
static const Entry entries[] = {
  { "run-blocking",                       TRUE,  FALSE, FALSE, FALSE, FALSE, TRUE,  TRUE,  TRUE,  run_run_blocking },
  { "to-thread-blocking",                 FALSE, FALSE, FALSE, FALSE, FALSE, TRUE,  TRUE,  TRUE,  run_to_thread_blocking },
  { "to-thread-async",                    FALSE, FALSE, FALSE, FALSE, TRUE,  FALSE, FALSE, FALSE, run_to_thread_async },
  { "schedule",                           TRUE,  FALSE, FALSE, TRUE,  FALSE, FALSE, FALSE, TRUE,  run_schedule },
  { "submit",                             FALSE, FALSE, FALSE, TRUE,  FALSE, FALSE, FALSE, TRUE,  run_submit },
  { "map-blocking",                       FALSE, TRUE,  FALSE, FALSE, FALSE, TRUE,  FALSE, TRUE,  run_map_blocking },
  { "map-async",                          FALSE, TRUE,  FALSE, FALSE, TRUE,  FALSE, FALSE, FALSE, run_map_async },
  { "map-blocking-async-items",           TRUE,  TRUE,  TRUE,  FALSE, FALSE, TRUE,  FALSE, TRUE,  run_map_blocking },
  { "map-async-async-items",              TRUE,  TRUE,  TRUE,  FALSE, TRUE,  FALSE, FALSE, FALSE, run_map_async },
  /* Last: tests name the entries above by their index. */
  { "group-schedule",                     TRUE,  FALSE, FALSE, TRUE,  FALSE, FALSE, FALSE, TRUE,  run_group_schedule },
  { "group-submit",                       FALSE, FALSE, FALSE, TRUE,  FALSE, FALSE, FALSE, TRUE,  run_group_submit },
};

static void
work_value (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  dvt_task_return_int (task, 42);
}

static void
call_init (Call        *c,
           const Entry *entry,
           DvtRuntime  *rt)
{
  memset (c, 0, sizeof *c);
  c->entry = entry;
  c->rt = rt;
  c->options = dvt_options_new ();
  if (entry->async_items)
    dvt_options_set_async_items (c->options, TRUE);
  c->func = work_value;
  c->n_items = 1;
  gate_init (&c->gate);
}

static gboolean
call_run (Call *c)
{
  c->ok = c->entry->run (c);
  return c->ok;
}

/* Drops what the call returned, then checks that the function's data was
 * freed exactly once. */
static void
call_assert_destroyed_once (Call *c)
{
  int destroyed;

  g_clear_object (&c->task);
  g_clear_object (&c->result);
  /* A group frees a member's data once its function will not run again,
   * or else (a member ended while its function ran on) with the group. */
  g_clear_object (&c->group);
  POLL_ITERATING (g_atomic_int_get (&c->destroyed) > 0, 20);
  /* Give a second destroy a chance to show. */
  g_usleep (2000);
  drain_default_context ();
  destroyed = g_atomic_int_get (&c->destroyed);
  if (destroyed != 1)
    g_test_message ("%s: func_data_destroy called %d times", c->entry->name, destroyed);
  g_assert_cmpint (destroyed, ==, 1);
}

static void
call_clear (Call *c)
{
  gate_open (&c->gate);
  if (c->late_thread != NULL)
    g_thread_join (c->late_thread);
  g_clear_object (&c->kept);
  g_clear_object (&c->task);
  g_clear_object (&c->group);
  g_clear_object (&c->result);
  drain_default_context ();
  g_assert_cmpint (g_atomic_int_get (&c->destroyed), <=, 1);
  if (G_IS_VALUE (&c->value))
    g_value_unset (&c->value);
  g_clear_error (&c->error);
  g_clear_object (&c->options);
  gate_clear (&c->gate);
}

static void
assert_int_value (const GValue *v,
                  gint64        expected)
{
  g_assert_true (G_VALUE_HOLDS_INT64 (v));
  g_assert_cmpint (g_value_get_int64 (v), ==, expected);
}

/* ---- programmer errors: the entry points that take work ---------------- */

typedef enum
{
  BAD_NULL_RUNTIME,
  BAD_WRONG_RUNTIME,
  BAD_NULL_FUNC,
  BAD_WRONG_OPTIONS,
  BAD_WRONG_CANCELLABLE,
  BAD_SET_VALUE,
  BAD_SET_ERROR,
  N_BAD_ARGS
} BadArg;

static const char *bad_arg_names[] = {
  "null-runtime",
  "wrong-runtime",
  "null-func",
  "wrong-options",
  "wrong-cancellable",
  "set-value",
  "set-error",
};

typedef struct
{
  const Entry *entry;
  BadArg       bad;
} BadCase;

static void
test_critical_entry (gconstpointer data)
{
  const BadCase *bc = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_auto(GValue) set_value = G_VALUE_INIT;
  Call c;

  call_init (&c, bc->entry, rt);
  c.refused = TRUE;

  switch (bc->bad)
    {
    case BAD_NULL_RUNTIME:
      c.bad_runtime = NULL;
      c.rt = NULL;
      break;
    case BAD_WRONG_RUNTIME:
      c.bad_runtime = wrong_object ();
      break;
    case BAD_NULL_FUNC:
      c.func = NULL;
      break;
    case BAD_WRONG_OPTIONS:
      c.bad_options = wrong_object ();
      break;
    case BAD_WRONG_CANCELLABLE:
      c.cancellable = wrong_object ();
      break;
    case BAD_SET_VALUE:
      g_value_init (&set_value, G_TYPE_STRING);
      c.value_arg = &set_value;
      break;
    case BAD_SET_ERROR:
      c.error = g_error_new_literal (TEST_ERROR, 1, "already set");
      break;
    case N_BAD_ARGS:
      g_assert_not_reached ();
    }

  EXPECT_ASSERTION (g_assert_false (call_run (&c)));

  g_assert_null (c.task);
  g_assert_cmpint (c.calls, ==, 0);
  g_assert_cmpint (c.n_callbacks, ==, 0);
  g_assert_false (G_IS_VALUE (&c.value));
  if (bc->bad == BAD_SET_ERROR)
    {
      /* Left as it was. */
      g_assert_error (c.error, TEST_ERROR, 1);
      g_assert_cmpstr (c.error->message, ==, "already set");
    }
  else if (bc->entry->has_error)
    {
      /* Also reported as an error, so that bindings raise. */
      g_assert_error (c.error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_clear_error (&c.error);
    }
  else
    g_assert_no_error (c.error);
  if (bc->bad == BAD_SET_VALUE)
    {
      g_assert_true (G_VALUE_HOLDS_STRING (&set_value));
      g_assert_null (g_value_get_string (&set_value));
    }

  /* A programmer error is refused before anything is accepted: as with
   * GLib, the function's data is not freed (but never twice). */
  g_assert_cmpint (c.destroyed, <=, 1);
  call_clear (&c);

  /* The runtime took nothing in and still works. */
  {
    g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

    g_assert_cmpuint (stats->queued, ==, 0);
  }
  call_init (&c, bc->entry, rt);
  g_assert_true (call_run (&c));
  g_assert_no_error (c.error);
  assert_int_value (&c.value, 42);
  call_assert_destroyed_once (&c);
  call_clear (&c);
}

/* ---- programmer errors: everything else -------------------------------- */

/* Every accessor of a runtime, given a NULL or a wrong-type runtime. */
static void
test_critical_runtime_api (void)
{
  gpointer bad[] = { NULL, wrong_object () };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      DvtRuntime *rt = bad[i];
      GError *error = NULL;

      EXPECT_ASSERTION (g_assert_null (dvt_runtime_get_context (rt)));
      EXPECT_ASSERTION (g_assert_cmpuint (dvt_runtime_get_max_workers (rt), ==, 0));
      EXPECT_ASSERTION (g_assert_null (dvt_runtime_get_name (rt)));
      EXPECT_ASSERTION (dvt_runtime_shutdown (rt, TRUE, TRUE));
      EXPECT_ASSERTION (g_assert_true (dvt_runtime_is_shutdown (rt)));
      EXPECT_ASSERTION (g_assert_null (dvt_runtime_get_stats (rt)));
      EXPECT_ASSERTION (g_assert_false (dvt_runtime_set_rate_limit (rt, 10, 0, &error)));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      EXPECT_ASSERTION (dvt_runtime_clear_rate_limit (rt));
      EXPECT_ASSERTION (dvt_runtime_inc_stat (rt, "counter", 1));
      EXPECT_ASSERTION (g_assert_cmpuint (dvt_runtime_get_map_runners (rt, 4, NULL), ==, 0));
    }

  /* A set error. */
  {
    g_autoptr(TestRuntime) rt = dvt_runtime_new (1);
    g_autoptr(GError) error = g_error_new_literal (TEST_ERROR, 1, "already set");
    double rate;

    EXPECT_ASSERTION (g_assert_false (dvt_runtime_set_rate_limit (rt, 10, 0, &error)));
    g_assert_error (error, TEST_ERROR, 1);
    g_object_get (rt, "rate-limit", &rate, NULL);
    g_assert_cmpfloat (rate, ==, 0);
  }

  /* A counter without a name. */
  {
    g_autoptr(TestRuntime) rt = dvt_runtime_new (1);
    g_autoptr(DvtStats) stats = NULL;
    g_auto(GStrv) names = NULL;

    EXPECT_ASSERTION (dvt_runtime_inc_stat (rt, NULL, 1));
    stats = dvt_runtime_get_stats (rt);
    names = dvt_stats_get_counter_names (stats);
    g_assert_cmpstrv (names, ((const char *[]) { NULL }));
  }

  /* Stats. */
  EXPECT_ASSERTION (g_assert_null (dvt_stats_copy (NULL)));
  EXPECT_ASSERTION (g_assert_cmpint (dvt_stats_get_counter (NULL, "counter"), ==, 0));
  EXPECT_ASSERTION (g_assert_null (dvt_stats_get_counter_names (NULL)));
  {
    g_autoptr(TestRuntime) rt = dvt_runtime_new (1);
    g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

    EXPECT_ASSERTION (g_assert_cmpint (dvt_stats_get_counter (stats, NULL), ==, 0));
  }
  /* Freeing NULL is allowed, as with g_free(). */
  dvt_stats_free (NULL);
}

/* The application's own counters, pushed to their limits: no overflow
 * (UBSan checks), unknown names read 0, and a snapshot does not move. */
static void
test_stats_counters_extremes (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtStats) empty = dvt_runtime_get_stats (rt);
  g_autoptr(DvtStats) stats = NULL;
  g_autoptr(DvtStats) copy = NULL;
  g_auto(GStrv) names = NULL;
  gint64 big;

  g_assert_cmpint (dvt_stats_get_counter (empty, "never-set"), ==, 0);
  names = dvt_stats_get_counter_names (empty);
  g_assert_nonnull (names);
  g_assert_null (names[0]);
  g_clear_pointer (&names, g_strfreev);

  dvt_runtime_inc_stat (rt, "", 1);
  dvt_runtime_inc_stat (rt, "big", G_MAXINT64);
  dvt_runtime_inc_stat (rt, "big", G_MAXINT64);
  dvt_runtime_inc_stat (rt, "small", G_MININT64);
  dvt_runtime_inc_stat (rt, "small", -1);
  dvt_runtime_inc_stat (rt, "zero", 0);

  stats = dvt_runtime_get_stats (rt);
  copy = dvt_stats_copy (stats);
  dvt_runtime_inc_stat (rt, "zero", 5);
  big = dvt_stats_get_counter (stats, "big");
  /* Whether it saturates or wraps is the library's choice; it must not
   * be undefined behaviour. */
  g_test_message ("G_MAXINT64 + G_MAXINT64 reads %" G_GINT64_FORMAT, big);
  g_assert_cmpint (dvt_stats_get_counter (stats, ""), ==, 1);
  g_assert_cmpint (dvt_stats_get_counter (stats, "zero"), ==, 0);
  g_assert_cmpint (dvt_stats_get_counter (copy, "zero"), ==, 0);
  g_assert_cmpint (dvt_stats_get_counter (stats, "unknown"), ==, 0);
  names = dvt_stats_get_counter_names (copy);
  g_assert_cmpstrv (names, ((const char *[]) { "", "big", "small", "zero", NULL }));
}

/* Every method of a task, given a NULL or a wrong-type task. */
static const char *task_api[] = {
  "get-runtime", "get-id", "get-name", "set-name", "get-attempt",
  "get-index", "get-cancellable", "cancel", "get-completed", "had-error",
  "wait", "return-value", "return-pointer", "return-boolean", "return-int",
  "return-error", "return-new-error", "propagate-value", "propagate-pointer",
  "propagate-boolean", "propagate-int",
};

static void
call_task_api (guint    which,
               DvtTask *task)
{
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  int freed = 0;

  switch (which)
    {
    case 0: g_assert_null (dvt_task_get_runtime (task)); break;
    case 1: g_assert_cmpuint (dvt_task_get_id (task), ==, 0); break;
    case 2: g_assert_null (dvt_task_get_name (task)); break;
    case 3: dvt_task_set_name (task, "name"); break;
    case 4: g_assert_cmpuint (dvt_task_get_attempt (task), ==, 0); break;
    case 5: g_assert_cmpuint (dvt_task_get_index (task), ==, 0); break;
    case 6: g_assert_null (dvt_task_get_cancellable (task)); break;
    case 7: dvt_task_cancel (task); break;
    case 8: g_assert_false (dvt_task_get_completed (task)); break;
    case 9: g_assert_false (dvt_task_had_error (task)); break;
    case 10: g_assert_false (dvt_task_wait (task, 1, &error)); break;
    case 11:
      g_value_init (&value, G_TYPE_INT);
      dvt_task_return_value (task, &value);
      break;
    case 12:
      /* As with g_task_return_pointer(), a refused result is the
       * caller's: it is not freed. */
      dvt_task_return_pointer (task, &freed, count_destroy);
      g_assert_cmpint (freed, ==, 0);
      break;
    case 13: dvt_task_return_boolean (task, TRUE); break;
    case 14: dvt_task_return_int (task, 1); break;
    case 15:
      {
        GError *e = g_error_new_literal (TEST_ERROR, 1, "x");

        dvt_task_return_error (task, e);
        g_error_free (e);
      }
      break;
    case 16: dvt_task_return_new_error (task, TEST_ERROR, 1, "x %d", 1); break;
    case 17:
      g_assert_false (dvt_task_propagate_value (task, &value, &error));
      g_assert_false (G_IS_VALUE (&value));
      break;
    case 18: g_assert_null (dvt_task_propagate_pointer (task, &error)); break;
    case 19: g_assert_false (dvt_task_propagate_boolean (task, &error)); break;
    case 20: g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, -1); break;
    default: g_assert_not_reached ();
    }

  /* Those that take a GError also report the mistake there. */
  if (which == 10 || which >= 17)
    g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  else
    g_assert_no_error (error);
}

static void
test_critical_task_api (void)
{
  gpointer bad[] = { NULL, wrong_object () };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    for (guint which = 0; which < G_N_ELEMENTS (task_api); which++)
      {
        g_test_message ("%s (%s)", task_api[which], i == 0 ? "NULL" : "wrong type");
        EXPECT_ASSERTION (call_task_api (which, bad[i]));
      }
}

/* The other arguments of a task's methods. */
static void
work_bad_returns (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  /* Runs on a worker while the test thread waits: the expectations were
   * set before. Neither call completes the task. */
  dvt_task_return_error (task, NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-security"
#pragma GCC diagnostic ignored "-Wformat"
  {
    const char *no_format = NULL;

    dvt_task_return_new_error (task, TEST_ERROR, 1, no_format);
  }
#pragma GCC diagnostic pop
}

static void
test_critical_task_args (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) set_error = NULL;
  g_autoptr(DvtTask) task = NULL;

  task = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 0, &error));

  set_error = g_error_new_literal (TEST_ERROR, 1, "already set");
  EXPECT_ASSERTION (g_assert_false (dvt_task_wait (task, 1, &set_error)));
  EXPECT_ASSERTION (g_assert_null (dvt_task_propagate_pointer (task, &set_error)));
  EXPECT_ASSERTION (g_assert_false (dvt_task_propagate_boolean (task, &set_error)));
  EXPECT_ASSERTION (g_assert_cmpint (dvt_task_propagate_int (task, &set_error), ==, -1));
  {
    g_auto(GValue) v = G_VALUE_INIT;

    EXPECT_ASSERTION (g_assert_false (dvt_task_propagate_value (task, &v, &set_error)));
    g_assert_false (G_IS_VALUE (&v));
  }
  g_assert_error (set_error, TEST_ERROR, 1);
  {
    /* A set out value. */
    g_auto(GValue) v = G_VALUE_INIT;

    g_value_init (&v, G_TYPE_STRING);
    EXPECT_ASSERTION (g_assert_false (dvt_task_propagate_value (task, &v, &error)));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    g_assert_true (G_VALUE_HOLDS_STRING (&v));
  }
  /* None of that touched the result. */
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 42);
  g_assert_no_error (error);

  /* A NULL error and a NULL format, from a work function: refused, so the
   * task is not completed, and the runtime says so. */
  g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*assertion*error != NULL*");
  g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*assertion*format != NULL*");
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_bad_returns, NULL, NULL, NULL, NULL,
                                                  NULL, &error));
  g_test_assert_expected_messages ();
  g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  assert_message (error);
}

/* The finish functions, given what is not theirs. */
static void
test_critical_finish (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(TestRuntime) other = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) set_error = g_error_new_literal (TEST_ERROR, 1, "already set");
  g_autoptr(DvtTask) future = NULL;
  g_autoptr(GTask) gtask = g_task_new (rt, NULL, NULL, NULL);
  Call thread_call, map_call, other_call;

  call_init (&thread_call, &entries[2], rt);
  call_init (&map_call, &entries[6], rt);
  call_init (&other_call, &entries[2], other);

  dvt_runtime_to_thread_async (rt, work_value, &thread_call, call_data_destroy, NULL, NULL,
                               call_ready, &thread_call);
  dvt_runtime_map_async (rt, 1, work_value, &map_call, call_data_destroy, NULL, NULL,
                         call_ready, &map_call);
  dvt_runtime_to_thread_async (other, work_value, &other_call, call_data_destroy, NULL, NULL,
                               call_ready, &other_call);
  g_assert_true (call_wait_callback (&thread_call));
  g_assert_true (call_wait_callback (&map_call));
  g_assert_true (call_wait_callback (&other_call));
  future = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (future, 0, &error));

  {
    GAsyncResult *not_thread[] = {
      NULL, G_ASYNC_RESULT (gtask), map_call.result, G_ASYNC_RESULT (future),
      other_call.result,
    };
    GAsyncResult *not_map[] = {
      NULL, G_ASYNC_RESULT (gtask), thread_call.result, G_ASYNC_RESULT (future),
      other_call.result,
    };

    for (guint i = 0; i < G_N_ELEMENTS (not_thread); i++)
      {
        g_auto(GValue) v = G_VALUE_INIT;

        EXPECT_ASSERTION (g_assert_false (dvt_runtime_to_thread_finish (rt, not_thread[i],
                                                                        &v, &error)));
        assert_bad_argument (&error);
        g_assert_false (G_IS_VALUE (&v));
        EXPECT_ASSERTION (g_assert_null (dvt_runtime_map_finish (rt, not_map[i], &error)));
        assert_bad_argument (&error);
      }
  }

  {
    g_auto(GValue) v = G_VALUE_INIT;

    /* No runtime, a wrong one, a set value, a set error. */
    EXPECT_ASSERTION (g_assert_false (dvt_runtime_to_thread_finish (NULL, thread_call.result,
                                                                    &v, &error)));
    assert_bad_argument (&error);
    EXPECT_ASSERTION (g_assert_false (dvt_runtime_to_thread_finish (wrong_object (),
                                                                    thread_call.result,
                                                                    &v, &error)));
    assert_bad_argument (&error);
    EXPECT_ASSERTION (g_assert_null (dvt_runtime_map_finish (NULL, map_call.result, &error)));
    assert_bad_argument (&error);
    EXPECT_ASSERTION (g_assert_null (dvt_runtime_map_finish (wrong_object (), map_call.result,
                                                             &error)));
    assert_bad_argument (&error);
    EXPECT_ASSERTION (g_assert_null (dvt_runtime_map_finish (rt, map_call.result,
                                                             &set_error)));
    EXPECT_ASSERTION (g_assert_false (dvt_runtime_to_thread_finish (rt, thread_call.result,
                                                                    &v, &set_error)));
    g_value_init (&v, G_TYPE_STRING);
    EXPECT_ASSERTION (g_assert_false (dvt_runtime_to_thread_finish (rt, thread_call.result,
                                                                    &v, &error)));
    assert_bad_argument (&error);
    g_assert_error (set_error, TEST_ERROR, 1);
  }

  /* The results are still there for the right calls. */
  g_assert_true (dvt_runtime_to_thread_finish (rt, thread_call.result, &thread_call.value,
                                               &error));
  g_assert_no_error (error);
  assert_int_value (&thread_call.value, 42);
  g_assert_true (call_take_results (&map_call, dvt_runtime_map_finish (rt, map_call.result,
                                                                       &error)));
  g_assert_no_error (error);
  assert_int_value (&map_call.value, 42);

  call_assert_destroyed_once (&thread_call);
  call_assert_destroyed_once (&map_call);
  call_assert_destroyed_once (&other_call);
  call_clear (&thread_call);
  call_clear (&map_call);
  call_clear (&other_call);
}

/* Keeps a reference to the map item it computes. */
static void
work_keep_item (DvtTask      *task,
                GCancellable *cancellable,
                gpointer      user_data,
                GError      **error)
{
  Call *c = user_data;

  if (dvt_task_get_index (task) == 0)
    c->kept = g_object_ref (task);
  dvt_task_return_int (task, dvt_task_get_index (task));
}

static void
test_critical_gather (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) set_error = g_error_new_literal (TEST_ERROR, 1, "already set");
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GArray) results = NULL;
  DvtTask *with_null[2];
  DvtTask *with_wrong[2];
  DvtTask *with_item[2];
  Call item_call;

  task = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (task, 0, &error));

  /* A map item, kept by its function. */
  call_init (&item_call, &entries[5], rt);
  item_call.func = work_keep_item;
  item_call.n_items = 3;
  g_assert_true (call_run (&item_call));
  g_assert_nonnull (item_call.kept);

  with_null[0] = task;
  with_null[1] = NULL;
  with_wrong[0] = task;
  with_wrong[1] = wrong_object ();
  with_item[0] = task;
  with_item[1] = item_call.kept;

  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (NULL, &task, 1, NULL, NULL,
                                                                &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (wrong_object (), &task, 1,
                                                                NULL, NULL, &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (rt, NULL, 2, NULL, NULL,
                                                                &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (rt, with_null, 2, NULL, NULL,
                                                                &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (rt, with_wrong, 2, NULL, NULL,
                                                                &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (rt, with_item, 2, NULL, NULL,
                                                                &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (rt, &task, 1, wrong_object (),
                                                                NULL, &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (rt, &task, 1, NULL,
                                                                wrong_object (), &error)));
  assert_bad_argument (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_runtime_gather_blocking (rt, &task, 1, NULL, NULL,
                                                                &set_error)));
  g_assert_error (set_error, TEST_ERROR, 1);

  /* The task is untouched. */
  results = dvt_runtime_gather_blocking (rt, &task, 1, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 1);
  assert_int_value (&g_array_index (results, GValue, 0), 42);

  call_clear (&item_call);
}

/* Every method of options, given a NULL or a wrong-type object. */
static void
test_critical_options_api (void)
{
  gpointer bad[] = { NULL, wrong_object () };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      DvtOptions *o = bad[i];

      EXPECT_ASSERTION (g_assert_null (dvt_options_copy (o)));
      EXPECT_ASSERTION (g_assert_null (dvt_options_get_name (o)));
      EXPECT_ASSERTION (dvt_options_set_name (o, "x"));
      EXPECT_ASSERTION (g_assert_cmpint (dvt_options_get_max_concurrency (o), ==, -1));
      EXPECT_ASSERTION (dvt_options_set_max_concurrency (o, 2));
      EXPECT_ASSERTION (g_assert_false (dvt_options_get_return_errors (o)));
      EXPECT_ASSERTION (dvt_options_set_return_errors (o, TRUE));
      EXPECT_ASSERTION (g_assert_false (dvt_options_get_async_items (o)));
      EXPECT_ASSERTION (dvt_options_set_async_items (o, TRUE));
      EXPECT_ASSERTION (g_assert_false (dvt_options_get_use_caller_context (o)));
      EXPECT_ASSERTION (dvt_options_set_use_caller_context (o, TRUE));
      EXPECT_ASSERTION (g_assert_cmpfloat (dvt_options_get_timeout (o), ==, -1));
      EXPECT_ASSERTION (dvt_options_set_timeout (o, 1));
      EXPECT_ASSERTION (g_assert_cmpfloat (dvt_options_get_deadline (o), ==, -1));
      EXPECT_ASSERTION (dvt_options_set_deadline (o, 1));
      EXPECT_ASSERTION (g_assert_cmpint (dvt_options_get_retries (o), ==, -1));
      EXPECT_ASSERTION (dvt_options_set_retries (o, 1));
      EXPECT_ASSERTION (g_assert_cmpint (dvt_options_get_priority (o), ==, G_PRIORITY_DEFAULT));
      EXPECT_ASSERTION (dvt_options_set_priority (o, G_PRIORITY_HIGH));
      EXPECT_ASSERTION (g_assert_cmpfloat (dvt_options_get_delay (o), ==, 0));
      EXPECT_ASSERTION (dvt_options_set_delay (o, 1));
      EXPECT_ASSERTION (g_assert_cmpint (dvt_options_get_not_before (o), ==, 0));
      EXPECT_ASSERTION (dvt_options_set_not_before (o, 1));
      EXPECT_ASSERTION (g_assert_cmpfloat (dvt_options_get_retry_backoff (o), ==, -1));
      EXPECT_ASSERTION (dvt_options_set_retry_backoff (o, 1));
      EXPECT_ASSERTION (g_assert_cmpfloat (dvt_options_get_retry_max_delay (o), ==, -1));
      EXPECT_ASSERTION (dvt_options_set_retry_max_delay (o, 1));
      EXPECT_ASSERTION (g_assert_cmpfloat (dvt_options_get_retry_jitter (o), ==, -1));
      EXPECT_ASSERTION (dvt_options_set_retry_jitter (o, 0.5));
      EXPECT_ASSERTION (dvt_options_set_retry_filter (o, NULL, NULL, NULL));
    }
}

/* ---- out-of-range option values ---------------------------------------- */

typedef struct
{
  const char *property;
  void      (*set) (DvtOptions *, double);
  double    (*get) (DvtOptions *);
} DoubleOption;

static const DoubleOption double_options[] = {
  { "timeout",         dvt_options_set_timeout,         dvt_options_get_timeout },
  { "deadline",        dvt_options_set_deadline,        dvt_options_get_deadline },
  { "retry-backoff",   dvt_options_set_retry_backoff,   dvt_options_get_retry_backoff },
  { "retry-max-delay", dvt_options_set_retry_max_delay, dvt_options_get_retry_max_delay },
  { "retry-jitter",    dvt_options_set_retry_jitter,    dvt_options_get_retry_jitter },
  { "delay",           dvt_options_set_delay,           dvt_options_get_delay },
};

typedef struct
{
  const char *property;
  void      (*set) (DvtOptions *, int);
  int       (*get) (DvtOptions *);
} IntOption;

static const IntOption int_options[] = {
  { "max-concurrency", dvt_options_set_max_concurrency, dvt_options_get_max_concurrency },
  { "retries",         dvt_options_set_retries,         dvt_options_get_retries },
  { "priority",        dvt_options_set_priority,        dvt_options_get_priority },
};

static const struct
{
  const char *property;
  double      value;
} bad_doubles[] = {
  { "timeout", -5 }, { "timeout", -0.5 }, { "timeout", -2 }, { "timeout", NAN },
  { "timeout", 1e10 }, { "timeout", INFINITY }, { "timeout", -INFINITY },
  { "deadline", -1 }, { "deadline", -5 }, { "deadline", NAN }, { "deadline", INFINITY },
  { "retry-backoff", -5 }, { "retry-backoff", -0.5 }, { "retry-backoff", NAN },
  { "retry-backoff", 1e10 },
  { "retry-max-delay", -5 }, { "retry-max-delay", NAN }, { "retry-max-delay", INFINITY },
  { "retry-jitter", 2 }, { "retry-jitter", 1.0001 }, { "retry-jitter", -0.5 },
  { "retry-jitter", -2 }, { "retry-jitter", NAN },
  { "delay", -1 }, { "delay", -0.001 }, { "delay", NAN }, { "delay", 1e10 },
  { "delay", INFINITY }, { "delay", -INFINITY },
};

static const struct
{
  const char *property;
  double      value;
} good_doubles[] = {
  { "timeout", -1 }, { "timeout", 0 }, { "timeout", 0.001 }, { "timeout", G_MAXINT32 },
  { "deadline", 0 }, { "deadline", G_MAXINT32 },
  { "retry-backoff", -1 }, { "retry-backoff", 0 },
  { "retry-max-delay", -1 }, { "retry-max-delay", 0 },
  { "retry-jitter", -1 }, { "retry-jitter", 0 }, { "retry-jitter", 1 },
  { "delay", 0 }, { "delay", 0.001 }, { "delay", G_MAXINT32 },
};

static const struct
{
  const char *property;
  int         value;
} bad_ints[] = {
  { "max-concurrency", -3 }, { "max-concurrency", -2 }, { "max-concurrency", G_MININT },
  { "retries", -2 }, { "retries", G_MININT }, { "retries", G_MAXUINT16 },
  { "retries", G_MAXINT },
}, good_ints[] = {
  { "max-concurrency", -1 }, { "max-concurrency", 0 }, { "max-concurrency", G_MAXINT },
  { "retries", -1 }, { "retries", 0 }, { "retries", G_MAXUINT16 - 1 },
  { "priority", G_MININT }, { "priority", G_PRIORITY_HIGH }, { "priority", G_MAXINT },
};

static const DoubleOption *
find_double_option (const char *property)
{
  for (guint i = 0; i < G_N_ELEMENTS (double_options); i++)
    if (g_str_equal (double_options[i].property, property))
      return &double_options[i];
  g_assert_not_reached ();
}

static const IntOption *
find_int_option (const char *property)
{
  for (guint i = 0; i < G_N_ELEMENTS (int_options); i++)
    if (g_str_equal (int_options[i].property, property))
      return &int_options[i];
  g_assert_not_reached ();
}

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    data)
{
  (*(int *) data)++;
}

static void
test_options_out_of_range (void)
{
  g_autoptr(DvtOptions) o = dvt_options_new ();
  int notified = 0;

  g_signal_connect (o, "notify", G_CALLBACK (count_notify), &notified);

  /* Through the setters: a critical, and nothing changes. */
  for (guint i = 0; i < G_N_ELEMENTS (bad_doubles); i++)
    {
      const DoubleOption *opt = find_double_option (bad_doubles[i].property);
      double before = opt->get (o);

      g_test_message ("set %s to %g", opt->property, bad_doubles[i].value);
      EXPECT_ASSERTION (opt->set (o, bad_doubles[i].value));
      g_assert_cmpfloat (opt->get (o), ==, before);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad_ints); i++)
    {
      const IntOption *opt = find_int_option (bad_ints[i].property);
      int before = opt->get (o);

      g_test_message ("set %s to %d", opt->property, bad_ints[i].value);
      EXPECT_ASSERTION (opt->set (o, bad_ints[i].value));
      g_assert_cmpint (opt->get (o), ==, before);
    }
  g_assert_cmpint (notified, ==, 0);

  /* The edges of each range are accepted. */
  for (guint i = 0; i < G_N_ELEMENTS (good_doubles); i++)
    {
      const DoubleOption *opt = find_double_option (good_doubles[i].property);

      opt->set (o, good_doubles[i].value);
      g_assert_cmpfloat (opt->get (o), ==, good_doubles[i].value);
    }
  for (guint i = 0; i < G_N_ELEMENTS (good_ints); i++)
    {
      const IntOption *opt = find_int_option (good_ints[i].property);

      opt->set (o, good_ints[i].value);
      g_assert_cmpint (opt->get (o), ==, good_ints[i].value);
    }
}

/* Whether GObject itself lets @value through to the property. */
static gboolean
value_fits_pspec (GParamSpec *pspec,
                  double      value)
{
  g_auto(GValue) v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_DOUBLE);
  g_value_set_double (&v, value);

  return !g_param_value_validate (pspec, &v);
}

static void
test_options_properties_out_of_range (void)
{
  g_autoptr(DvtOptions) o = dvt_options_new ();

  dvt_options_set_timeout (o, 3);
  dvt_options_set_retry_jitter (o, 0.5);
  dvt_options_set_max_concurrency (o, 4);
  dvt_options_set_retries (o, 2);
  dvt_options_set_deadline (o, 7);
  dvt_options_set_retry_backoff (o, 0.25);

  /* Outside the property's range: GObject's own warning. */
  for (guint i = 0; i < G_N_ELEMENTS (bad_doubles); i++)
    {
      const DoubleOption *opt = find_double_option (bad_doubles[i].property);
      GParamSpecDouble *pspec = G_PARAM_SPEC_DOUBLE (
        g_object_class_find_property (G_OBJECT_GET_CLASS (o), opt->property));
      double value = bad_doubles[i].value;
      double before = opt->get (o);

      g_test_message ("g_object_set %s to %g", opt->property, value);
      if (!value_fits_pspec (&pspec->parent_instance, value))
        {
          g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
          g_object_set (o, opt->property, value, NULL);
          g_test_assert_expected_messages ();
        }
      else
        {
          /* Inside it (a negative value other than -1): the setter's
           * critical. */
          EXPECT_ASSERTION (g_object_set (o, opt->property, value, NULL));
        }
      g_assert_cmpfloat (opt->get (o), ==, before);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad_ints); i++)
    {
      const IntOption *opt = find_int_option (bad_ints[i].property);
      int before = opt->get (o);

      g_test_message ("g_object_set %s to %d", opt->property, bad_ints[i].value);
      g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
      g_object_set (o, opt->property, bad_ints[i].value, NULL);
      g_test_assert_expected_messages ();
      g_assert_cmpint (opt->get (o), ==, before);
    }

  /* At construction: the defaults stay. */
  {
    g_autoptr(DvtOptions) o2 = NULL;

    g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
    g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
    g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
    o2 = g_object_new (DVT_TYPE_OPTIONS, "timeout", -5.0, "retry-jitter", 2.0,
                       "max-concurrency", -3, NULL);
    g_test_assert_expected_messages ();
    g_assert_cmpfloat (dvt_options_get_timeout (o2), ==, -1);
    g_assert_cmpfloat (dvt_options_get_retry_jitter (o2), ==, -1);
    g_assert_cmpint (dvt_options_get_max_concurrency (o2), ==, -1);
  }

  /* A value of the wrong type. */
  {
    g_auto(GValue) v = G_VALUE_INIT;

    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, "soon");
    g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*unable to set property*");
    g_object_set_property (G_OBJECT (o), "timeout", &v);
    g_test_assert_expected_messages ();
    g_assert_cmpfloat (dvt_options_get_timeout (o), ==, 3);
  }
}

static gboolean
retry_never (DvtTask      *task,
             const GError *error,
             gpointer      user_data)
{
  return FALSE;
}

static void
test_options_retry_filter_destroy (void)
{
  int a = 0, b = 0, c = 0;
  DvtOptions *o = dvt_options_new ();
  DvtOptions *copy;

  /* No filter: the data is freed at once. */
  dvt_options_set_retry_filter (o, NULL, &a, count_destroy);
  g_assert_cmpint (a, ==, 1);

  /* Replacing a filter frees the old one's data, once. */
  dvt_options_set_retry_filter (o, retry_never, &b, count_destroy);
  dvt_options_set_retry_filter (o, retry_never, &c, count_destroy);
  g_assert_cmpint (b, ==, 1);
  g_assert_cmpint (c, ==, 0);

  /* A copy shares it: freed once, with the last holder. */
  copy = dvt_options_copy (o);
  g_object_unref (o);
  g_assert_cmpint (c, ==, 0);
  g_object_unref (copy);
  g_assert_cmpint (a, ==, 1);
  g_assert_cmpint (b, ==, 1);
  g_assert_cmpint (c, ==, 1);
}

/* ---- out-of-range runtime properties ----------------------------------- */

static const struct
{
  const char *property;
  GType       type;
  double      value;  /* converted for integer properties */
} bad_runtime_values[] = {
  { "timeout",          G_TYPE_DOUBLE, -1 },
  { "timeout",          G_TYPE_DOUBLE, -INFINITY },
  { "timeout",          G_TYPE_DOUBLE, 1e10 },
  { "retries",          G_TYPE_UINT,   G_MAXUINT16 },
  { "retry-backoff",    G_TYPE_DOUBLE, -1 },
  { "retry-max-delay",  G_TYPE_DOUBLE, -1 },
  { "retry-jitter",     G_TYPE_DOUBLE, 2 },
  { "retry-jitter",     G_TYPE_DOUBLE, -0.5 },
  { "rate-limit",       G_TYPE_DOUBLE, -3 },
  { "rate-limit",       G_TYPE_DOUBLE, 2e9 },
  { "rate-limit-burst", G_TYPE_UINT,   G_MAXUINT },
  { "timeout",          G_TYPE_DOUBLE, NAN },
  { "retry-backoff",    G_TYPE_DOUBLE, NAN },
  { "retry-max-delay",  G_TYPE_DOUBLE, NAN },
  { "retry-jitter",     G_TYPE_DOUBLE, NAN },
  { "rate-limit",       G_TYPE_DOUBLE, NAN },
};

static void
set_number (GObject    *object,
            const char *property,
            GType       type,
            double      value)
{
  if (type == G_TYPE_DOUBLE)
    g_object_set (object, property, value, NULL);
  else
    g_object_set (object, property, (guint) value, NULL);
}

static double
get_number (GObject    *object,
            const char *property,
            GType       type)
{
  g_auto(GValue) v = G_VALUE_INIT;

  g_value_init (&v, type);
  g_object_get_property (object, property, &v);
  if (type == G_TYPE_DOUBLE)
    return g_value_get_double (&v);
  return g_value_get_uint (&v);
}

static void
test_runtime_properties_out_of_range (void)
{
  g_autoptr(TestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 1,
                                           "timeout", 5.0, "retries", 2,
                                           "retry-backoff", 0.5, "retry-max-delay", 3.0,
                                           "retry-jitter", 0.25, "rate-limit", 1000.0,
                                           "rate-limit-burst", 7, NULL);

  /* After construction: GObject's warning, and the value stays. */
  for (guint i = 0; i < G_N_ELEMENTS (bad_runtime_values); i++)
    {
      const char *property = bad_runtime_values[i].property;
      GType type = bad_runtime_values[i].type;
      double before = get_number (G_OBJECT (rt), property, type);

      g_test_message ("g_object_set %s to %g", property, bad_runtime_values[i].value);
      g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
      set_number (G_OBJECT (rt), property, type, bad_runtime_values[i].value);
      g_test_assert_expected_messages ();
      g_assert_cmpfloat (get_number (G_OBJECT (rt), property, type), ==, before);
    }

  /* Construct-only properties cannot change afterwards. */
  g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*construct*max-workers*");
  g_object_set (rt, "max-workers", 3u, NULL);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (dvt_runtime_get_max_workers (rt), ==, 1);
  g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*construct*name*");
  g_object_set (rt, "name", "renamed", NULL);
  g_test_assert_expected_messages ();
  g_assert_null (dvt_runtime_get_name (rt));
  g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*construct*auto-register*");
  g_object_set (rt, "auto-register", FALSE, NULL);
  g_test_assert_expected_messages ();
  {
    gboolean auto_register;

    g_object_get (rt, "auto-register", &auto_register, NULL);
    g_assert_true (auto_register);
  }

  /* Unknown properties and values of the wrong type. */
  g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*no property named*");
  g_object_set (rt, "no-such-property", 1, NULL);
  g_test_assert_expected_messages ();
  {
    g_auto(GValue) v = G_VALUE_INIT;

    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, "fast");
    g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*unable to set property*");
    g_object_set_property (G_OBJECT (rt), "rate-limit", &v);
    g_test_assert_expected_messages ();
    g_assert_cmpfloat (get_number (G_OBJECT (rt), "rate-limit", G_TYPE_DOUBLE), ==, 1000);
  }

  dvt_runtime_shutdown (rt, TRUE, FALSE);
}

static void
test_runtime_construct_out_of_range (void)
{
  gpointer klass = g_type_class_ref (DVT_TYPE_RUNTIME);

  /* At construction: GObject's warning, and the property keeps its
   * documented default. */
  for (guint i = 0; i < G_N_ELEMENTS (bad_runtime_values); i++)
    {
      const char *property = bad_runtime_values[i].property;
      GType type = bad_runtime_values[i].type;
      GParamSpec *pspec = g_object_class_find_property (klass, property);
      const GValue *default_value = g_param_spec_get_default_value (pspec);
      double expected = type == G_TYPE_DOUBLE ? g_value_get_double (default_value)
                                              : g_value_get_uint (default_value);
      g_autoptr(TestRuntime) rt = NULL;

      g_test_message ("g_object_new with %s = %g (default %g)", property,
                      bad_runtime_values[i].value, expected);
      g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
      if (type == G_TYPE_DOUBLE)
        rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 1,
                           property, bad_runtime_values[i].value, NULL);
      else
        rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 1,
                           property, (guint) bad_runtime_values[i].value, NULL);
      g_test_assert_expected_messages ();
      /* GObject skips set_property() for a refused construct value: the
       * runtime must have set its defaults itself. */
      g_assert_cmpfloat (get_number (G_OBJECT (rt), property, type), ==, expected);
    }

  /* dvt_runtime_new() with too many workers. */
  {
    g_autoptr(TestRuntime) rt = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(GValue) v = G_VALUE_INIT;

    g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
    rt = dvt_runtime_new (5000);
    g_test_assert_expected_messages ();
    g_assert_nonnull (rt);
    g_assert_cmpuint (dvt_runtime_get_max_workers (rt), ==, g_get_num_processors ());
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_value, &(Call) { 0 }, NULL, NULL,
                                                   NULL, &v, &error));
    g_assert_no_error (error);
  }

  g_type_class_unref (klass);
}

/* ---- the rate limit ---------------------------------------------------- */

static void
test_rate_limit_invalid (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (1);
  static const struct
  {
    double rate;
    guint  burst;
  } bad[] = {
    { 0, 0 }, { -0.0, 0 }, { -1, 0 }, { -1e9, 5 }, { -INFINITY, 0 }, { NAN, 0 }, { -NAN, 1 },
    { 1e9 * 1.0001, 0 }, { 1e12, 0 }, { INFINITY, 0 }, { 10, (guint) G_MAXINT32 + 1 },
    { 10, G_MAXUINT },
  };

  g_assert_true (dvt_runtime_set_rate_limit (rt, 5, 3, NULL));

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      double rate;
      guint burst;

      g_test_message ("rate %g, burst %u", bad[i].rate, bad[i].burst);
      g_assert_false (dvt_runtime_set_rate_limit (rt, bad[i].rate, bad[i].burst, &error));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      assert_message (error);
      /* Without an error to fill in, it is refused all the same. */
      g_assert_false (dvt_runtime_set_rate_limit (rt, bad[i].rate, bad[i].burst, NULL));

      g_object_get (rt, "rate-limit", &rate, "rate-limit-burst", &burst, NULL);
      g_assert_cmpfloat (rate, ==, 5);
      g_assert_cmpuint (burst, ==, 3);
    }

  /* The edges are accepted. */
  g_assert_true (dvt_runtime_set_rate_limit (rt, 1e9, 0, NULL));
  g_assert_true (dvt_runtime_set_rate_limit (rt, 1e9, G_MAXINT32, NULL));
  dvt_runtime_clear_rate_limit (rt);
  dvt_runtime_clear_rate_limit (rt);
  {
    double rate;

    g_object_get (rt, "rate-limit", &rate, NULL);
    g_assert_cmpfloat (rate, ==, 0);
  }
}

/* A tiny rate is one start per very long time: after the first start,
 * the next waits, it does not wrap around into no limit at all. */
static void
test_rate_limit_tiny (void)
{
  static const double rates[] = { 1e-6, 1e-15, 1e-300 };

  for (guint i = 0; i < G_N_ELEMENTS (rates); i++)
    {
      g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
      g_autoptr(GError) error = NULL;
      g_autoptr(DvtTask) first = NULL;
      g_autoptr(DvtTask) second = NULL;
      g_autoptr(DvtStats) stats = NULL;
      Call c = { 0 };

      g_test_message ("rate %g", rates[i]);
      if (!dvt_runtime_set_rate_limit (rt, rates[i], 0, &error))
        {
          /* Refusing it is an answer too. */
          g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
          continue;
        }

      first = dvt_runtime_submit (rt, work_value, &c, NULL, NULL, NULL, &error);
      g_assert_true (dvt_task_wait (first, 0, &error));
      second = dvt_runtime_submit (rt, work_value, &c, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      /* 1e6 / rate does not fit a gint64 below about 1e-13: it must not
       * wrap around into no limit at all. */
      g_assert_false (dvt_task_wait (second, 0.2, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      g_clear_error (&error);
      g_assert_cmpint (g_atomic_int_get (&c.calls), ==, 1);
      stats = dvt_runtime_get_stats (rt);
      g_assert_cmpuint (stats->throttled, ==, 1);

      /* A throttled task is cancelled at once. */
      dvt_task_cancel (second);
      g_assert_true (dvt_task_wait (second, 0, &error));
      g_assert_false (dvt_task_propagate_boolean (second, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      dvt_runtime_shutdown (rt, TRUE, FALSE);
      g_assert_cmpint (g_atomic_int_get (&c.calls), ==, 1);
    }
}

/* A huge burst with a slow rate: the burst is allowed at once. */
static void
test_rate_limit_huge_burst (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  Call c = { 0 };

  g_assert_true (dvt_runtime_set_rate_limit (rt, 1e-4, G_MAXINT32, &error));
  for (guint i = 0; i < 5; i++)
    {
      g_auto(GValue) v = G_VALUE_INIT;

      g_assert_true (dvt_runtime_to_thread_blocking (rt, work_value, &c, NULL, NULL, NULL,
                                                     &v, &error));
      g_assert_no_error (error);
    }
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->throttled, ==, 0);
  g_assert_cmpint (c.calls, ==, 5);
}

/* ---- work after shutdown ----------------------------------------------- */

static void
test_closed_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  Call c;

  dvt_runtime_shutdown (rt, TRUE, FALSE);

  call_init (&c, entry, rt);
  g_assert_false (call_run (&c));
  g_assert_error (c.error, DVT_ERROR, DVT_ERROR_CLOSED);
  assert_message (c.error);
  g_assert_cmpint (c.calls, ==, 0);
  if (entry->future)
    g_assert_null (c.task);
  call_assert_destroyed_once (&c);
  call_clear (&c);

  /* Again: the same, and shutting down again changes nothing. */
  dvt_runtime_shutdown (rt, TRUE, TRUE);
  g_assert_true (dvt_runtime_is_shutdown (rt));
  call_init (&c, entry, rt);
  g_assert_false (call_run (&c));
  g_assert_error (c.error, DVT_ERROR, DVT_ERROR_CLOSED);
  call_assert_destroyed_once (&c);
  call_clear (&c);

  assert_stats_settled (rt);
}

/* Gathering tasks that ended before the shutdown reads their results:
 * it submits no work. */
static void
test_closed_gather (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GArray) results = NULL;
  g_autoptr(GArray) empty = NULL;

  task = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (task, 0, &error));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  results = dvt_runtime_gather_blocking (rt, &task, 1, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_int_value (&g_array_index (results, GValue, 0), 42);
  empty = dvt_runtime_gather_blocking (rt, NULL, 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (empty->len, ==, 0);
}

/* ---- NULL callbacks ---------------------------------------------------- */

static void
test_null_callback (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) async_items = dvt_options_new ();
  Call c;

  dvt_options_set_async_items (async_items, TRUE);

  /* Fire and forget: the work runs and its data is freed. */
  call_init (&c, &entries[2], rt);
  dvt_runtime_to_thread_async (rt, work_value, &c, call_data_destroy, NULL, NULL, NULL, NULL);
  g_assert_true (POLL_ITERATING (g_atomic_int_get (&c.calls) == 1, 20));
  call_assert_destroyed_once (&c);
  call_clear (&c);

  call_init (&c, &entries[6], rt);
  dvt_runtime_map_async (rt, 5, work_value, &c, call_data_destroy, NULL, NULL, NULL, NULL);
  g_assert_true (POLL_ITERATING (g_atomic_int_get (&c.calls) == 5, 20));
  call_assert_destroyed_once (&c);
  call_clear (&c);

  call_init (&c, &entries[8], rt);
  dvt_runtime_map_async (rt, 5, work_value, &c, call_data_destroy, async_items, NULL, NULL,
                         NULL);
  g_assert_true (POLL_ITERATING (g_atomic_int_get (&c.calls) == 5, 20));
  call_assert_destroyed_once (&c);
  call_clear (&c);

  /* Refused ones too. */
  call_init (&c, &entries[6], rt);
  dvt_runtime_map_async (rt, G_MAXUINT, work_value, &c, call_data_destroy, NULL, NULL, NULL,
                         NULL);
  call_assert_destroyed_once (&c);
  call_clear (&c);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  call_init (&c, &entries[2], rt);
  dvt_runtime_to_thread_async (rt, work_value, &c, call_data_destroy, NULL, NULL, NULL, NULL);
  call_assert_destroyed_once (&c);
  g_assert_cmpint (c.calls, ==, 0);
  call_clear (&c);
  call_init (&c, &entries[6], rt);
  dvt_runtime_map_async (rt, 5, work_value, &c, call_data_destroy, NULL, NULL, NULL, NULL);
  call_assert_destroyed_once (&c);
  g_assert_cmpint (c.calls, ==, 0);
  call_clear (&c);

  assert_stats_settled (rt);
}

/* ---- blocking calls on the loop thread --------------------------------- */

static void work_gated (DvtTask      *task,
                        GCancellable *cancellable,
                        gpointer      user_data,
                        GError      **error);

/* Runs an inner call from an async function, on the loop thread. */
static void
async_run_inner (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  Call *inner = user_data;

  call_run (inner);
  dvt_task_return_boolean (task, TRUE);
}

static void
test_would_deadlock_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) v = G_VALUE_INIT;
  Call inner;

  call_init (&inner, entry, rt);
  /* A submitted function must not be done before the wait for it: hold it
   * (a scheduled one can only start once this one returns). */
  if (entry->future && !entry->async_func)
    inner.func = work_gated;
  g_assert_true (dvt_runtime_run_blocking (rt, async_run_inner, &inner, NULL, NULL, NULL, &v,
                                           &error));
  g_assert_no_error (error);

  g_assert_false (inner.ok);
  g_assert_error (inner.error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  assert_message (inner.error);
  if (entry->future)
    {
      /* The task was accepted; only waiting for it was refused. It runs
       * on, and can be waited for from here. */
      g_assert_nonnull (inner.task);
      gate_open (&inner.gate);
      g_assert_true (dvt_task_wait (inner.task, 0, &error));
      g_assert_cmpint (dvt_task_propagate_int (inner.task, &error), ==,
                       inner.func == work_gated ? 5 : 42);
      g_assert_cmpint (inner.calls, ==, 1);
    }
  else
    g_assert_cmpint (inner.calls, ==, 0);
  call_assert_destroyed_once (&inner);
  call_clear (&inner);

  assert_stats_settled (rt);
}

typedef struct
{
  DvtTask *pending;
  DvtTask *finished;
  GError  *wait_error;
  GError  *gather_error;
  gboolean finished_waited;
} LoopWaits;

static void
async_waits (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  LoopWaits *lw = user_data;
  GArray *results;

  g_assert_false (dvt_task_wait (lw->pending, 0, &lw->wait_error));
  results = dvt_runtime_gather_blocking (dvt_task_get_runtime (task), &lw->pending, 1, NULL,
                                         NULL, &lw->gather_error);
  g_assert_null (results);
  /* A task that has ended needs no waiting. */
  lw->finished_waited = dvt_task_wait (lw->finished, 0, NULL);
  dvt_task_return_boolean (task, TRUE);
}

static void
work_gated (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  gate_wait (&c->gate);
  dvt_task_return_int (task, 5);
}

static void
test_would_deadlock_waits (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) pending = NULL;
  g_autoptr(DvtTask) finished = NULL;
  LoopWaits lw = { 0 };
  Call c;

  call_init (&c, &entries[4], rt);
  pending = dvt_runtime_submit (rt, work_gated, &c, NULL, NULL, NULL, &error);
  finished = dvt_runtime_submit (rt, work_value, &c, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (finished, 0, &error));
  lw.pending = pending;
  lw.finished = finished;

  g_assert_true (dvt_runtime_run_blocking (rt, async_waits, &lw, NULL, NULL, NULL, NULL,
                                           &error));
  g_assert_no_error (error);
  g_assert_error (lw.wait_error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  assert_message (lw.wait_error);
  g_assert_error (lw.gather_error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  assert_message (lw.gather_error);
  g_assert_true (lw.finished_waited);

  /* The pending task was not harmed. */
  g_assert_false (dvt_task_get_completed (pending));
  gate_open (&c.gate);
  g_assert_true (dvt_task_wait (pending, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (pending, &error), ==, 5);
  g_assert_no_error (error);

  g_clear_error (&lw.wait_error);
  g_clear_error (&lw.gather_error);
  call_clear (&c);
}

/* ---- reading results --------------------------------------------------- */

static void
test_read_before_completed (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  Call c;

  call_init (&c, &entries[4], rt);
  task = dvt_runtime_submit (rt, work_gated, &c, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  expect_dvt_critical ("*read before it completed*");
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, -1);
  assert_dvt_criticals_seen ();
  g_assert_error (error, DVT_ERROR, DVT_ERROR_FAILED);
  assert_message (error);
  g_clear_error (&error);

  expect_dvt_critical ("*read before it completed*");
  g_assert_false (dvt_task_propagate_boolean (task, &error));
  assert_dvt_criticals_seen ();
  g_assert_error (error, DVT_ERROR, DVT_ERROR_FAILED);
  g_clear_error (&error);

  expect_dvt_critical ("*read before it completed*");
  g_assert_null (dvt_task_propagate_pointer (task, &error));
  assert_dvt_criticals_seen ();
  g_assert_error (error, DVT_ERROR, DVT_ERROR_FAILED);
  g_clear_error (&error);

  {
    g_auto(GValue) v = G_VALUE_INIT;

    expect_dvt_critical ("*read before it completed*");
    g_assert_false (dvt_task_propagate_value (task, &v, &error));
    assert_dvt_criticals_seen ();
    g_assert_error (error, DVT_ERROR, DVT_ERROR_FAILED);
    g_clear_error (&error);
    assert_null_value (&v);
  }

  /* Without an error to fill in, the critical alone. */
  expect_dvt_critical ("*read before it completed*");
  g_assert_cmpint (dvt_task_propagate_int (task, NULL), ==, -1);
  assert_dvt_criticals_seen ();

  g_assert_false (dvt_task_get_completed (task));
  g_assert_false (dvt_task_had_error (task));

  /* The task ends as if nothing happened. */
  gate_open (&c.gate);
  g_assert_true (dvt_task_wait (task, 0, &error));
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 5);
  g_assert_no_error (error);
  call_clear (&c);
}

static void
pointer_freed (gpointer data)
{
  g_atomic_int_inc ((int *) data);
}

typedef struct
{
  int freed;
} PointerProbe;

static void
work_pointer (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
  PointerProbe *p = user_data;

  dvt_task_return_pointer (task, &p->freed, pointer_freed);
}

static void
work_error (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  g_set_error (error, TEST_ERROR, 9, "failure %d", 9);
}

static void
test_propagate_twice (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  PointerProbe probe = { 0 };

  /* Values are copied: read them as often as you like. */
  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL,
                                                  NULL, &error);
    g_auto(GValue) v1 = G_VALUE_INIT;
    g_auto(GValue) v2 = G_VALUE_INIT;

    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 42);
    g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 42);
    g_assert_true (dvt_task_propagate_value (task, &v1, &error));
    g_assert_true (dvt_task_propagate_value (task, &v2, &error));
    g_assert_no_error (error);
    assert_int_value (&v1, 42);
    assert_int_value (&v2, 42);
  }

  /* So are errors. */
  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_error, NULL, NULL, NULL, NULL,
                                                  &error);

    g_assert_true (dvt_task_wait (task, 0, &error));
    for (guint i = 0; i < 3; i++)
      {
        g_assert_false (dvt_task_propagate_boolean (task, &error));
        g_assert_error (error, TEST_ERROR, 9);
        g_assert_cmpstr (error->message, ==, "failure 9");
        g_clear_error (&error);
      }
  }

  /* A pointer moves once: the second reader gets a critical and NULL, and
   * the pointer is never freed (it belongs to the first reader). */
  {
    g_autoptr(DvtTask) task = dvt_runtime_submit (rt, work_pointer, &probe, NULL, NULL, NULL,
                                                  &error);
    g_auto(GValue) v = G_VALUE_INIT;

    g_assert_true (dvt_task_wait (task, 0, &error));
    g_assert_true (dvt_task_propagate_pointer (task, &error) == &probe.freed);
    g_assert_no_error (error);

    expect_dvt_critical ("*already taken*");
    g_assert_null (dvt_task_propagate_pointer (task, &error));
    assert_dvt_criticals_seen ();
    g_assert_no_error (error);

    expect_dvt_critical ("*already taken*");
    g_assert_true (dvt_task_propagate_value (task, &v, &error));
    assert_dvt_criticals_seen ();
    assert_null_value (&v);
  }
  g_assert_cmpint (probe.freed, ==, 0);

  /* Through the finish function too. */
  {
    Call c;

    call_init (&c, &entries[2], rt);
    dvt_runtime_to_thread_async (rt, work_pointer, &probe, NULL, NULL, NULL, call_ready, &c);
    g_assert_true (call_wait_callback (&c));
    g_assert_true (dvt_runtime_to_thread_finish (rt, c.result, &c.value, &error));
    g_assert_true (g_value_get_pointer (&c.value) == &probe.freed);
    g_value_unset (&c.value);
    expect_dvt_critical ("*already taken*");
    g_assert_true (dvt_runtime_to_thread_finish (rt, c.result, &c.value, &error));
    assert_dvt_criticals_seen ();
    assert_null_value (&c.value);
    call_clear (&c);
  }
  g_assert_cmpint (probe.freed, ==, 0);
}

/* ---- waiting ----------------------------------------------------------- */

static gpointer
complete_later_thread (gpointer data)
{
  DvtTask *task = data;

  g_usleep (30000);
  dvt_task_return_int (task, 11);
  g_object_unref (task);

  return NULL;
}

static void
async_complete_from_thread (DvtTask      *task,
                            GCancellable *cancellable,
                            gpointer      user_data,
                            GError      **error)
{
  GThread **thread = user_data;

  *thread = g_thread_new ("completer", complete_later_thread, g_object_ref (task));
}

static const double odd_timeouts[] = { 0, -5, -1e-9, -INFINITY, NAN, INFINITY, 1e300,
                                       G_MAXDOUBLE, 1e13 };

static void
test_wait_odd_timeouts (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) finished = NULL;

  finished = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (finished, 0, &error));

  /* A task that has ended: TRUE at once, whatever the timeout. */
  for (guint i = 0; i < G_N_ELEMENTS (odd_timeouts); i++)
    {
      gint64 start = g_get_monotonic_time ();

      g_assert_true (dvt_task_wait (finished, odd_timeouts[i], &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC * slow);
    }
  g_assert_true (dvt_task_wait (finished, 1e-9, &error));
  g_assert_no_error (error);

  /* A task that has not: 0, negative, NaN and huge timeouts all wait for
   * its end, none overflows into an early timeout. */
  for (guint i = 0; i < G_N_ELEMENTS (odd_timeouts); i++)
    {
      g_autoptr(DvtTask) task = NULL;
      GThread *thread = NULL;

      g_test_message ("timeout %g", odd_timeouts[i]);
      task = dvt_runtime_schedule (rt, async_complete_from_thread, &thread, NULL, NULL, NULL,
                                   &error);
      g_assert_no_error (error);
      g_assert_true (dvt_task_wait (task, odd_timeouts[i], &error));
      g_assert_no_error (error);
      g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, 11);
      g_thread_join (thread);
    }

  /* A tiny positive timeout does time out. */
  {
    g_autoptr(DvtTask) task = NULL;
    GThread *thread = NULL;

    task = dvt_runtime_schedule (rt, async_complete_from_thread, &thread, NULL, NULL, NULL,
                                 &error);
    g_assert_false (dvt_task_wait (task, 1e-9, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    assert_message (error);
    g_clear_error (&error);
    g_assert_true (dvt_task_wait (task, 0, &error));
    g_thread_join (thread);
  }
}

/* ---- cancelling what has ended ----------------------------------------- */

static void
test_cancel_finished (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) ok = NULL;
  g_autoptr(DvtTask) failed = NULL;
  g_autoptr(DvtStats) before = NULL;
  g_autoptr(DvtStats) after = NULL;
  GCancellable *cancellable;

  ok = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  failed = dvt_runtime_submit (rt, work_error, NULL, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (ok, 0, &error));
  g_assert_true (dvt_task_wait (failed, 0, &error));
  cancellable = dvt_task_get_cancellable (ok);
  g_assert_false (g_cancellable_is_cancelled (cancellable));
  before = dvt_runtime_get_stats (rt);

  for (guint i = 0; i < 3; i++)
    {
      dvt_task_cancel (ok);
      dvt_task_cancel (failed);
    }

  /* Nothing changed: results, errors, counters, cancellables. */
  g_assert_true (dvt_task_get_completed (ok));
  g_assert_false (dvt_task_had_error (ok));
  g_assert_cmpint (dvt_task_propagate_int (ok, &error), ==, 42);
  g_assert_no_error (error);
  g_assert_false (dvt_task_propagate_boolean (failed, &error));
  g_assert_error (error, TEST_ERROR, 9);
  after = dvt_runtime_get_stats (rt);
  /* The counters up to timed_out: running and pending are 0 either way. */
  g_assert_cmpmem (before, G_STRUCT_OFFSET (DvtStats, running),
                   after, G_STRUCT_OFFSET (DvtStats, running));
  g_assert_false (g_cancellable_is_cancelled (cancellable));
  /* Nor is one made afterwards. */
  g_assert_false (g_cancellable_is_cancelled (dvt_task_get_cancellable (failed)));
}

/* Completing a task once it has ended, from outside its work function. */
static void
test_complete_after_end (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) ok = NULL;
  g_autoptr(DvtTask) cancelled = NULL;
  int freed = 0;
  Call c;

  /* Completed by its work: a second result is a programmer error, dropped
   * with a critical, and freed. */
  ok = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (ok, 0, &error));
  expect_dvt_critical ("*completed twice*");
  dvt_task_return_pointer (ok, &freed, pointer_freed);
  assert_dvt_criticals_seen ();
  g_assert_cmpint (freed, ==, 1);
  expect_dvt_critical ("*completed twice*");
  dvt_task_return_new_error (ok, TEST_ERROR, 1, "late");
  assert_dvt_criticals_seen ();
  g_assert_cmpint (dvt_task_propagate_int (ok, &error), ==, 42);
  g_assert_no_error (error);

  /* Ended by the runtime (cancelled): a late result is dropped quietly,
   * and freed. */
  call_init (&c, &entries[4], rt);
  cancelled = dvt_runtime_submit (rt, work_gated, &c, NULL, NULL, NULL, &error);
  dvt_task_cancel (cancelled);
  dvt_task_return_pointer (cancelled, &freed, pointer_freed);
  g_assert_cmpint (freed, ==, 2);
  dvt_task_return_new_error (cancelled, TEST_ERROR, 1, "late");
  g_assert_false (dvt_task_propagate_boolean (cancelled, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  /* The work may have started before the cancel and still be inside the
   * gate: let it out and wait for the workers before freeing the call. */
  gate_open (&c.gate);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  call_clear (&c);
  assert_stats_settled (rt);
}

/* An unset or NULL GValue completes with no value. */
static void
work_return_unset_value (DvtTask      *task,
                         GCancellable *cancellable,
                         gpointer      user_data,
                         GError      **error)
{
  GValue unset = G_VALUE_INIT;

  dvt_task_return_value (task, user_data != NULL ? &unset : NULL);
}

static void
test_return_no_value (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 2; i++)
    {
      g_auto(GValue) v = G_VALUE_INIT;

      g_assert_true (dvt_runtime_to_thread_blocking (rt, work_return_unset_value,
                                                     GUINT_TO_POINTER (i), NULL, NULL, NULL,
                                                     &v, &error));
      g_assert_no_error (error);
      assert_null_value (&v);
    }
}

/* ---- gather ------------------------------------------------------------ */

static void
test_gather_finished (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) return_errors = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  DvtTask *tasks[3];
  PointerProbe probe = { 0 };

  dvt_options_set_return_errors (return_errors, TRUE);
  tasks[0] = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  tasks[1] = dvt_runtime_submit (rt, work_error, NULL, NULL, NULL, NULL, &error);
  tasks[2] = dvt_runtime_submit (rt, work_pointer, &probe, NULL, NULL, NULL, &error);
  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    g_assert_true (dvt_task_wait (tasks[i], 0, &error));

  /* The first failure, at once. */
  {
    gint64 start = g_get_monotonic_time ();

    g_assert_null (dvt_runtime_gather_blocking (rt, tasks, 3, NULL, NULL, &error));
    g_assert_error (error, TEST_ERROR, 9);
    g_clear_error (&error);
    g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC * slow);
  }

  /* Each in its slot. */
  {
    g_autoptr(GArray) results = dvt_runtime_gather_blocking (rt, tasks, 3, return_errors, NULL,
                                                             &error);

    g_assert_no_error (error);
    g_assert_cmpuint (results->len, ==, 3);
    assert_int_value (&g_array_index (results, GValue, 0), 42);
    g_assert_true (G_VALUE_HOLDS (&g_array_index (results, GValue, 1), G_TYPE_ERROR));
    g_assert_error ((GError *) g_value_get_boxed (&g_array_index (results, GValue, 1)),
                    TEST_ERROR, 9);
    g_assert_true (g_value_get_pointer (&g_array_index (results, GValue, 2)) == &probe.freed);
  }

  /* The same task twice. */
  {
    DvtTask *twice[] = { tasks[0], tasks[0] };
    g_autoptr(GArray) results = dvt_runtime_gather_blocking (rt, twice, 2, NULL, NULL, &error);

    g_assert_no_error (error);
    assert_int_value (&g_array_index (results, GValue, 0), 42);
    assert_int_value (&g_array_index (results, GValue, 1), 42);
  }

  /* None at all, with or without an array. */
  {
    g_autoptr(GArray) r1 = dvt_runtime_gather_blocking (rt, NULL, 0, NULL, NULL, &error);
    g_autoptr(GArray) r2 = dvt_runtime_gather_blocking (rt, tasks, 0, NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (r1->len, ==, 0);
    g_assert_cmpuint (r2->len, ==, 0);
  }

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    g_object_unref (tasks[i]);
  g_assert_cmpint (probe.freed, ==, 0);
}

static void
test_gather_other_runtime (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(TestRuntime) other = dvt_runtime_new (1);
  g_autoptr(TestRuntime) closed = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  DvtTask *tasks[3];
  Call c;

  call_init (&c, &entries[4], other);
  tasks[0] = dvt_runtime_submit (closed, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (tasks[0], 0, &error));
  dvt_runtime_shutdown (closed, TRUE, FALSE);
  tasks[1] = dvt_runtime_submit (other, work_gated, &c, NULL, NULL, NULL, &error);
  tasks[2] = dvt_runtime_submit (rt, work_value, &(Call) { 0 }, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  gate_open (&c.gate);
  results = dvt_runtime_gather_blocking (rt, tasks, 3, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 3);
  assert_int_value (&g_array_index (results, GValue, 0), 42);
  assert_int_value (&g_array_index (results, GValue, 1), 5);
  assert_int_value (&g_array_index (results, GValue, 2), 42);

  for (guint i = 0; i < G_N_ELEMENTS (tasks); i++)
    g_object_unref (tasks[i]);
  call_clear (&c);
}

/* A map item kept past its map: waiting for it ends once it has a result
 * (it once hung), and it reads as completed. */
static void
test_kept_map_item (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  Call c;

  call_init (&c, &entries[5], rt);
  c.func = work_keep_item;
  c.n_items = 3;
  g_assert_true (call_run (&c));
  g_assert_no_error (c.error);
  g_assert_nonnull (c.kept);
  assert_int_value (&c.value, 0);

  g_assert_cmpuint (dvt_task_get_index (c.kept), ==, 0);
  g_assert_true (dvt_task_wait (c.kept, 10 * slow, &error));
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (c.kept, 0, &error));
  g_assert_true (dvt_task_get_completed (c.kept));

  g_clear_object (&c.kept);
  call_assert_destroyed_once (&c);
  call_clear (&c);
}

/* Reading a kept item: its result went to the map's slot. Whatever it
 * gives (the value, or a critical saying where the result went), it must
 * not claim that a task it reports as completed has not completed. In a
 * child, so that any message is allowed but that one. */
static void
test_kept_map_item_read (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
      g_autoptr(GError) error = NULL;
      gint64 result;
      Call c;

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      call_init (&c, &entries[5], rt);
      c.func = work_keep_item;
      c.n_items = 3;
      g_assert_true (call_run (&c));
      g_assert_true (dvt_task_wait (c.kept, 10, NULL));
      g_assert_true (dvt_task_get_completed (c.kept));
      result = dvt_task_propagate_int (c.kept, &error);
      g_printerr ("read: %" G_GINT64_FORMAT ", %s\n", result,
                  error != NULL ? error->message : "no error");
      g_clear_object (&c.kept);
      call_clear (&c);
      /* The message of check_result() in dvt-task.c. */
      if (g_error_matches (error, DVT_ERROR, DVT_ERROR_FAILED) &&
          strstr (error->message, "not completed") != NULL)
        exit (3);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  /* Fail without aborting, so that the tests after this one still run:
   * the child's stderr, above, says what it read. */
  if (!g_test_trap_has_passed ())
    g_test_fail_printf ("reading a kept map item that reports itself completed failed "
                        "(exit status 3: it says it has not completed)");
}

/* ---- maps with odd sizes ----------------------------------------------- */

static void
test_map_empty_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  Call c;

  call_init (&c, entry, rt);
  c.n_items = 0;
  g_assert_true (call_run (&c));
  g_assert_no_error (c.error);
  g_assert_false (G_IS_VALUE (&c.value));
  g_assert_cmpint (c.calls, ==, 0);
  call_assert_destroyed_once (&c);
  call_clear (&c);
  assert_stats_settled (rt);
}

static void
test_map_huge_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  static const guint sizes[] = { G_MAXUINT, G_MAXINT, (guint) G_MAXINT / 2 + 1 };

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      Call c;

      call_init (&c, entry, rt);
      c.n_items = sizes[i];
      g_assert_false (call_run (&c));
      g_assert_error (c.error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      assert_message (c.error);
      g_assert_cmpint (c.calls, ==, 0);
      call_assert_destroyed_once (&c);
      call_clear (&c);
    }
  assert_stats_settled (rt);
}

/* ---- misbehaving work functions ---------------------------------------- */

static void
work_nothing (DvtTask      *task,
              GCancellable *cancellable,
              gpointer      user_data,
              GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
}

static void
test_not_completed_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  Call c;

  call_init (&c, entry, rt);
  c.func = work_nothing;
  g_assert_false (call_run (&c));
  g_assert_error (c.error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  assert_message (c.error);
  g_assert_cmpint (c.calls, ==, 1);
  call_assert_destroyed_once (&c);
  call_clear (&c);

  /* In return-errors mode, in the item's slot. */
  if (entry->map)
    {
      call_init (&c, entry, rt);
      c.func = work_nothing;
      c.n_items = 3;
      dvt_options_set_return_errors (c.options, TRUE);
      g_assert_true (call_run (&c));
      g_assert_no_error (c.error);
      g_assert_true (G_VALUE_HOLDS (&c.value, G_TYPE_ERROR));
      g_assert_error ((GError *) g_value_get_boxed (&c.value), DVT_ERROR,
                      DVT_ERROR_NOT_COMPLETED);
      g_assert_cmpint (c.calls, ==, 3);
      call_assert_destroyed_once (&c);
      call_clear (&c);
    }

  assert_stats_settled (rt);
}

static void
work_twice (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  dvt_task_return_int (task, 1);
  dvt_task_return_int (task, 2);
}

static void
work_twice_error (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  dvt_task_return_int (task, 1);
  dvt_task_return_new_error (task, TEST_ERROR, 2, "second");
}

static void
work_twice_pointer (DvtTask      *task,
                    GCancellable *cancellable,
                    gpointer      user_data,
                    GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  dvt_task_return_int (task, 1);
  /* The dropped result is freed. */
  dvt_task_return_pointer (task, &c->freed, pointer_freed);
}

static void
test_complete_twice_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  DvtThreadFunc funcs[] = { work_twice, work_twice_error, work_twice_pointer };

  for (guint i = 0; i < G_N_ELEMENTS (funcs); i++)
    {
      Call c;

      call_init (&c, entry, rt);
      c.func = funcs[i];
      expect_dvt_critical ("*completed twice*");
      g_assert_true (call_run (&c));
      g_assert_no_error (c.error);
      assert_int_value (&c.value, 1);
      assert_dvt_criticals_seen ();
      g_assert_cmpint (c.freed, ==, funcs[i] == work_twice_pointer ? 1 : 0);
      call_assert_destroyed_once (&c);
      call_clear (&c);
    }

  assert_stats_settled (rt);
}

static void
work_value_and_error (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  dvt_task_return_int (task, 7);
  g_set_error (error, TEST_ERROR, 3, "also failed");
}

static void
test_value_and_error_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  Call c;

  call_init (&c, entry, rt);
  c.func = work_value_and_error;
  expect_dvt_critical ("*completed task*also failed*also failed*");
  g_assert_true (call_run (&c));
  g_assert_no_error (c.error);
  assert_int_value (&c.value, 7);
  assert_dvt_criticals_seen ();
  call_assert_destroyed_once (&c);
  call_clear (&c);

  assert_stats_settled (rt);
}

/* Late results: a pointer whose destroy is counted. */
typedef struct
{
  Call *c;
} LateResult;

static void
late_result_free (gpointer data)
{
  LateResult *r = data;

  g_atomic_int_inc (&r->c->freed);
  g_free (r);
}

static void
return_late (Call    *c,
             DvtTask *task)
{
  LateResult *r = g_new0 (LateResult, 1);

  r->c = c;
  dvt_task_return_pointer (task, r, late_result_free);
  g_atomic_int_inc (&c->finished);
}

/* Blocks its worker until the gate opens, ignoring cancellation. */
static void
work_late_block (DvtTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data,
                 GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  gate_wait (&c->gate);
  return_late (c, task);
}

typedef struct
{
  Call    *c;
  DvtTask *task;
} LateJob;

static gpointer
late_thread_func (gpointer data)
{
  LateJob *job = data;

  gate_wait (&job->c->gate);
  return_late (job->c, job->task);
  g_object_unref (job->task);
  g_free (job);

  return NULL;
}

/* Keeps its task and hands it to another thread, which completes it once
 * the gate opens. */
static void
work_late_thread (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  Call *c = user_data;
  LateJob *job = g_new0 (LateJob, 1);

  g_atomic_int_inc (&c->calls);
  job->c = c;
  job->task = g_object_ref (task);
  c->late_thread = g_thread_new ("late", late_thread_func, job);
}

static void
test_late_after_timeout_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtStats) stats = NULL;
  gint64 start, elapsed;
  Call c;

  call_init (&c, entry, rt);
  /* Blocking functions block; async ones return and complete later. */
  c.func = entry->async_func ? work_late_thread : work_late_block;
  dvt_options_set_timeout (c.options, 0.05);

  start = g_get_monotonic_time ();
  g_assert_false (call_run (&c));
  elapsed = g_get_monotonic_time () - start;
  g_assert_error (c.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_message (c.error);
  g_assert_cmpint (elapsed, >=, 40000);
  g_assert_cmpint (elapsed, <, G_USEC_PER_SEC * slow);
  g_assert_cmpint (g_atomic_int_get (&c.calls), ==, 1);
  g_assert_cmpint (c.finished, ==, 0);

  /* The late result is dropped quietly (an unexpected critical would
   * abort) and freed. */
  gate_open (&c.gate);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.finished) == 1, 20));
  g_assert_cmpint (g_atomic_int_get (&c.freed), ==, 1);
  if (c.late_thread != NULL)
    g_clear_pointer (&c.late_thread, g_thread_join);
  call_assert_destroyed_once (&c);
  g_assert_cmpint (c.freed, ==, 1);
  call_clear (&c);

  assert_stats_settled (rt);
  /* A map counts once, and its items not at all. */
  stats = dvt_runtime_get_stats (rt);
  if (!entry->map)
    g_assert_cmpuint (stats->timed_out, ==, 1);
}

/* A blocking function that keeps its task and completes it later, from
 * another thread: it returned without completing it, so the task fails
 * with DVT_ERROR_NOT_COMPLETED, and the late result is dropped quietly. */
static void
test_thread_keeps_task_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  Call c;

  call_init (&c, entry, rt);
  c.func = work_late_thread;
  g_assert_false (call_run (&c));
  g_assert_error (c.error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
  assert_message (c.error);

  gate_open (&c.gate);
  g_clear_pointer (&c.late_thread, g_thread_join);
  g_assert_cmpint (c.finished, ==, 1);
  g_assert_cmpint (c.freed, ==, 1);
  call_assert_destroyed_once (&c);
  call_clear (&c);

  assert_stats_settled (rt);
}

/* Keeps its task and never completes it. */
static void
work_keep (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  Call *c = user_data;

  g_atomic_int_inc (&c->calls);
  g_assert_null (c->kept);
  g_atomic_pointer_set (&c->kept, g_object_ref (task));
}

static gpointer
cancel_later_thread (gpointer data)
{
  g_usleep (50000);
  g_cancellable_cancel (data);

  return NULL;
}

static void
test_never_completes_entry (gconstpointer data)
{
  const Entry *entry = data;
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtStats) stats = NULL;
  GThread *canceller;
  gint64 start;
  Call c;

  /* With a timeout: it times out. */
  call_init (&c, entry, rt);
  c.func = work_keep;
  dvt_options_set_timeout (c.options, 0.05);
  start = g_get_monotonic_time ();
  g_assert_false (call_run (&c));
  g_assert_error (c.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_message (c.error);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC * slow);
  g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&c.kept) != NULL, 20));
  g_assert_true (dvt_task_get_completed (c.kept) || entry->map);
  /* Completing it now is too late, and quiet. */
  dvt_task_return_int (c.kept, 3);
  g_clear_object (&c.kept);
  call_assert_destroyed_once (&c);
  call_clear (&c);

  /* Without: it waits until cancelled. */
  call_init (&c, entry, rt);
  c.func = work_keep;
  c.cancellable = cancellable;
  canceller = g_thread_new ("canceller", cancel_later_thread, cancellable);
  g_assert_false (call_run (&c));
  g_assert_error (c.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  assert_message (c.error);
  g_thread_join (canceller);
  g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&c.kept) != NULL, 20));
  g_clear_object (&c.kept);
  call_assert_destroyed_once (&c);
  call_clear (&c);

  assert_stats_settled (rt);
  /* A map counts once, and its items not at all. */
  stats = dvt_runtime_get_stats (rt);
  if (!entry->map)
    g_assert_cmpuint (stats->timed_out, ==, 1);
}

/* A scheduled async function that neither completes its task nor (in the
 * second case) keeps it: the caller holds the task, so it stays pending,
 * and can be waited on with a deadline and cancelled. */
static void
test_schedule_pending (void)
{
  g_autoptr(TestRuntime) rt = dvt_runtime_new (2);
  DvtThreadFunc funcs[] = { work_keep, work_nothing };

  for (guint i = 0; i < G_N_ELEMENTS (funcs); i++)
    {
      g_autoptr(GError) error = NULL;
      Call c;

      call_init (&c, &entries[3], rt);
      c.task = dvt_runtime_schedule (rt, funcs[i], &c, call_data_destroy, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (POLL_UNTIL (g_atomic_int_get (&c.calls) == 1, 20));

      g_assert_false (dvt_task_wait (c.task, 0.05, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      g_clear_error (&error);
      g_assert_false (dvt_task_get_completed (c.task));

      dvt_task_cancel (c.task);
      g_assert_true (dvt_task_wait (c.task, 0, &error));
      g_assert_false (dvt_task_propagate_boolean (c.task, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&error);

      if (c.kept != NULL)
        {
          /* What it completes it with later is dropped quietly. */
          dvt_task_return_pointer (c.kept, &c.freed, pointer_freed);
          g_assert_cmpint (c.freed, ==, 1);
          g_clear_object (&c.kept);
        }
      call_assert_destroyed_once (&c);
      call_clear (&c);
    }

  assert_stats_settled (rt);
}

/* ---- the process-wide functions ---------------------------------------- */

static void
hook_count (gpointer data)
{
  g_atomic_int_inc ((int *) data);
}

/* The shutdown hook's data is freed once, whatever replaces it. The hook
 * never runs here (no exit, no signal), and the test leaves none behind. */
static void
test_registry_hook_destroy (void)
{
  int a = 0, b = 0, c = 0;

  dvt_runtime_set_shutdown_hook (hook_count, &a, count_destroy);
  g_assert_cmpint (a, ==, 0);
  dvt_runtime_set_shutdown_hook (hook_count, &b, count_destroy);
  g_assert_cmpint (a, ==, 1);
  g_assert_cmpint (b, ==, 0);
  dvt_runtime_set_shutdown_hook (NULL, NULL, NULL);
  g_assert_cmpint (b, ==, 1);
  dvt_runtime_set_shutdown_hook (NULL, NULL, NULL);
  g_assert_cmpint (a, ==, 1);
  g_assert_cmpint (b, ==, 1);

  /* No hook, but data and a destroy notify: the data is freed at once,
   * as dvt_options_set_retry_filter() does, not leaked. */
  dvt_runtime_set_shutdown_hook (NULL, &c, count_destroy);
  g_assert_cmpint (c, ==, 1);
  dvt_runtime_set_shutdown_hook (NULL, NULL, NULL);
  g_assert_cmpint (c, <=, 1);
  g_assert_cmpint (a, ==, 1);
  g_assert_cmpint (b, ==, 1);
}

static gboolean
list_has (GList   *list,
          gpointer runtime)
{
  return g_list_find (list, runtime) != NULL;
}

/* Calling the process-wide functions twice, or with nothing to do. */
static void
test_registry_twice (void)
{
  g_autoptr(TestRuntime) registered = dvt_runtime_new (1);
  g_autoptr(TestRuntime) unregistered = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 1,
                                                      "auto-register", FALSE, NULL);
  GList *active;

  active = dvt_runtime_list_active ();
  g_assert_true (list_has (active, registered));
  g_assert_false (list_has (active, unregistered));
  g_list_free_full (active, g_object_unref);

  g_assert_cmpuint (dvt_runtime_shutdown_all (TRUE, TRUE), >=, 1);
  g_assert_true (dvt_runtime_is_shutdown (registered));
  g_assert_false (dvt_runtime_is_shutdown (unregistered));
  /* Again: nothing more to shut down. */
  g_assert_cmpuint (dvt_runtime_shutdown_all (TRUE, TRUE), ==, 0);
  g_assert_cmpuint (dvt_runtime_shutdown_all (FALSE, FALSE), ==, 0);

  active = dvt_runtime_list_active ();
  g_assert_false (list_has (active, registered));
  g_list_free_full (active, g_object_unref);

  /* The one left alone still works. */
  {
    g_autoptr(GError) error = NULL;
    g_auto(GValue) v = G_VALUE_INIT;

    g_assert_true (dvt_runtime_to_thread_blocking (unregistered, work_value, &(Call) { 0 },
                                                   NULL, NULL, NULL, &v, &error));
    g_assert_no_error (error);
  }
}

/* The exit handler run twice, and from inside the hook it runs: the hook
 * runs once, and nothing deadlocks. In a child, as it ends Dovetail's
 * handling of exit for the process. */
static int exit_hook_ran;

static void
exit_hook (gpointer data)
{
  g_atomic_int_inc (&exit_hook_ran);
  dvt_runtime_run_exit_handler ();
  dvt_runtime_shutdown_all (TRUE, TRUE);
}

static void
test_registry_exit_handler_twice (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(TestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 1,
                                                "shutdown-on-exit", TRUE, NULL);
      int destroyed = 0;

      dvt_runtime_set_shutdown_hook (exit_hook, &destroyed, count_destroy);
      dvt_runtime_run_exit_handler ();
      g_assert_cmpint (exit_hook_ran, ==, 1);
      g_assert_cmpint (destroyed, ==, 1);
      g_assert_true (dvt_runtime_is_shutdown (rt));
      dvt_runtime_run_exit_handler ();
      g_assert_cmpint (exit_hook_ran, ==, 1);
      g_assert_cmpint (destroyed, ==, 1);
      return;
    }

  g_test_trap_subprocess (NULL, (guint64) (60 * slow * G_USEC_PER_SEC),
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* ---- main -------------------------------------------------------------- */

static void
add_entry_tests (const char     *prefix,
                 GTestDataFunc   func,
                 gboolean      (*applies) (const Entry *))
{
  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    if (applies == NULL || applies (&entries[i]))
      {
        g_autofree char *path = g_strdup_printf ("%s/%s", prefix, entries[i].name);

        g_test_add_data_func (path, &entries[i], func);
      }
}

static gboolean
is_map (const Entry *e)
{
  return e->map;
}

static gboolean
can_block_on_loop (const Entry *e)
{
  return !e->callback;
}

static gboolean
detects_dropped_task (const Entry *e)
{
  /* A scheduled task is held by its caller: it cannot be known dropped. */
  return !e->future || !e->async_func;
}

static gboolean
is_thread_work (const Entry *e)
{
  return !e->async_func;
}

static gboolean
is_async_work (const Entry *e)
{
  return e->async_func;
}

int
main (int argc, char *argv[])
{
  static BadCase bad_cases[G_N_ELEMENTS (entries) * N_BAD_ARGS];
  guint n_bad_cases = 0;

  g_log_set_writer_func (test_log_writer, NULL, NULL);
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  /* Programmer errors. */
  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    for (BadArg bad = 0; bad < N_BAD_ARGS; bad++)
      {
        g_autofree char *path = NULL;

        if ((bad == BAD_SET_VALUE && !entries[i].has_value) ||
            (bad == BAD_SET_ERROR && !entries[i].has_error))
          continue;
        bad_cases[n_bad_cases] = (BadCase) { &entries[i], bad };
        path = g_strdup_printf ("/badinput/critical/%s/%s", entries[i].name, bad_arg_names[bad]);
        g_test_add_data_func (path, &bad_cases[n_bad_cases++], test_critical_entry);
      }
  g_test_add_func ("/badinput/critical/runtime-api", test_critical_runtime_api);
  g_test_add_func ("/badinput/critical/task-api", test_critical_task_api);
  g_test_add_func ("/badinput/critical/task-args", test_critical_task_args);
  g_test_add_func ("/badinput/critical/finish", test_critical_finish);
  g_test_add_func ("/badinput/critical/gather", test_critical_gather);
  g_test_add_func ("/badinput/critical/options-api", test_critical_options_api);

  g_test_add_func ("/badinput/stats/counters-extremes", test_stats_counters_extremes);
  g_test_add_func ("/badinput/registry/hook-destroy", test_registry_hook_destroy);
  g_test_add_func ("/badinput/registry/twice", test_registry_twice);
  g_test_add_func ("/badinput/registry/exit-handler-twice", test_registry_exit_handler_twice);

  /* Out-of-range values. */
  g_test_add_func ("/badinput/options/out-of-range", test_options_out_of_range);
  g_test_add_func ("/badinput/options/properties-out-of-range",
                   test_options_properties_out_of_range);
  g_test_add_func ("/badinput/options/retry-filter-destroy", test_options_retry_filter_destroy);
  g_test_add_func ("/badinput/runtime/properties-out-of-range",
                   test_runtime_properties_out_of_range);
  g_test_add_func ("/badinput/runtime/construct-out-of-range",
                   test_runtime_construct_out_of_range);
  g_test_add_func ("/badinput/rate-limit/invalid", test_rate_limit_invalid);
  g_test_add_func ("/badinput/rate-limit/tiny", test_rate_limit_tiny);
  g_test_add_func ("/badinput/rate-limit/huge-burst", test_rate_limit_huge_burst);

  /* Conditions reachable by ordinary use. */
  add_entry_tests ("/badinput/closed", test_closed_entry, NULL);
  g_test_add_func ("/badinput/closed/gather", test_closed_gather);
  g_test_add_func ("/badinput/null-callback", test_null_callback);
  add_entry_tests ("/badinput/would-deadlock", test_would_deadlock_entry, can_block_on_loop);
  g_test_add_func ("/badinput/would-deadlock/wait-and-gather", test_would_deadlock_waits);
  g_test_add_func ("/badinput/task/read-before-completed", test_read_before_completed);
  g_test_add_func ("/badinput/task/propagate-twice", test_propagate_twice);
  g_test_add_func ("/badinput/task/wait-odd-timeouts", test_wait_odd_timeouts);
  g_test_add_func ("/badinput/task/cancel-finished", test_cancel_finished);
  g_test_add_func ("/badinput/task/complete-after-end", test_complete_after_end);
  g_test_add_func ("/badinput/task/return-no-value", test_return_no_value);
  g_test_add_func ("/badinput/task/kept-map-item", test_kept_map_item);
  g_test_add_func ("/badinput/task/kept-map-item-read", test_kept_map_item_read);
  g_test_add_func ("/badinput/gather/finished", test_gather_finished);
  g_test_add_func ("/badinput/gather/other-runtime", test_gather_other_runtime);
  add_entry_tests ("/badinput/map/empty", test_map_empty_entry, is_map);
  add_entry_tests ("/badinput/map/huge", test_map_huge_entry, is_map);

  /* Misbehaving work functions. */
  add_entry_tests ("/badinput/work/not-completed", test_not_completed_entry,
                   detects_dropped_task);
  add_entry_tests ("/badinput/work/complete-twice", test_complete_twice_entry, NULL);
  add_entry_tests ("/badinput/work/value-and-error", test_value_and_error_entry, NULL);
  add_entry_tests ("/badinput/work/late-after-timeout", test_late_after_timeout_entry, NULL);
  add_entry_tests ("/badinput/work/thread-keeps-task", test_thread_keeps_task_entry,
                   is_thread_work);
  add_entry_tests ("/badinput/work/never-completes", test_never_completes_entry,
                   is_async_work);
  g_test_add_func ("/badinput/work/schedule-pending", test_schedule_pending);

  return g_test_run ();
}
