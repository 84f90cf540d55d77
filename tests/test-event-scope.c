/* test-event-scope.c: event scopes (function, name, task id), the re-entry
 * bound, the events thread, misbehaving handlers and progress
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A Counter connects to one signal of a runtime or scope and counts the
 * calls per task id, with the threads they ran on. A waiting shutdown
 * returns once the events thread has delivered everything, so counts read
 * after it are final.
 */

#include "dvt-test-util.h"
#include <string.h>

typedef struct
{
  GMutex      lock;
  GHashTable *per_task;  /* id → calls */
  guint       calls;
  GThread    *thread;    /* of the last call */
  gboolean    threads_differ;
} Counter;

static void
counter_init (Counter *c)
{
  memset (c, 0, sizeof *c);
  g_mutex_init (&c->lock);
  c->per_task = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
}

static void
counter_clear (Counter *c)
{
  g_hash_table_unref (c->per_task);
  g_mutex_clear (&c->lock);
}

static void
counter_note (Counter *c,
              DvtTask *task)
{
  gint64 id = (gint64) dvt_task_get_id (task);
  guint n;

  g_mutex_lock (&c->lock);
  n = GPOINTER_TO_UINT (g_hash_table_lookup (c->per_task, &id));
  g_hash_table_insert (c->per_task, g_memdup2 (&id, sizeof id), GUINT_TO_POINTER (n + 1));
  c->calls++;
  if (c->thread != NULL && c->thread != g_thread_self ())
    c->threads_differ = TRUE;
  c->thread = g_thread_self ();
  g_mutex_unlock (&c->lock);
}

static guint
counter_calls (Counter *c)
{
  guint n;

  g_mutex_lock (&c->lock);
  n = c->calls;
  g_mutex_unlock (&c->lock);

  return n;
}

static guint
counter_of (Counter *c,
            DvtTask *task)
{
  gint64 id = (gint64) dvt_task_get_id (task);
  guint n;

  g_mutex_lock (&c->lock);
  n = GPOINTER_TO_UINT (g_hash_table_lookup (c->per_task, &id));
  g_mutex_unlock (&c->lock);

  return n;
}

static void
on_finished_count (gpointer  instance,
                   DvtTask  *task,
                   double    elapsed,
                   Counter  *c)
{
  counter_note (c, task);
}

static void
on_queued_count (gpointer  instance,
                 DvtTask  *task,
                 Counter  *c)
{
  counter_note (c, task);
}

/* ---- work -------------------------------------------------------------- */

static void
work_a (DvtTask      *task,
        GCancellable *cancellable,
        gpointer      data,
        GError      **error)
{
  dvt_task_return_int (task, 1);
}

static void
work_b (DvtTask      *task,
        GCancellable *cancellable,
        gpointer      data,
        GError      **error)
{
  dvt_task_return_int (task, 2);
}

static void
work_sleep (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      data,
            GError      **error)
{
  g_usleep (GPOINTER_TO_UINT (data) * 1000);
  dvt_task_return_int (task, 3);
}

static void
map_item (DvtTask      *task,
          GCancellable *cancellable,
          gpointer      data,
          GError      **error)
{
  g_usleep (200);
  dvt_task_return_int (task, (gint64) dvt_task_get_index (task));
}

/* Another function: same shape, another identity. */
static void
map_item_other (DvtTask      *task,
                GCancellable *cancellable,
                gpointer      data,
                GError      **error)
{
  dvt_task_return_int (task, -(gint64) dvt_task_get_index (task));
}

static DvtOptions *
with_function (gconstpointer function,
               const char   *name)
{
  DvtOptions *options = dvt_options_new ();

  dvt_options_set_function (options, function);
  dvt_options_set_name (options, name);

  return options;
}

static void
run_int (DvtRuntime    *rt,
         DvtThreadFunc  func,
         DvtOptions    *options)
{
  g_autoptr(GError) error = NULL;

  dvt_runtime_to_thread_blocking (rt, func, NULL, NULL, options, NULL, NULL, &error);
  g_assert_no_error (error);
}

/* ---- scoping ----------------------------------------------------------- */

