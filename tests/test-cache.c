/* test-cache.c: DvtCache, single flight and memoisation
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include <math.h>
#include <string.h>

#define N_KEYS 100

/* ---- the cache's function ---------------------------------------------------
 *
 * Computes key · 1 000 000 + the number of this call (1, 2, ...) for an
 * int32 key, counting the calls per key. While `hold` is set, each run
 * waits until it is cleared or the run is cancelled. */
typedef struct
{
  int calls[N_KEYS];   /* atomic */
  int n_calls;         /* atomic */
  int n_waiting;       /* atomic: runs held right now */
  int n_cancelled;     /* atomic: runs that saw their cancellable cancelled */
  int hold;            /* atomic */
  int fail;            /* atomic: fail with TEST_ERROR 7 */
  guint sleep_us;      /* how long each run takes */
  GThread *ran_on;     /* atomic: the thread of the last run */
} Work;

static int
key_number (GVariant *key)
{
  if (g_variant_is_of_type (key, G_VARIANT_TYPE_INT32))
    return g_variant_get_int32 (key);
  if (g_variant_is_of_type (key, G_VARIANT_TYPE ("(is)")))
    {
      int n;

      g_variant_get (key, "(i&s)", &n, NULL);
      return n;
    }
  return 0;
}

static void
compute (DvtTask       *task,
         GVariant      *key,
         GCancellable  *cancellable,
         gpointer       user_data,
         GError       **error)
{
  Work *w = user_data;
  int k = key_number (key);
  int n = g_atomic_int_add (&w->n_calls, 1) + 1;

  g_atomic_pointer_set (&w->ran_on, g_thread_self ());
  if (k >= 0 && k < N_KEYS)
    g_atomic_int_inc (&w->calls[k]);
  if (w->sleep_us != 0)
    g_usleep (w->sleep_us);

  if (g_atomic_int_get (&w->hold))
    {
      g_atomic_int_inc (&w->n_waiting);
      g_assert_true (POLL_UNTIL (!g_atomic_int_get (&w->hold) ||
                                 g_cancellable_is_cancelled (cancellable), 60));
      g_atomic_int_add (&w->n_waiting, -1);
    }

  if (g_cancellable_is_cancelled (cancellable))
    {
      g_atomic_int_inc (&w->n_cancelled);
      g_cancellable_set_error_if_cancelled (cancellable, error);
      return;
    }

  if (g_atomic_int_get (&w->fail))
    g_set_error (error, TEST_ERROR, 7, "failed on purpose");
  else
    dvt_task_return_int (task, (gint64) k * 1000000 + n);
}

#define KEY(n) g_variant_new_int32 (n)

static DvtCache *
new_cache (DvtRuntime *rt,
           Work       *w)
{
  return dvt_cache_new (rt, compute, w, NULL);
}

/* The value of @key, blocking. */
static gint64
get_int (DvtCache *cache,
         int       key)
{
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_cache_get_blocking (cache, KEY (key), 0, NULL, &value, &error));
  g_assert_no_error (error);

  return g_value_get_int64 (&value);
}

/* Waits for a caller's task and reads its value. */
static gint64
task_int (DvtTask *task)
{
  g_autoptr(GError) error = NULL;
  gint64 v;

  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  v = dvt_task_propagate_int (task, &error);
  g_assert_no_error (error);

  return v;
}

static void
assert_task_cancelled (DvtTask *task)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_task_wait (task, 30 * slow, &error));
  g_assert_cmpint (dvt_task_propagate_int (task, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* A cache must be finalized once its last reference goes (and its runs
 * have ended): nothing keeps it alive. */
static void
drop_cache (DvtCache **cache)
{
  gpointer weak = *cache;

  add_weak_pointer_atomic (G_OBJECT (*cache), &weak);
  g_clear_object (cache);
  g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&weak) == NULL, 30));
}

/* ---- memoisation ------------------------------------------------------------ */

static void
test_stored (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GError) error = NULL;

  /* The default TTL keeps values for good. */
  g_assert_cmpfloat (dvt_cache_get_ttl (cache), ==, G_MAXDOUBLE);
  g_assert_true (dvt_cache_get_evict_on_error (cache));
  g_assert_cmpuint (dvt_cache_get_max_size (cache), ==, 0);

  g_assert_false (dvt_cache_lookup (cache, KEY (3), &value));
  g_assert_true (G_VALUE_HOLDS_POINTER (&value));
  g_value_unset (&value);

  g_assert_cmpint (get_int (cache, 3), ==, 3000001);
  g_assert_cmpint (get_int (cache, 3), ==, 3000001);
  g_assert_cmpint (get_int (cache, 4), ==, 4000002);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 2);
  g_assert_cmpint (w.calls[3], ==, 1);

  /* A caller's task, completed at once from the stored value. */
  task = dvt_cache_get (cache, KEY (3), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_get_completed (task));
  g_assert_cmpint (task_int (task), ==, 3000001);

  g_assert_true (dvt_cache_lookup (cache, KEY (4), &value));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 4000002);
  g_assert_true (dvt_cache_lookup (cache, KEY (4), NULL));

  g_assert_cmpint (w.n_calls, ==, 2);
  g_assert_cmpuint (dvt_cache_get_runs (cache), ==, 2);
  g_assert_cmpuint (dvt_cache_get_misses (cache), ==, 3);  /* the first lookup too */
  g_assert_cmpuint (dvt_cache_get_hits (cache), ==, 4);

  /* Invalidated: computed again. */
  g_assert_true (dvt_cache_invalidate (cache, KEY (3)));
  g_assert_false (dvt_cache_invalidate (cache, KEY (3)));
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 1);
  g_assert_cmpint (get_int (cache, 3), ==, 3000003);

  dvt_cache_clear (cache);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 0);
  g_assert_false (dvt_cache_lookup (cache, KEY (4), NULL));
  g_assert_cmpint (get_int (cache, 4), ==, 4000004);

  drop_cache (&cache);
}