/* Two functions, scoped by identity: each scope sees its own only. */
static void
test_function_identity (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtEventScope) scope_a = dvt_event_scope_new (rt, NULL, work_a, 0, &error);
  g_autoptr(DvtEventScope) scope_b = NULL;
  g_autoptr(DvtTask) future = NULL;
  Counter ca, cb, call;

  g_assert_no_error (error);
  scope_b = dvt_event_scope_new (rt, NULL, work_b, 0, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_event_scope_get_function (scope_a) == (gconstpointer) work_a);

  counter_init (&ca);
  counter_init (&cb);
  counter_init (&call);
  g_signal_connect (scope_a, "finished", G_CALLBACK (on_finished_count), &ca);
  g_signal_connect (scope_b, "finished", G_CALLBACK (on_finished_count), &cb);
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &call);

  run_int (rt, work_a, NULL);
  run_int (rt, work_b, NULL);
  run_int (rt, work_b, NULL);
  future = dvt_runtime_submit (rt, work_a, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (future, -1, &error));
  g_assert_cmpint (dvt_task_propagate_int (future, &error), ==, 1);
  g_assert_no_error (error);

  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&ca), ==, 2);
  g_assert_cmpuint (counter_of (&ca, future), ==, 1);
  g_assert_cmpuint (counter_calls (&cb), ==, 2);
  g_assert_cmpuint (counter_calls (&call), ==, 4);
  g_assert_false (ca.threads_differ || cb.threads_differ || call.threads_differ);
  g_assert_true (ca.thread == call.thread);

  counter_clear (&ca);
  counter_clear (&cb);
  counter_clear (&call);
}

/* A binding runs every call through one C function and names its own
 * functions with DvtOptions:function: two of them never match each other. */
static void
test_function_from_options (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  static const char lambda1 = 0, lambda2 = 0;
  g_autoptr(DvtOptions) o1 = with_function (&lambda1, NULL);
  g_autoptr(DvtOptions) o2 = with_function (&lambda2, NULL);
  g_autoptr(DvtEventScope) s1 = dvt_event_scope_new (rt, NULL, &lambda1, 0, &error);
  g_autoptr(DvtEventScope) s_trampoline = NULL;
  Counter c1, ct;

  g_assert_no_error (error);
  s_trampoline = dvt_event_scope_new (rt, NULL, work_a, 0, &error);
  g_assert_no_error (error);
  counter_init (&c1);
  counter_init (&ct);
  g_signal_connect (s1, "finished", G_CALLBACK (on_finished_count), &c1);
  g_signal_connect (s_trampoline, "finished", G_CALLBACK (on_finished_count), &ct);

  run_int (rt, work_a, o1);
  run_int (rt, work_a, o2);
  run_int (rt, work_a, o2);
  run_int (rt, work_a, NULL);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&c1), ==, 1);
  /* The function given replaces the address: only the plain call. */
  g_assert_cmpuint (counter_calls (&ct), ==, 1);

  counter_clear (&c1);
  counter_clear (&ct);
}

/* A map is one task, identified by its map function; its progress reaches
 * the scope too. */
static void
on_progress_scope (DvtEventScope *scope,
                   DvtTask       *task,
                   guint          done,
                   guint          total,
                   guint         *last)
{
  g_assert_cmpuint (total, ==, 300);
  g_assert_cmpuint (done, >=, *last);
  *last = done;
}

static void
test_function_map (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtEventScope) scope = dvt_event_scope_new (rt, NULL, map_item, 0, &error);
  g_autoptr(GArray) r1 = NULL;
  g_autoptr(GArray) r2 = NULL;
  guint last = 0;
  Counter c;

  g_assert_no_error (error);
  counter_init (&c);
  g_signal_connect (scope, "finished", G_CALLBACK (on_finished_count), &c);
  g_signal_connect (scope, "progress", G_CALLBACK (on_progress_scope), &last);

  r1 = dvt_runtime_map_blocking (rt, 300, map_item, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  r2 = dvt_runtime_map_blocking (rt, 300, map_item_other, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&c), ==, 1);
  g_assert_cmpuint (last, ==, 300);
  counter_clear (&c);
}

/* Name and function together: the tasks that have both. */
static void
test_name_and_function (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtOptions) fetch = with_function (NULL, "fetch");
  g_autoptr(DvtOptions) store = with_function (NULL, "store");
  g_autoptr(DvtEventScope) both = dvt_event_scope_new (rt, "fetch", work_a, 0, &error);
  g_autoptr(DvtEventScope) by_name = NULL;
  Counter cboth, cname;

  g_assert_no_error (error);
  by_name = dvt_event_scope_new (rt, "fetch", NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dvt_event_scope_get_name (by_name), ==, "fetch");
  counter_init (&cboth);
  counter_init (&cname);
  g_signal_connect (both, "finished", G_CALLBACK (on_finished_count), &cboth);
  g_signal_connect (by_name, "finished", G_CALLBACK (on_finished_count), &cname);

  run_int (rt, work_a, fetch);
  run_int (rt, work_b, fetch);
  run_int (rt, work_a, store);
  run_int (rt, work_a, NULL);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&cboth), ==, 1);
  g_assert_cmpuint (counter_calls (&cname), ==, 2);
  counter_clear (&cboth);
  counter_clear (&cname);
}

/* One execution by id: a future nobody watched when it was accepted. */
static void
test_task_id (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) slow_task = NULL;
  g_autoptr(DvtTask) other = NULL;
  g_autoptr(DvtEventScope) scope = NULL;
  Counter c, call;

  counter_init (&c);
  counter_init (&call);
  slow_task = dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (100), NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  other = dvt_runtime_submit (rt, work_a, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  scope = dvt_event_scope_new (rt, NULL, NULL, dvt_task_get_id (slow_task), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dvt_event_scope_get_task_id (scope), ==, dvt_task_get_id (slow_task));
  g_signal_connect (scope, "finished", G_CALLBACK (on_finished_count), &c);
  /* The runtime saw neither task queued: it gets none of their events. */
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &call);

  dvt_task_wait (slow_task, -1, NULL);
  dvt_task_wait (other, -1, NULL);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&c), ==, 1);
  g_assert_cmpuint (counter_of (&c, slow_task), ==, 1);
  g_assert_cmpuint (counter_calls (&call), ==, 0);
  counter_clear (&c);
  counter_clear (&call);
}

static void
test_invalid (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  DvtEventScope *scope;
  guint64 id;

  task = dvt_runtime_submit (rt, work_a, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  id = dvt_task_get_id (task);

  scope = dvt_event_scope_new (rt, "", NULL, 0, &error);
  g_assert_null (scope);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  scope = dvt_event_scope_new (rt, "fetch", NULL, id, &error);
  g_assert_null (scope);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "task id"));
  g_clear_error (&error);

  scope = dvt_event_scope_new (rt, NULL, work_a, id, &error);
  g_assert_null (scope);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  scope = dvt_event_scope_new (rt, NULL, NULL, id + 1000, &error);
  g_assert_null (scope);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Without a runtime, through g_initable_new() as bindings construct. */
  scope = g_initable_new (DVT_TYPE_EVENT_SCOPE, NULL, &error, "name", "x", NULL);
  g_assert_null (scope);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A scope with nothing matches every task; its id of an ended task is
   * valid and simply never emits. */
  dvt_task_wait (task, -1, NULL);
  scope = dvt_event_scope_new (rt, NULL, NULL, id, &error);
  g_assert_no_error (error);
  g_object_unref (scope);
  scope = dvt_event_scope_new (rt, NULL, NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dvt_event_scope_get_max_depth (scope), ==, 1);
  g_object_unref (scope);

  dvt_runtime_shutdown (rt, TRUE, FALSE);
}

/* ---- re-entry ---------------------------------------------------------- */

typedef struct
{
  DvtRuntime *rt;
  Counter     counter;
  GPtrArray  *caused;   /* touched by the handler only, then by the test */
  guint       sleep_ms;
} Chain;

/* A handler of the scope on work_a whose finished submits work_a again:
 * without a bound it would go on for ever. */