/* Keys are compared by value, containers included, whatever their form. */
static void
test_keys (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(GVariant) tuple = g_variant_ref_sink (g_variant_new ("(is)", 5, "five"));
  g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (tuple);
  /* The same value, from bytes nobody vouched for. */
  g_autoptr(GVariant) untrusted = g_variant_ref_sink (
    g_variant_new_from_bytes (G_VARIANT_TYPE ("(is)"), bytes, FALSE));
  g_auto(GValue) value = G_VALUE_INIT;

  g_assert_true (dvt_cache_get_blocking (cache, tuple, 0, NULL, &value, NULL));
  g_value_unset (&value);
  g_assert_true (dvt_cache_get_blocking (cache, untrusted, 0, NULL, &value, NULL));
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new ("(is)", 5, "five"), 0, NULL,
                                         NULL, NULL));
  g_assert_cmpint (w.n_calls, ==, 1);

  /* Other values and other types are other keys. */
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new ("(is)", 5, "cinq"), 0, NULL,
                                         NULL, NULL));
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new_int32 (5), 0, NULL, NULL, NULL));
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new_int64 (5), 0, NULL, NULL, NULL));
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new_string ("5"), 0, NULL, NULL, NULL));
  g_assert_cmpint (w.n_calls, ==, 5);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 5);

  /* A value of no bytes at all. */
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new ("()"), 0, NULL, NULL, NULL));
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new ("()"), 0, NULL, NULL, NULL));
  g_assert_cmpint (w.n_calls, ==, 6);

  drop_cache (&cache);
}

/* A cache made with a key type refuses other keys with a GError; a
 * missing key is a programmer's mistake: a critical, and the error too. */
static void
test_key_type (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  g_autoptr(DvtCache) cache = dvt_cache_new_full (rt, G_VARIANT_TYPE ("(i*)"), DVT_CACHE_FLAGS_NONE,
                                                  compute, &w, NULL);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_variant_type_equal (dvt_cache_get_key_type (cache), G_VARIANT_TYPE ("(i*)")));
  g_assert_true (dvt_cache_get_blocking (cache, g_variant_new ("(is)", 5, "x"), 0, NULL, NULL,
                                         &error));
  g_assert_no_error (error);

  g_assert_false (dvt_cache_get_blocking (cache, KEY (5), 0, NULL, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "(i*)"));
  g_assert_true (G_VALUE_HOLDS_POINTER (&value));
  g_clear_error (&error);
  g_assert_null (dvt_cache_get (cache, g_variant_new_string ("x"), NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dvt_cache_lookup (cache, KEY (5), NULL));
  g_assert_false (dvt_cache_invalidate (cache, KEY (5)));
  g_assert_cmpint (w.n_calls, ==, 1);

  g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*key != NULL*");
  g_assert_null (dvt_cache_get (cache, NULL, NULL, &error));
  g_test_assert_expected_messages ();
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*key != NULL*");
  g_assert_false (dvt_cache_get_blocking (cache, NULL, 0, NULL, NULL, &error));
  g_test_assert_expected_messages ();
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
}

/* Errors reach the caller unchanged and are not kept by default; with
 * evict-on-error unset they are, until it is set again. */
static void
test_errors (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(GError) error = NULL;

  g_atomic_int_set (&w.fail, 1);
  for (int i = 0; i < 2; i++)
    {
      g_assert_false (dvt_cache_get_blocking (cache, KEY (1), 0, NULL, NULL, &error));
      g_assert_error (error, TEST_ERROR, 7);
      g_assert_cmpstr (error->message, ==, "failed on purpose");
      g_clear_error (&error);
    }
  g_assert_cmpint (w.n_calls, ==, 2);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 0);

  dvt_cache_set_evict_on_error (cache, FALSE);
  for (int i = 0; i < 3; i++)
    {
      g_assert_false (dvt_cache_get_blocking (cache, KEY (1), 0, NULL, NULL, &error));
      g_assert_error (error, TEST_ERROR, 7);
      g_clear_error (&error);
    }
  g_assert_cmpint (w.n_calls, ==, 3);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 1);
  /* A kept failure is no value. */
  g_assert_false (dvt_cache_lookup (cache, KEY (1), NULL));

  dvt_cache_set_evict_on_error (cache, TRUE);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 0);
  g_atomic_int_set (&w.fail, 0);
  g_assert_cmpint (get_int (cache, 1), ==, 1000004);

  drop_cache (&cache);
}