static void
on_finished_resubmit (DvtEventScope *scope,
                      DvtTask       *task,
                      double         elapsed,
                      Chain         *chain)
{
  g_autoptr(GError) error = NULL;
  DvtTask *next;

  counter_note (&chain->counter, task);
  if (chain->sleep_ms > 0)
    g_usleep (chain->sleep_ms * 1000);

  next = dvt_runtime_submit (chain->rt, work_a, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_ptr_array_add (chain->caused, next);
}

static void
chain_init (Chain      *chain,
            DvtRuntime *rt)
{
  chain->rt = rt;
  counter_init (&chain->counter);
  chain->caused = g_ptr_array_new_with_free_func (g_object_unref);
  chain->sleep_ms = 0;
}

static void
chain_clear (Chain *chain)
{
  counter_clear (&chain->counter);
  g_ptr_array_unref (chain->caused);
}

static void
check_reentry (guint max_depth)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtEventScope) scope = dvt_event_scope_new (rt, NULL, work_a, 0, &error);
  Counter all;
  Chain chain;

  g_assert_no_error (error);
  if (max_depth > 0)
    dvt_event_scope_set_max_depth (scope, max_depth);
  else
    max_depth = 1;  /* the default */
  chain_init (&chain, rt);
  counter_init (&all);
  g_signal_connect (scope, "finished", G_CALLBACK (on_finished_resubmit), &chain);
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &all);

  run_int (rt, work_a, NULL);
  /* Each call causes one task; the last caused one must end too. */
  g_assert_true (POLL_UNTIL (counter_calls (&all) == max_depth + 1, 20));
  g_usleep (50 * 1000);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&chain.counter), ==, max_depth);
  g_assert_cmpuint (chain.caused->len, ==, max_depth);
  /* The follow-up work ran, and the runtime's own handler saw it. */
  g_assert_cmpuint (counter_calls (&all), ==, max_depth + 1);
  for (guint i = 0; i < chain.caused->len; i++)
    {
      DvtTask *t = g_ptr_array_index (chain.caused, i);

      g_assert_true (dvt_task_wait (t, 10 * slow, NULL));
      g_assert_cmpuint (counter_of (&all, t), ==, 1);
      g_assert_cmpuint (counter_of (&chain.counter, t), ==, i + 1 < max_depth ? 1 : 0);
    }

  counter_clear (&all);
  chain_clear (&chain);
}

static void
test_reentry_default (void)
{
  check_reentry (0);
}

static void
test_reentry_depth3 (void)
{
  check_reentry (3);
}

/* Four tasks ending at once on other threads, a slow handler that causes
 * follow-up work: four calls, none dropped, none re-entered. */
typedef struct
{
  DvtRuntime *rt;
  Gate       *gate;
} Racer;

static gpointer
racer_thread (gpointer data)
{
  Racer *racer = data;

  gate_wait (racer->gate);
  run_int (racer->rt, work_a, NULL);

  return NULL;
}

static void
test_reentry_concurrent (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtEventScope) scope = dvt_event_scope_new (rt, NULL, work_a, 0, &error);
  GThread *threads[4];
  Gate gate;
  Racer racer;
  Counter all;
  Chain chain;

  g_assert_no_error (error);
  chain_init (&chain, rt);
  chain.sleep_ms = 30;
  counter_init (&all);
  gate_init (&gate);
  racer.rt = rt;
  racer.gate = &gate;
  g_signal_connect (scope, "finished", G_CALLBACK (on_finished_resubmit), &chain);
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &all);

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("racer", racer_thread, &racer);
  gate_open (&gate);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  g_assert_true (POLL_UNTIL (counter_calls (&all) == 8, 20));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&chain.counter), ==, 4);
  g_assert_cmpuint (chain.caused->len, ==, 4);
  g_assert_cmpuint (counter_calls (&all), ==, 8);
  g_assert_false (chain.counter.threads_differ);

  gate_clear (&gate);
  counter_clear (&all);
  chain_clear (&chain);
}

/* N completions give N calls, with the bound at its default. */
static void
test_reentry_many (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtEventScope) scope = dvt_event_scope_new (rt, NULL, NULL, 0, &error);
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  Counter c;

  g_assert_no_error (error);
  counter_init (&c);
  g_signal_connect (scope, "finished", G_CALLBACK (on_finished_count), &c);
  for (guint i = 0; i < 2000; i++)
    {
      g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_a, NULL, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (counter_calls (&c), ==, 2000);
  g_assert_cmpuint (g_hash_table_size (c.per_task), ==, 2000);
  counter_clear (&c);
}

/* ---- the events thread and misbehaving handlers ------------------------ */

static gboolean
complete_later (gpointer data)
{
  DvtTask *task = data;

  dvt_task_return_int (task, 7);
  return G_SOURCE_REMOVE;
}

/* Async work on the loop thread that ends from a timer. */
static void
async_timer (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      data,
             GError      **error)
{
  GSource *source = g_timeout_source_new (GPOINTER_TO_UINT (data));

  g_source_set_callback (source, complete_later, g_object_ref (task), g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
on_queued_sleep (DvtRuntime *rt,
                 DvtTask    *task,
                 gpointer    ms)
{
  g_usleep (GPOINTER_TO_UINT (ms) * 1000);
}

/* A handler that sleeps twice as long as a task's timeout: the task still
 * succeeds, as its timers and async work do not wait for handlers. */
static void
test_slow_handler (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  guint timeout_ms = (guint) (300 * slow);
  Counter c;

  counter_init (&c);
  dvt_options_set_timeout (options, timeout_ms / 1000.0);
  g_signal_connect (rt, "queued", G_CALLBACK (on_queued_sleep), GUINT_TO_POINTER (2 * timeout_ms));
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &c);

  g_auto(GValue) value = G_VALUE_INIT;

  g_assert_true (dvt_runtime_run_blocking (rt, async_timer, GUINT_TO_POINTER (timeout_ms / 6),
                                           NULL, options, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 7);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpuint (counter_calls (&c), ==, 1);
  counter_clear (&c);
}

static void
on_finished_critical (DvtRuntime *rt,
                      DvtTask    *task,
                      double      elapsed,
                      gpointer    data)
{
  g_critical ("handler trouble for task %" G_GUINT64_FORMAT, dvt_task_get_id (task));
}

/* A handler that logs a critical: the task, and the handlers after it,
 * are not affected. Run in a child, where criticals are not fatal. */
static void
test_critical_handler (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      Counter before, after;

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      counter_init (&before);
      counter_init (&after);
      g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &before);
      g_signal_connect (rt, "finished", G_CALLBACK (on_finished_critical), NULL);
      g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &after);

      g_assert_true (dvt_runtime_to_thread_blocking (rt, work_b, NULL, NULL, NULL, NULL,
                                                     &value, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_value_get_int64 (&value), ==, 2);
      run_int (rt, work_a, NULL);
      dvt_runtime_shutdown (rt, TRUE, FALSE);

      g_assert_cmpuint (counter_calls (&before), ==, 2);
      g_assert_cmpuint (counter_calls (&after), ==, 2);
      counter_clear (&before);
      counter_clear (&after);
      g_print ("child done\n");
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*child done*");
  g_test_trap_assert_stderr ("*CRITICAL*handler trouble for task 1*CRITICAL*handler trouble for task 2*");
}

/* A handler may shut its runtime down, waiting, and drop its scope. */
static void
on_finished_shutdown (DvtEventScope *scope,
                      DvtTask       *task,
                      double         elapsed,
                      DvtRuntime    *rt)
{
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (scope);
}

static void
test_shutdown_from_handler (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  DvtEventScope *scope = dvt_event_scope_new (rt, NULL, NULL, 0, &error);
  Counter c;

  g_assert_no_error (error);
  counter_init (&c);
  g_signal_connect (scope, "finished", G_CALLBACK (on_finished_shutdown), rt);
  g_signal_connect (rt, "queued", G_CALLBACK (on_queued_count), &c);
  run_int (rt, work_a, NULL);
  g_assert_true (POLL_UNTIL (dvt_runtime_is_shutdown (rt), 20));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpuint (counter_calls (&c), ==, 1);
  counter_clear (&c);
}

/* ---- progress ---------------------------------------------------------- */

typedef struct
{
  guint    calls;
  guint    last_done;
  guint    total;
  gboolean after_end;
  gboolean ended;
} Progress;

static void
on_progress (DvtRuntime *rt,
             DvtTask    *task,
             guint       done,
             guint       total,
             Progress   *p)
{
  g_assert_cmpuint (done, >=, p->last_done);
  g_assert_cmpuint (done, <=, total);
  p->calls++;
  p->last_done = done;
  p->total = total;
  if (p->ended)
    p->after_end = TRUE;
}

static void
on_map_finished (DvtRuntime *rt,
                 DvtTask    *task,
                 double      elapsed,
                 Progress   *p)
{
  p->ended = TRUE;
}

static void
test_progress (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  Progress p = { 0 };

  g_signal_connect (rt, "progress", G_CALLBACK (on_progress), &p);
  g_signal_connect (rt, "finished", G_CALLBACK (on_map_finished), &p);
  results = dvt_runtime_map_blocking (rt, 2000, map_item, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 2000);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  /* Coalesced: at least one call, at most one per item; the last has
   * every item, before the map's end. */
  g_assert_cmpuint (p.calls, >=, 1);
  g_assert_cmpuint (p.calls, <=, 2000);
  g_assert_cmpuint (p.total, ==, 2000);
  g_assert_cmpuint (p.last_done, ==, 2000);
  g_assert_true (p.ended);
  g_assert_false (p.after_end);
}

/* ---- stress ------------------------------------------------------------ */

typedef struct
{
  DvtRuntime *rt;
  int         stop;
  int         accepted;
  int         scope_calls;
  int         cancelled;
} Churn;

static void
on_finished_churn (DvtEventScope *scope,
                   DvtTask       *task,
                   double         elapsed,
                   int           *calls)
{
  g_atomic_int_inc (calls);
}

/* Creates and drops scopes while their events are delivered, and submits
 * until the runtime refuses. */
static gpointer
churn_thread (gpointer data)
{
  Churn *churn = data;
  GRand *rand = g_rand_new ();
  /* Under valgrind the threads may get the CPU before the one that shuts
   * down: bounded, should it come late. */
  guint left = is_valgrind () ? 300 : G_MAXUINT;

  while (!g_atomic_int_get (&churn->stop) && left-- > 0)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(DvtEventScope) scope = NULL;
      DvtTask *task;

      scope = dvt_event_scope_new (churn->rt, NULL,
                                   g_rand_boolean (rand) ? (gconstpointer) work_a : NULL, 0,
                                   &error);
      g_assert_no_error (error);
      dvt_event_scope_set_max_depth (scope, g_rand_int_range (rand, 1, 4));
      /* Handler data that outlives the scope: a handler may still be
       * running when the scope is dropped. */
      g_signal_connect (scope, "finished", G_CALLBACK (on_finished_churn), &churn->scope_calls);

      task = dvt_runtime_submit (churn->rt, work_a, NULL, NULL, NULL, NULL, &error);
      if (task != NULL)
        {
          g_atomic_int_inc (&churn->accepted);
          if (g_rand_boolean (rand))
            dvt_task_cancel (task);
          g_object_unref (task);
        }
      else
        g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
    }

  g_rand_free (rand);
  return NULL;
}