/* ---- single flight ---------------------------------------------------------- */

typedef struct
{
  DvtCache *cache;
  int       key;
  gint64    value;
  GError   *error;
  double    timeout;
} Caller;

static gpointer
blocking_caller (gpointer data)
{
  Caller *c = data;
  g_auto(GValue) value = G_VALUE_INIT;

  if (dvt_cache_get_blocking (c->cache, KEY (c->key), c->timeout, NULL, &value, &c->error))
    c->value = g_value_get_int64 (&value);

  return NULL;
}

static void
test_single_flight (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  Work w = { .hold = 1 };
  DvtCache *cache = new_cache (rt, &w);
  Caller callers[8];
  GThread *threads[8];
  g_autoptr(DvtTask) task = NULL;

  for (int i = 0; i < 8; i++)
    {
      callers[i] = (Caller) { cache, 7, 0, NULL, 0 };
      threads[i] = g_thread_new ("caller", blocking_caller, &callers[i]);
    }
  task = dvt_cache_get (cache, KEY (7), NULL, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  g_assert_false (dvt_task_get_completed (task));
  g_atomic_int_set (&w.hold, 0);

  for (int i = 0; i < 8; i++)
    {
      g_thread_join (threads[i]);
      g_assert_no_error (callers[i].error);
      g_assert_cmpint (callers[i].value, ==, 7000001);
    }
  g_assert_cmpint (task_int (task), ==, 7000001);
  g_assert_cmpint (w.n_calls, ==, 1);
  g_assert_cmpuint (dvt_cache_get_runs (cache), ==, 1);

  g_clear_object (&task);
  drop_cache (&cache);
}

/* One caller leaving never cancels the run while others wait; the last
 * one leaving does, and the key is then free for a new run. */
static void
test_cancel_one_waiter (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { .hold = 1 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtTask) a = dvt_cache_get (cache, KEY (1), NULL, NULL);
  g_autoptr(DvtTask) b = dvt_cache_get (cache, KEY (1), cancellable, NULL);
  g_autoptr(DvtTask) c = dvt_cache_get (cache, KEY (1), NULL, NULL);
  g_autoptr(DvtTask) d = NULL;
  Caller timed = { cache, 1, 0, NULL, 0.05 };

  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));

  /* By the task, by the caller's cancellable, by a wait limit. */
  dvt_task_cancel (a);
  assert_task_cancelled (a);
  g_cancellable_cancel (cancellable);
  assert_task_cancelled (b);
  g_thread_join (g_thread_new ("timed", blocking_caller, &timed));
  g_assert_error (timed.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&timed.error);

  /* The run goes on for c. */
  g_assert_false (dvt_task_get_completed (c));
  g_assert_cmpint (g_atomic_int_get (&w.n_waiting), ==, 1);
  g_atomic_int_set (&w.hold, 0);
  g_assert_cmpint (task_int (c), ==, 1000001);
  g_assert_cmpint (w.n_cancelled, ==, 0);
  g_assert_cmpint (w.n_calls, ==, 1);
  g_assert_true (dvt_cache_lookup (cache, KEY (1), NULL));

  /* Everyone leaves: the run is cancelled, and nothing is stored. */
  g_atomic_int_set (&w.hold, 1);
  g_clear_object (&a);
  g_clear_object (&b);
  g_clear_object (&c);
  a = dvt_cache_get (cache, KEY (2), NULL, NULL);
  b = dvt_cache_get (cache, KEY (2), NULL, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  dvt_task_cancel (a);
  g_assert_cmpint (g_atomic_int_get (&w.n_cancelled), ==, 0);
  dvt_task_cancel (b);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_cancelled) == 1, 30));
  assert_task_cancelled (a);
  assert_task_cancelled (b);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 0, 30));

  /* The next caller starts a new run. */
  g_atomic_int_set (&w.hold, 0);
  d = dvt_cache_get (cache, KEY (2), NULL, NULL);
  g_assert_cmpint (task_int (d), ==, 2000003);
  g_assert_cmpuint (dvt_cache_get_runs (cache), ==, 3);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 2);

  g_clear_object (&d);
  drop_cache (&cache);
}

/* Over and over, some callers of a run leave while it may be running:
 * those that stay always get its value. */
static void
test_cancel_race (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  guint rounds = is_valgrind () ? 50 : 500;
  GRand *rand = g_rand_new_with_seed (42);

  dvt_cache_set_ttl (cache, 0, NULL);
  for (guint r = 0; r < rounds; r++)
    {
      DvtTask *tasks[4];
      gboolean cancelled[4];

      for (int i = 0; i < 4; i++)
        {
          tasks[i] = dvt_cache_get (cache, KEY (r % N_KEYS), NULL, NULL);
          cancelled[i] = g_rand_boolean (rand);
        }
      for (int i = 0; i < 4; i++)
        if (cancelled[i])
          dvt_task_cancel (tasks[i]);
      for (int i = 0; i < 4; i++)
        {
          g_autoptr(GError) error = NULL;
          gint64 v;

          g_assert_true (dvt_task_wait (tasks[i], 30 * slow, NULL));
          v = dvt_task_propagate_int (tasks[i], &error);
          /* A caller that left may have had its value first; one that
           * stayed always gets it, never the cancellation of the run. */
          if (cancelled[i] && error != NULL)
            g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          else
            {
              g_assert_no_error (error);
              g_assert_cmpint (v / 1000000, ==, r % N_KEYS);
            }
          g_object_unref (tasks[i]);
        }
    }
  g_assert_cmpint (w.n_calls, <=, 4 * rounds);
  g_rand_free (rand);
  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  drop_cache (&cache);
}

/* A run computed after its key was invalidated (or the cache cleared)
 * gives its waiters its value, but stores nothing; callers that come
 * afterwards start a new run. */
static void
test_invalidate_during_run (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { .hold = 1 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(DvtTask) first = dvt_cache_get (cache, KEY (9), NULL, NULL);
  g_autoptr(DvtTask) second = NULL;
  g_auto(GValue) value = G_VALUE_INIT;

  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  g_assert_true (dvt_cache_invalidate (cache, KEY (9)));
  second = dvt_cache_get (cache, KEY (9), NULL, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 2, 30));
  g_assert_cmpuint (dvt_cache_get_runs (cache), ==, 2);

  /* Each run's value goes to its own waiters; only the second is stored
   * (its waiters get it once it is). */
  g_atomic_int_set (&w.hold, 0);
  g_assert_cmpint (task_int (first), ==, 9000001);
  g_assert_cmpint (task_int (second), ==, 9000002);
  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 1);
  g_assert_true (dvt_cache_lookup (cache, KEY (9), &value));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 9000002);
  g_value_unset (&value);

  /* Cleared during a run: nothing stored at all. */
  g_clear_object (&first);
  g_atomic_int_set (&w.hold, 1);
  first = dvt_cache_get (cache, KEY (10), NULL, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  dvt_cache_clear (cache);
  g_atomic_int_set (&w.hold, 0);
  g_assert_cmpint (task_int (first), ==, 10000003);
  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 0);
  g_assert_false (dvt_cache_lookup (cache, KEY (10), NULL));

  drop_cache (&cache);
}

/* ---- TTL and size ----------------------------------------------------------- */

static void
test_lru (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);

  dvt_cache_set_max_size (cache, 3);
  get_int (cache, 1);
  get_int (cache, 2);
  get_int (cache, 3);
  /* 1 is used again: 2 is now the least recently used. */
  g_assert_true (dvt_cache_lookup (cache, KEY (1), NULL));
  get_int (cache, 4);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 3);
  g_assert_false (dvt_cache_lookup (cache, KEY (2), NULL));
  g_assert_true (dvt_cache_lookup (cache, KEY (3), NULL));
  g_assert_true (dvt_cache_lookup (cache, KEY (1), NULL));
  g_assert_true (dvt_cache_lookup (cache, KEY (4), NULL));

  /* A get_blocking hit is a use too: 3 stays, 1 goes. */
  g_assert_cmpint (get_int (cache, 3), ==, 3000003);
  get_int (cache, 5);
  g_assert_false (dvt_cache_lookup (cache, KEY (1), NULL));
  g_assert_true (dvt_cache_lookup (cache, KEY (3), NULL));

  /* Shrinking evicts at once. */
  dvt_cache_set_max_size (cache, 1);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 1);
  g_assert_true (dvt_cache_lookup (cache, KEY (3), NULL));
  g_assert_cmpint (w.n_calls, ==, 5);

  drop_cache (&cache);
}

/* TTL 0: single flight only. */
static void
test_ttl_zero (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(DvtTask) a = NULL;
  g_autoptr(DvtTask) b = NULL;

  get_int (cache, 1);
  g_assert_true (dvt_cache_set_ttl (cache, 0, NULL));
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 0);

  g_assert_cmpint (get_int (cache, 1), ==, 1000002);
  g_assert_cmpint (get_int (cache, 1), ==, 1000003);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 0);

  /* Concurrent callers still share one run. */
  g_atomic_int_set (&w.hold, 1);
  a = dvt_cache_get (cache, KEY (1), NULL, NULL);
  b = dvt_cache_get (cache, KEY (1), NULL, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  g_atomic_int_set (&w.hold, 0);
  g_assert_cmpint (task_int (a), ==, 1000004);
  g_assert_cmpint (task_int (b), ==, 1000004);
  g_assert_cmpint (w.n_calls, ==, 4);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, 0);

  g_clear_object (&a);
  g_clear_object (&b);
  drop_cache (&cache);
}

/* A finite TTL: values leave on the runtime's timer, and are computed
 * again afterwards. No assumption on how soon: the test polls. */