static void
on_cancelled_count (DvtRuntime *rt,
                    DvtTask    *task,
                    GError     *error,
                    double      elapsed,
                    int        *calls)
{
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_atomic_int_inc (calls);
}

static void
test_stress_scopes (void)
{
  guint rounds = is_valgrind () ? 1 : 20;

  for (guint r = 0; r < rounds; r++)
    {
      DvtRuntime *rt = dvt_runtime_new (2);
      GThread *threads[4];
      Counter all;
      Churn churn = { rt, 0, 0, 0, 0 };
      g_autoptr(DvtStats) stats = NULL;

      counter_init (&all);
      g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &all);
      g_signal_connect (rt, "cancelled", G_CALLBACK (on_cancelled_count), &churn.cancelled);
      for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
        threads[i] = g_thread_new ("churn", churn_thread, &churn);
      g_usleep (g_random_int_range (1000, 20000));

      /* Shut down while the threads still submit and drop scopes. */
      dvt_runtime_shutdown (rt, TRUE, g_random_boolean ());
      g_atomic_int_set (&churn.stop, 1);
      for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
        g_thread_join (threads[i]);

      stats = dvt_runtime_get_stats (rt);
      g_assert_cmpuint (stats->queued, ==, (guint64) g_atomic_int_get (&churn.accepted));
      g_assert_cmpuint (stats->queued, ==, stats->done + stats->error + stats->cancelled);
      /* Every success reached the runtime's handler, once. */
      g_assert_cmpuint (counter_calls (&all), ==, stats->done);
      g_assert_cmpuint (g_hash_table_size (all.per_task), ==, stats->done);
      g_assert_cmpuint ((guint64) g_atomic_int_get (&churn.cancelled), ==, stats->cancelled);
      g_object_unref (rt);
      counter_clear (&all);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/event-scope/function/identity", test_function_identity);
  g_test_add_func ("/event-scope/function/from-options", test_function_from_options);
  g_test_add_func ("/event-scope/function/map", test_function_map);
  g_test_add_func ("/event-scope/name-and-function", test_name_and_function);
  g_test_add_func ("/event-scope/task-id", test_task_id);
  g_test_add_func ("/event-scope/invalid", test_invalid);
  g_test_add_func ("/event-scope/reentry/default", test_reentry_default);
  g_test_add_func ("/event-scope/reentry/depth-3", test_reentry_depth3);
  g_test_add_func ("/event-scope/reentry/concurrent", test_reentry_concurrent);
  g_test_add_func ("/event-scope/reentry/many", test_reentry_many);
  g_test_add_func ("/event-scope/handler/slow", test_slow_handler);
  g_test_add_func ("/event-scope/handler/critical", test_critical_handler);
  g_test_add_func ("/event-scope/handler/shutdown", test_shutdown_from_handler);
  g_test_add_func ("/event-scope/progress", test_progress);
  g_test_add_func ("/event-scope/stress", test_stress_scopes);

  return g_test_run ();
}