static void
test_ttl_expiry (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_cache_set_ttl (cache, 0.02, &error));
  g_assert_cmpfloat (dvt_cache_get_ttl (cache), ==, 0.02);
  get_int (cache, 1);
  get_int (cache, 2);
  /* The timer removes them without anyone asking. */
  g_assert_true (POLL_UNTIL (dvt_cache_get_n_entries (cache) == 0, 30));
  g_assert_false (dvt_cache_lookup (cache, KEY (1), NULL));

  /* A TTL set later applies to the values already stored too. */
  g_assert_true (dvt_cache_set_ttl (cache, 3600, &error));
  g_assert_cmpint (get_int (cache, 1), ==, 1000003);
  g_assert_cmpint (get_int (cache, 1), ==, 1000003);
  g_assert_true (dvt_cache_set_ttl (cache, 0.01, &error));
  g_assert_true (POLL_UNTIL (!dvt_cache_lookup (cache, KEY (1), NULL), 30));
  g_assert_true (POLL_UNTIL (dvt_cache_get_n_entries (cache) == 0, 30));

  drop_cache (&cache);
}

/* Bad TTLs: a GError from the setter, GObject's warning from the
 * property; the TTL stays. */
static void
test_properties (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  g_autoptr(DvtCache) cache = new_cache (rt, &w);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtOptions) copy = NULL;
  const double bad[] = { -1, -0.001, INFINITY, -INFINITY, NAN };
  guint max_size;
  guint64 runs;

  g_assert_true (dvt_cache_get_runtime (cache) == rt);
  g_assert_cmpint (dvt_cache_get_flags (cache), ==, DVT_CACHE_FLAGS_NONE);
  g_assert_null (dvt_cache_get_key_type (cache));
  g_assert_true (dvt_cache_set_ttl (cache, 5, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (dvt_cache_set_ttl (cache, bad[i], &error));
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_test_expect_message ("GLib-GObject", G_LOG_LEVEL_WARNING, "*out of range*");
      g_object_set (cache, "ttl", bad[i], NULL);
      g_test_assert_expected_messages ();
      g_assert_cmpfloat (dvt_cache_get_ttl (cache), ==, 5);
    }
  g_object_set (cache, "ttl", G_MAXDOUBLE, "max-size", 10, "evict-on-error", FALSE, NULL);
  g_assert_cmpfloat (dvt_cache_get_ttl (cache), ==, G_MAXDOUBLE);
  g_object_get (cache, "max-size", &max_size, "runs", &runs, NULL);
  g_assert_cmpuint (max_size, ==, 10);
  g_assert_cmpuint (runs, ==, 0);
  g_assert_false (dvt_cache_get_evict_on_error (cache));

  /* Options: a copy in, a copy out. */
  g_assert_null (dvt_cache_dup_options (cache));
  dvt_options_set_name (options, "cached");
  dvt_cache_set_options (cache, options);
  dvt_options_set_name (options, "changed later");
  copy = dvt_cache_dup_options (cache);
  g_assert_cmpstr (dvt_options_get_name (copy), ==, "cached");
  g_assert_true (copy != options);
}

/* The runs have the cache's options: a name and a timeout here. */
static void
on_run_finished (DvtRuntime *runtime,
                 DvtTask    *task,
                 double      elapsed,
                 gpointer    user_data)
{
  g_atomic_int_inc ((int *) user_data);
}

static void
test_options (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  int n_named = 0;

  g_signal_connect (rt, "finished::cached-work", G_CALLBACK (on_run_finished), &n_named);
  dvt_options_set_name (options, "cached-work");
  dvt_options_set_timeout (options, 0.05);
  dvt_cache_set_options (cache, options);

  get_int (cache, 1);
  g_atomic_int_set (&w.hold, 1);
  g_assert_false (dvt_cache_get_blocking (cache, KEY (2), 0, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&n_named) == 1, 30));
  g_signal_handlers_disconnect_by_data (rt, &n_named);

  drop_cache (&cache);
}

/* ---- where work runs, and the main loop ------------------------------------------ */

static gboolean
complete_later (gpointer data)
{
  DvtTask *task = data;

  dvt_task_return_int (task, 77);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

/* Async work: completes from an idle source where it started. */
static void
compute_async (DvtTask       *task,
               GVariant      *key,
               GCancellable  *cancellable,
               gpointer       user_data,
               GError       **error)
{
  Work *w = user_data;
  GSource *idle = g_idle_source_new ();

  g_atomic_int_inc (&w->n_calls);
  g_atomic_pointer_set (&w->ran_on, g_thread_self ());
  g_source_set_callback (idle, complete_later, g_object_ref (task), NULL);
  g_source_attach (idle, g_main_context_get_thread_default ());
  g_source_unref (idle);
}

static void
test_async_work (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = dvt_cache_new_full (rt, NULL, DVT_CACHE_FLAGS_ASYNC_WORK,
                                        compute_async, &w, NULL);
  g_autoptr(DvtOptions) here = dvt_options_new ();
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  /* On the loop thread. */
  g_assert_true (dvt_cache_get_blocking (cache, KEY (1), 0, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 77);
  g_assert_true (w.ran_on != g_thread_self ());
  g_value_unset (&value);

  /* On this thread's context, which the blocking caller iterates. */
  dvt_options_set_use_caller_context (here, TRUE);
  dvt_cache_set_options (cache, here);
  g_assert_true (dvt_cache_get_blocking (cache, KEY (2), 0, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 77);
  g_assert_true (w.ran_on == g_thread_self ());
  g_assert_cmpint (w.n_calls, ==, 2);

  drop_cache (&cache);
}

static void
test_get_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtTask) other = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  Ready r;

  /* A miss, then a hit: the callback comes after the call returned. */
  for (int i = 0; i < 2; i++)
    {
      ready_init (&r);
      dvt_cache_get_async (cache, KEY (4), NULL, on_ready, &r);
      g_assert_cmpint (r.n, ==, 0);
      ready_wait (&r);
      g_assert_true (dvt_cache_get_finish (cache, r.result, &value, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_value_get_int64 (&value), ==, 4000001);
      g_value_unset (&value);
      g_clear_object (&r.result);
    }

  /* The run's error, unchanged. */
  g_atomic_int_set (&w.fail, 1);
  ready_init (&r);
  dvt_cache_get_async (cache, KEY (5), NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_false (dvt_cache_get_finish (cache, r.result, &value, &error));
  g_assert_error (error, TEST_ERROR, 7);
  g_assert_true (G_VALUE_HOLDS_POINTER (&value));
  g_value_unset (&value);
  g_clear_error (&error);
  g_clear_object (&r.result);
  g_atomic_int_set (&w.fail, 0);

  /* A cancelled wait ends this caller's wait only. */
  g_atomic_int_set (&w.hold, 1);
  other = dvt_cache_get (cache, KEY (6), NULL, NULL);
  ready_init (&r);
  dvt_cache_get_async (cache, KEY (6), cancellable, on_ready, &r);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  g_cancellable_cancel (cancellable);
  ready_wait (&r);
  g_assert_false (dvt_cache_get_finish (cache, r.result, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&r.result);
  g_assert_false (dvt_task_get_completed (other));
  g_atomic_int_set (&w.hold, 0);
  g_assert_cmpint (task_int (other), ==, 6000003);
  g_assert_cmpint (w.n_cancelled, ==, 0);

  g_clear_object (&other);
  drop_cache (&cache);
}

/* Callbacks on the thread-default context of the thread that called. */
static gpointer
async_on_other_thread (gpointer data)
{
  DvtCache *cache = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_auto(GValue) value = G_VALUE_INIT;
  Ready r;

  g_main_context_push_thread_default (context);
  ready_init (&r);
  dvt_cache_get_async (cache, KEY (8), NULL, on_ready, &r);
  g_assert_true (ITERATE_UNTIL (context, r.n > 0, 30));
  g_assert_true (dvt_cache_get_finish (cache, r.result, &value, NULL));
  g_assert_cmpint (g_value_get_int64 (&value), ==, 8000001);
  g_clear_object (&r.result);
  g_main_context_pop_thread_default (context);

  return NULL;
}

static void
test_get_async_context (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);

  g_thread_join (g_thread_new ("other", async_on_other_thread, cache));
  g_assert_false (g_main_context_pending (NULL));
  drop_cache (&cache);
}

/* A cache function that gets another key of another cache, on a runtime
 * of one worker: the waiting worker lets another start. */
static void
compute_nested (DvtTask       *task,
                GVariant      *key,
                GCancellable  *cancellable,
                gpointer       user_data,
                GError       **error)
{
  DvtCache *inner = user_data;
  g_auto(GValue) value = G_VALUE_INIT;

  if (dvt_cache_get_blocking (inner, key, 0, cancellable, &value, error))
    dvt_task_return_int (task, g_value_get_int64 (&value) + 1);
}

static void
test_nested (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  Work w = { 0 };
  DvtCache *inner = new_cache (rt, &w);
  DvtCache *outer = dvt_cache_new (rt, compute_nested, g_object_ref (inner), g_object_unref);

  g_assert_cmpint (get_int (outer, 3), ==, 3000002);
  g_assert_cmpint (get_int (outer, 3), ==, 3000002);
  g_assert_cmpint (get_int (inner, 3), ==, 3000001);
  drop_cache (&outer);
  drop_cache (&inner);
}

/* A blocking get on the loop thread must not wait there: a hit is fine, a
 * miss fails at once, and its run (nobody else waits) is cancelled. */
typedef struct
{
  DvtCache *cache;
  gboolean  hit_ok;
  GError   *error;
} OnLoop;

static void
get_on_loop (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  OnLoop *o = user_data;

  o->hit_ok = dvt_cache_get_blocking (o->cache, KEY (1), 0, NULL, NULL, NULL);
  dvt_cache_get_blocking (o->cache, KEY (2), 0, NULL, NULL, &o->error);
  dvt_task_return_boolean (task, TRUE);
}

static void
test_would_deadlock (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  OnLoop o = { cache, FALSE, NULL };
  g_autoptr(DvtStats) stats = NULL;

  get_int (cache, 1);
  g_atomic_int_set (&w.hold, 1);
  g_assert_true (dvt_runtime_run_blocking (rt, get_on_loop, &o, NULL, NULL, NULL, NULL, NULL));
  g_assert_true (o.hit_ok);
  g_assert_error (o.error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  g_clear_error (&o.error);
  /* The held run would never end: it was cancelled (before or after it
   * started), as was the caller's task. */
  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->cancelled, ==, 2);
  drop_cache (&cache);
}

/* A pointer result cannot be shared: the run fails, without a leak. */
static void
compute_pointer (DvtTask       *task,
                 GVariant      *key,
                 GCancellable  *cancellable,
                 gpointer       user_data,
                 GError       **error)
{
  dvt_task_return_pointer (task, g_strdup ("not shareable"), g_free);
}

static void
test_pointer_result (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  DvtCache *cache = dvt_cache_new (rt, compute_pointer, NULL, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_false (dvt_cache_get_blocking (cache, KEY (1), 0, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_FAILED);
  drop_cache (&cache);
}

/* ---- shutdown ------------------------------------------------------------------- */

static guint64
pending_tasks (DvtRuntime *rt)
{
  g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

  return stats->pending;
}

static void
test_shutdown_cancels (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  Work w = { 0 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(DvtTask) closed = NULL;
  g_autoptr(GError) error = NULL;
  Caller blocked = { cache, 1, 0, NULL, 0 };
  GThread *thread;
  Ready r;

  get_int (cache, 2);
  g_atomic_int_set (&w.hold, 1);
  task = dvt_cache_get (cache, KEY (1), NULL, NULL);
  thread = g_thread_new ("blocked", blocking_caller, &blocked);
  ready_init (&r);
  dvt_cache_get_async (cache, KEY (1), NULL, on_ready, &r);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  /* Pending: the run and the three callers' tasks. */
  g_assert_true (POLL_UNTIL (pending_tasks (rt) == 4, 30));

  dvt_runtime_shutdown (rt, FALSE, TRUE);
  assert_task_cancelled (task);
  g_thread_join (thread);
  g_assert_error (blocked.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&blocked.error);
  ready_wait (&r);
  g_assert_false (dvt_cache_get_finish (cache, r.result, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&r.result);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_cancelled) == 1, 30));

  /* Afterwards every get fails at once, hits included; lookup reads. */
  closed = dvt_cache_get (cache, KEY (2), NULL, &error);
  g_assert_null (closed);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_false (dvt_cache_get_blocking (cache, KEY (2), 0, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  ready_init (&r);
  dvt_cache_get_async (cache, KEY (3), NULL, on_ready, &r);
  ready_wait (&r);
  g_assert_false (dvt_cache_get_finish (cache, r.result, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_object (&r.result);
  g_assert_true (dvt_cache_lookup (cache, KEY (2), NULL));

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  drop_cache (&cache);
  g_object_unref (rt);
}

/* A shutdown that drains lets the runs end and their waiters get them. */
static void
test_shutdown_drains (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  Work w = { .hold = 1 };
  DvtCache *cache = new_cache (rt, &w);
  g_autoptr(DvtTask) task = dvt_cache_get (cache, KEY (1), NULL, NULL);

  g_assert_true (POLL_UNTIL (g_atomic_int_get (&w.n_waiting) == 1, 30));
  dvt_runtime_shutdown (rt, FALSE, FALSE);
  g_atomic_int_set (&w.hold, 0);
  g_assert_cmpint (task_int (task), ==, 1000001);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  drop_cache (&cache);
  g_object_unref (rt);
}

/* ---- the acceptance stress ---------------------------------------------------------
 *
 * 10 000 gets of 100 keys, at once, from four threads (blocking gets and
 * tasks) and from a main loop (get_async): each key's function runs
 * exactly once per TTL window. Then the TTL is made short until every
 * value has expired, long again, and the same once more: each key's
 * function has run exactly twice. */

#define N_THREADS 4

typedef struct
{
  DvtCache *cache;
  guint     n_gets;
  guint32   seed;
  int       n_wrong;   /* atomic */
} Stress;

static gpointer
stress_thread (gpointer data)
{
  Stress *s = data;
  GRand *rand = g_rand_new_with_seed (s->seed);

  for (guint i = 0; i < s->n_gets; i++)
    {
      int key = g_rand_int_range (rand, 0, N_KEYS);
      g_autoptr(GError) error = NULL;
      gint64 v = -1;

      if (i % 2 == 0)
        {
          g_auto(GValue) value = G_VALUE_INIT;

          if (dvt_cache_get_blocking (s->cache, KEY (key), 0, NULL, &value, &error))
            v = g_value_get_int64 (&value);
        }
      else
        {
          g_autoptr(DvtTask) task = dvt_cache_get (s->cache, KEY (key), NULL, &error);

          if (task != NULL && dvt_task_wait (task, 0, &error))
            v = dvt_task_propagate_int (task, &error);
        }
      if (error != NULL || v / 1000000 != key)
        g_atomic_int_inc (&s->n_wrong);
    }
  g_rand_free (rand);

  return NULL;
}

typedef struct
{
  DvtCache *cache;
  int       key;
  int      *n_done;
  int      *n_wrong;
} AsyncGet;

static void
on_stress_ready (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  AsyncGet *g = user_data;
  g_auto(GValue) value = G_VALUE_INIT;

  if (!dvt_cache_get_finish (g->cache, result, &value, NULL) ||
      g_value_get_int64 (&value) / 1000000 != g->key)
    (*g->n_wrong)++;
  (*g->n_done)++;
  g_free (g);
}

static void
stress_window (DvtCache *cache,
               guint     n_gets,
               guint32   seed)
{
  Stress s[N_THREADS];
  GThread *threads[N_THREADS];
  guint per_caller = n_gets / (N_THREADS + 1);
  int n_done = 0;
  int n_wrong = 0;

  for (int t = 0; t < N_THREADS; t++)
    {
      s[t] = (Stress) { cache, per_caller, seed + t, 0 };
      threads[t] = g_thread_new ("stress", stress_thread, &s[t]);
    }
  for (guint i = 0; i < per_caller; i++)
    {
      AsyncGet *g = g_new0 (AsyncGet, 1);

      *g = (AsyncGet) { cache, (int) ((i * 37 + seed) % N_KEYS), &n_done, &n_wrong };
      dvt_cache_get_async (cache, KEY (g->key), NULL, on_stress_ready, g);
      /* Let the loop run now and then, as a real one would. */
      if (i % 64 == 0)
        g_main_context_iteration (NULL, FALSE);
    }
  g_assert_true (ITERATE_UNTIL (NULL, n_done == (int) per_caller, 120));
  for (int t = 0; t < N_THREADS; t++)
    {
      g_thread_join (threads[t]);
      g_assert_cmpint (s[t].n_wrong, ==, 0);
    }
  g_assert_cmpint (n_wrong, ==, 0);
}

static void
test_stress (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  Work w = { .sleep_us = 200 };
  DvtCache *cache = new_cache (rt, &w);
  guint n_gets = is_valgrind () ? 1000 : 10000;

  stress_window (cache, n_gets, 1);
  for (int k = 0; k < N_KEYS; k++)
    g_assert_cmpint (w.calls[k], ==, 1);
  g_assert_cmpuint (dvt_cache_get_runs (cache), ==, N_KEYS);
  g_assert_cmpuint (dvt_cache_get_n_entries (cache), ==, N_KEYS);
  g_assert_cmpuint (dvt_cache_get_hits (cache) + dvt_cache_get_misses (cache), ==,
                    n_gets / (N_THREADS + 1) * (N_THREADS + 1));

  /* The next TTL window. */
  g_assert_true (dvt_cache_set_ttl (cache, 0.001, NULL));
  g_assert_true (POLL_UNTIL (dvt_cache_get_n_entries (cache) == 0, 60));
  g_assert_true (dvt_cache_set_ttl (cache, G_MAXDOUBLE, NULL));
  stress_window (cache, n_gets, 100);
  for (int k = 0; k < N_KEYS; k++)
    g_assert_cmpint (w.calls[k], ==, 2);
  g_assert_cmpuint (dvt_cache_get_runs (cache), ==, 2 * N_KEYS);

  g_assert_true (dvt_runtime_wait_idle (rt, 60 * slow, NULL, NULL));
  drop_cache (&cache);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/cache/stored", test_stored);
  g_test_add_func ("/cache/keys", test_keys);
  g_test_add_func ("/cache/key-type", test_key_type);
  g_test_add_func ("/cache/errors", test_errors);
  g_test_add_func ("/cache/single-flight", test_single_flight);
  g_test_add_func ("/cache/cancel/one-waiter", test_cancel_one_waiter);
  g_test_add_func ("/cache/cancel/race", test_cancel_race);
  g_test_add_func ("/cache/invalidate-during-run", test_invalidate_during_run);
  g_test_add_func ("/cache/lru", test_lru);
  g_test_add_func ("/cache/ttl/zero", test_ttl_zero);
  g_test_add_func ("/cache/ttl/expiry", test_ttl_expiry);
  g_test_add_func ("/cache/properties", test_properties);
  g_test_add_func ("/cache/options", test_options);
  g_test_add_func ("/cache/async-work", test_async_work);
  g_test_add_func ("/cache/get-async", test_get_async);
  g_test_add_func ("/cache/get-async/context", test_get_async_context);
  g_test_add_func ("/cache/nested", test_nested);
  g_test_add_func ("/cache/would-deadlock", test_would_deadlock);
  g_test_add_func ("/cache/pointer-result", test_pointer_result);
  g_test_add_func ("/cache/shutdown/cancels", test_shutdown_cancels);
  g_test_add_func ("/cache/shutdown/drains", test_shutdown_drains);
  g_test_add_func ("/cache/stress", test_stress);

  return g_test_run ();
}
