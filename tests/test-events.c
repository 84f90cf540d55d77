/* test-events.c: the seven event signals of runtimes and tasks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A recorder connects to the signals and keeps every event it gets (kind,
 * task id and name, attempt, error, value, the thread it ran on), and
 * checks that no two handlers of a runtime ever run at once. Most checks
 * read a whole task's events as a string such as
 * "queued started1 retry1 started2 finished".
 *
 * A waiting shutdown delivers what is left on the events thread before it
 * stops: after it, the events of a runtime without an event context are
 * final. A runtime with an event context delivers only when the test
 * iterates that context.
 */

#include "dvt-test-util.h"
#include <math.h>
#include <string.h>

/* Timers count in whole milliseconds; clocks are read a little before or
 * after the events they stand for. */
#define TOL 0.003

/* A timeout long enough for the work to have started before it passes. */
#define SHORT (0.3 * slow)

/* Anything "prompt" comes within this. */
#define PROMPT (5.0 * slow)

typedef enum
{
  EV_QUEUED,
  EV_STARTED,
  EV_RETRY,
  EV_THROTTLED,
  EV_FAILED,
  EV_CANCELLED,
  EV_FINISHED,
  N_EV
} EvKind;

static const char * const ev_names[N_EV] = {
  "queued", "started", "retry", "throttled", "failed", "cancelled", "finished",
};

static gboolean
ev_is_terminal (EvKind kind)
{
  return kind == EV_FAILED || kind == EV_CANCELLED || kind == EV_FINISHED;
}

/* ---- the recorder ------------------------------------------------------ */

typedef struct
{
  EvKind   kind;
  guint64  id;
  char    *name;
  guint    attempt;    /* started, retry: the signal's; else the task's */
  GError  *error;
  double   value;      /* elapsed, back-off delay or throttle wait */
  GThread *thread;
  gboolean completed;  /* the task had ended when the handler ran */
  gboolean had_error;
  gboolean own;        /* a task's own signal, not the runtime's */
} Ev;

typedef struct _Rec Rec;
typedef void (*RecHook) (Rec *rec, const Ev *ev, DvtTask *task);

struct _Rec
{
  GMutex    lock;
  GArray   *events;    /* Ev */
  int       own_inside;
  int      *inside;    /* handlers running now (atomic), maybe shared */
  int       overlaps;  /* times a handler started while another ran */
  int       max_inside;
  gulong    sleep_us;  /* each call sleeps this long */
  EvKind    sleep_kind;
  gboolean  sleep_all;
  RecHook   hook;
  gpointer  hook_data;
  gpointer  instance;
  gulong    ids[N_EV];
  guint     n_ids;
};

static void
ev_clear (gpointer data)
{
  Ev *ev = data;

  g_free (ev->name);
  g_clear_error (&ev->error);
}

static void
rec_init (Rec *rec)
{
  memset (rec, 0, sizeof *rec);
  g_mutex_init (&rec->lock);
  rec->events = g_array_new (FALSE, TRUE, sizeof (Ev));
  g_array_set_clear_func (rec->events, ev_clear);
  rec->inside = &rec->own_inside;
}

/* Makes @rec count concurrency together with @other (two recorders on one
 * runtime: their handlers must not overlap either). */
static void
rec_share_inside (Rec *rec,
                  Rec *other)
{
  rec->inside = other->inside;
}

static void
rec_disconnect (Rec *rec)
{
  for (guint i = 0; i < rec->n_ids; i++)
    g_signal_handler_disconnect (rec->instance, rec->ids[i]);
  rec->n_ids = 0;
  g_clear_object (&rec->instance);
}

/* Call once no handler can run any more (the runtime shut down, waiting,
 * or its event context iterated to the end). */
static void
rec_clear (Rec *rec)
{
  if (rec->instance != NULL)
    rec_disconnect (rec);
  g_array_unref (rec->events);
  g_mutex_clear (&rec->lock);
}

static void
rec_add (Rec          *rec,
         EvKind        kind,
         DvtTask      *task,
         gboolean      own,
         guint         attempt,
         const GError *error,
         double        value)
{
  Ev ev = { 0 };
  int now = g_atomic_int_add (rec->inside, 1) + 1;

  if (now > 1)
    g_atomic_int_inc (&rec->overlaps);
  if (now > g_atomic_int_get (&rec->max_inside))
    g_atomic_int_set (&rec->max_inside, now);

  g_assert_true (DVT_IS_TASK (task));
  ev.kind = kind;
  ev.id = dvt_task_get_id (task);
  ev.name = g_strdup (dvt_task_get_name (task));
  ev.attempt = attempt;
  ev.error = error != NULL ? g_error_copy (error) : NULL;
  ev.value = value;
  ev.thread = g_thread_self ();
  ev.completed = dvt_task_get_completed (task);
  ev.had_error = dvt_task_had_error (task);
  ev.own = own;

  if (rec->sleep_us > 0 && (rec->sleep_all || rec->sleep_kind == kind))
    g_usleep (rec->sleep_us);

  g_mutex_lock (&rec->lock);
  g_array_append_val (rec->events, ev);
  g_mutex_unlock (&rec->lock);

  if (rec->hook != NULL)
    rec->hook (rec, &ev, task);

  g_atomic_int_add (rec->inside, -1);
}

/* Handlers of the runtime's signals. */
static void
on_queued (DvtRuntime *rt, DvtTask *task, Rec *rec)
{
  g_assert_true (DVT_IS_RUNTIME (rt));
  g_assert_true (dvt_task_get_runtime (task) == rt);
  rec_add (rec, EV_QUEUED, task, FALSE, dvt_task_get_attempt (task), NULL, 0);
}

static void
on_started (DvtRuntime *rt, DvtTask *task, guint attempt, Rec *rec)
{
  rec_add (rec, EV_STARTED, task, FALSE, attempt, NULL, 0);
}

static void
on_retry (DvtRuntime *rt, DvtTask *task, GError *error, guint attempt, double delay, Rec *rec)
{
  g_assert_nonnull (error);
  rec_add (rec, EV_RETRY, task, FALSE, attempt, error, delay);
}

static void
on_throttled (DvtRuntime *rt, DvtTask *task, double wait, Rec *rec)
{
  rec_add (rec, EV_THROTTLED, task, FALSE, dvt_task_get_attempt (task), NULL, wait);
}

static void
on_failed (DvtRuntime *rt, DvtTask *task, GError *error, double elapsed, Rec *rec)
{
  g_assert_nonnull (error);
  rec_add (rec, EV_FAILED, task, FALSE, dvt_task_get_attempt (task), error, elapsed);
}

static void
on_cancelled (DvtRuntime *rt, DvtTask *task, GError *error, double elapsed, Rec *rec)
{
  g_assert_nonnull (error);
  rec_add (rec, EV_CANCELLED, task, FALSE, dvt_task_get_attempt (task), error, elapsed);
}

static void
on_finished (DvtRuntime *rt, DvtTask *task, double elapsed, Rec *rec)
{
  rec_add (rec, EV_FINISHED, task, FALSE, dvt_task_get_attempt (task), NULL, elapsed);
}

/* Handlers of a task's own signals. */
static void
on_task_queued (DvtTask *task, Rec *rec)
{
  rec_add (rec, EV_QUEUED, task, TRUE, dvt_task_get_attempt (task), NULL, 0);
}

static void
on_task_started (DvtTask *task, guint attempt, Rec *rec)
{
  rec_add (rec, EV_STARTED, task, TRUE, attempt, NULL, 0);
}

static void
on_task_retry (DvtTask *task, GError *error, guint attempt, double delay, Rec *rec)
{
  rec_add (rec, EV_RETRY, task, TRUE, attempt, error, delay);
}

static void
on_task_throttled (DvtTask *task, double wait, Rec *rec)
{
  rec_add (rec, EV_THROTTLED, task, TRUE, dvt_task_get_attempt (task), NULL, wait);
}

static void
on_task_failed (DvtTask *task, GError *error, double elapsed, Rec *rec)
{
  rec_add (rec, EV_FAILED, task, TRUE, dvt_task_get_attempt (task), error, elapsed);
}

static void
on_task_cancelled (DvtTask *task, GError *error, double elapsed, Rec *rec)
{
  rec_add (rec, EV_CANCELLED, task, TRUE, dvt_task_get_attempt (task), error, elapsed);
}

static void
on_task_finished (DvtTask *task, double elapsed, Rec *rec)
{
  rec_add (rec, EV_FINISHED, task, TRUE, dvt_task_get_attempt (task), NULL, elapsed);
}

static const GCallback runtime_handlers[N_EV] = {
  G_CALLBACK (on_queued), G_CALLBACK (on_started), G_CALLBACK (on_retry),
  G_CALLBACK (on_throttled), G_CALLBACK (on_failed), G_CALLBACK (on_cancelled),
  G_CALLBACK (on_finished),
};

static const GCallback task_handlers[N_EV] = {
  G_CALLBACK (on_task_queued), G_CALLBACK (on_task_started), G_CALLBACK (on_task_retry),
  G_CALLBACK (on_task_throttled), G_CALLBACK (on_task_failed),
  G_CALLBACK (on_task_cancelled), G_CALLBACK (on_task_finished),
};

/* Connects @rec to the seven signals of @instance (a runtime or a task),
 * with @detail (a task name) for a runtime if not NULL. */
static void
rec_connect (Rec        *rec,
             gpointer    instance,
             const char *detail)
{
  gboolean is_task = DVT_IS_TASK (instance);

  g_assert_null (rec->instance);
  rec->instance = g_object_ref (instance);
  for (guint i = 0; i < N_EV; i++)
    {
      g_autofree char *signal = detail != NULL
                                ? g_strdup_printf ("%s::%s", ev_names[i], detail)
                                : g_strdup (ev_names[i]);

      rec->ids[rec->n_ids++] =
        g_signal_connect (instance, signal,
                          is_task ? task_handlers[i] : runtime_handlers[i], rec);
    }
}

static guint
rec_len (Rec *rec)
{
  guint n;

  g_mutex_lock (&rec->lock);
  n = rec->events->len;
  g_mutex_unlock (&rec->lock);

  return n;
}

/* A copy of event @i. */
static Ev
rec_get (Rec  *rec,
         guint i)
{
  Ev ev;

  g_mutex_lock (&rec->lock);
  g_assert_cmpuint (i, <, rec->events->len);
  ev = g_array_index (rec->events, Ev, i);
  ev.name = g_strdup (ev.name);
  ev.error = ev.error != NULL ? g_error_copy (ev.error) : NULL;
  g_mutex_unlock (&rec->lock);

  return ev;
}

/* How many events of @kind (N_EV: any) of task @id (0: any). */
static guint
rec_count (Rec     *rec,
           EvKind   kind,
           guint64  id)
{
  guint n = 0;

  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->events->len; i++)
    {
      Ev *ev = &g_array_index (rec->events, Ev, i);

      if ((kind == N_EV || ev->kind == kind) && (id == 0 || ev->id == id))
        n++;
    }
  g_mutex_unlock (&rec->lock);

  return n;
}

static guint
rec_terminals (Rec     *rec,
               guint64  id)
{
  return rec_count (rec, EV_FAILED, id) + rec_count (rec, EV_CANCELLED, id) +
         rec_count (rec, EV_FINISHED, id);
}

/* The events of task @id (0: all), as "queued started1 finished". */
static char *
rec_seq (Rec     *rec,
         guint64  id)
{
  GString *s = g_string_new (NULL);

  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->events->len; i++)
    {
      Ev *ev = &g_array_index (rec->events, Ev, i);

      if (id != 0 && ev->id != id)
        continue;
      if (s->len > 0)
        g_string_append_c (s, ' ');
      g_string_append (s, ev_names[ev->kind]);
      if (ev->kind == EV_STARTED || ev->kind == EV_RETRY)
        g_string_append_printf (s, "%u", ev->attempt);
    }
  g_mutex_unlock (&rec->lock);

  return g_string_free (s, FALSE);
}

/* The first event of @kind of task @id (0: any); FALSE if none. */
static gboolean
rec_find (Rec     *rec,
          EvKind   kind,
          guint64  id,
          Ev      *out)
{
  gboolean found = FALSE;

  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->events->len && !found; i++)
    {
      Ev *ev = &g_array_index (rec->events, Ev, i);

      if (ev->kind == kind && (id == 0 || ev->id == id))
        {
          *out = *ev;
          out->name = g_strdup (ev->name);
          out->error = ev->error != NULL ? g_error_copy (ev->error) : NULL;
          found = TRUE;
        }
    }
  g_mutex_unlock (&rec->lock);

  return found;
}

/* The ids of every task seen, in order of first appearance. */
static GArray *
rec_ids (Rec *rec)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr(GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);

  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->events->len; i++)
    {
      Ev *ev = &g_array_index (rec->events, Ev, i);

      if (!g_hash_table_contains (seen, &ev->id))
        {
          g_hash_table_add (seen, &ev->id);
          g_array_append_val (ids, ev->id);
        }
    }
  g_mutex_unlock (&rec->lock);

  return ids;
}

/* Task id → its events as rec_seq() writes them, in one pass. */
static GHashTable *
rec_index (Rec *rec)
{
  GHashTable *index = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                             (GDestroyNotify) g_free);

  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->events->len; i++)
    {
      Ev *ev = &g_array_index (rec->events, Ev, i);
      char *old = g_hash_table_lookup (index, &ev->id);
      char *seq;

      if (ev->kind == EV_STARTED || ev->kind == EV_RETRY)
        seq = g_strdup_printf ("%s%s%s%u", old != NULL ? old : "", old != NULL ? " " : "",
                               ev_names[ev->kind], ev->attempt);
      else
        seq = g_strdup_printf ("%s%s%s", old != NULL ? old : "", old != NULL ? " " : "",
                               ev_names[ev->kind]);
      /* (Replacing frees the old string and the new key.) */
      g_hash_table_insert (index, g_memdup2 (&ev->id, sizeof ev->id), seq);
    }
  g_mutex_unlock (&rec->lock);

  return index;
}

/* Every event ran on @thread. */
static void
rec_assert_thread (Rec     *rec,
                   GThread *thread)
{
  g_mutex_lock (&rec->lock);
  for (guint i = 0; i < rec->events->len; i++)
    g_assert_true (g_array_index (rec->events, Ev, i).thread == thread);
  g_mutex_unlock (&rec->lock);
}

/* Every event ran on the runtime's events thread: one thread, neither
 * its loop thread @loop nor the test's. */
static void
rec_assert_events_thread (Rec     *rec,
                          GThread *loop)
{
  GThread *thread = NULL;

  g_mutex_lock (&rec->lock);
  if (rec->events->len > 0)
    thread = g_array_index (rec->events, Ev, 0).thread;
  g_mutex_unlock (&rec->lock);
  g_assert_true (thread != loop);
  g_assert_true (thread != g_thread_self ());
  rec_assert_thread (rec, thread);
}

/* Per task: queued first (when @with_queued), then started/retry/
 * throttled, one terminal last; the terminal agrees with the task's state
 * as the handler saw it. */
static void
rec_assert_well_formed (Rec      *rec,
                        gboolean  with_queued)
{
  g_autoptr(GArray) ids = rec_ids (rec);

  for (guint t = 0; t < ids->len; t++)
    {
      guint64 id = g_array_index (ids, guint64, t);
      guint seen = 0;
      gboolean ended = FALSE;

      g_mutex_lock (&rec->lock);
      for (guint i = 0; i < rec->events->len; i++)
        {
          Ev *ev = &g_array_index (rec->events, Ev, i);

          if (ev->id != id)
            continue;
          if (ended)
            g_error ("task %" G_GUINT64_FORMAT ": %s after its terminal event",
                     id, ev_names[ev->kind]);
          if (with_queued)
            g_assert_true ((seen == 0) == (ev->kind == EV_QUEUED));
          if (ev_is_terminal (ev->kind))
            {
              ended = TRUE;
              g_assert_true (ev->completed);
              g_assert_true (ev->had_error == (ev->kind != EV_FINISHED));
              g_assert_true ((ev->error != NULL) == (ev->kind != EV_FINISHED));
              g_assert_cmpfloat (ev->value, >=, 0);
              if (ev->kind == EV_CANCELLED)
                g_assert_error (ev->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
              else if (ev->kind == EV_FAILED)
                g_assert_false (g_error_matches (ev->error, G_IO_ERROR,
                                                 G_IO_ERROR_CANCELLED));
            }
          seen++;
        }
      g_mutex_unlock (&rec->lock);
      if (!ended)
        g_error ("task %" G_GUINT64_FORMAT " has no terminal event", id);
    }
}

/* ---- helpers ----------------------------------------------------------- */

static double
seconds_since (gint64 start)
{
  return (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
}

static gboolean
note_thread (gpointer data)
{
  g_atomic_pointer_set ((GThread **) data, g_thread_self ());
  return G_SOURCE_REMOVE;
}

/* The runtime's loop thread, found without running a task. */
static GThread *
loop_thread_of (DvtRuntime *rt)
{
  GThread *thread = NULL;
  GSource *source = g_idle_source_new ();

  g_source_set_callback (source, note_thread, &thread, NULL);
  g_source_attach (source, dvt_runtime_get_context (rt));
  g_source_unref (source);
  g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&thread) != NULL, 20));

  return thread;
}

static DvtOptions *
named (const char *name)
{
  DvtOptions *options = dvt_options_new ();

  dvt_options_set_name (options, name);
  return options;
}

static void
work_int (DvtTask      *task,
          GCancellable *cancellable,
          gpointer      user_data,
          GError      **error)
{
  dvt_task_return_int (task, GPOINTER_TO_INT (user_data));
}

/* Sleeps user_data milliseconds, then returns them. */
static void
work_sleep (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  g_usleep ((gulong) GPOINTER_TO_UINT (user_data) * 1000);
  dvt_task_return_int (task, GPOINTER_TO_UINT (user_data));
}

static void
work_fail (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  g_set_error (error, TEST_ERROR, GPOINTER_TO_INT (user_data), "failed with %d",
               GPOINTER_TO_INT (user_data));
}

/* Fails attempts until @succeed_at (0: never), "attempt N failed". */
typedef struct
{
  guint succeed_at;
  int   calls;
} Flaky;

static void
work_flaky (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Flaky *f = user_data;
  guint attempt = dvt_task_get_attempt (task);

  g_atomic_int_inc (&f->calls);
  if (f->succeed_at != 0 && attempt >= f->succeed_at)
    dvt_task_return_int (task, attempt);
  else
    g_set_error (error, TEST_ERROR, (int) attempt, "attempt %u failed", attempt);
}

/* Work that blocks until its gate opens, ignoring cancellation. */
typedef struct
{
  Gate gate;
  int  started;
  int  finished;
} Hold;

static void
hold_init (Hold *h)
{
  memset (h, 0, sizeof *h);
  gate_init (&h->gate);
}

static void
hold_finish (Hold *h)
{
  gate_open (&h->gate);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h->finished) ==
                             g_atomic_int_get (&h->started), 30));
}

static void
hold_clear (Hold *h)
{
  hold_finish (h);
  gate_clear (&h->gate);
}

static void
work_hold (DvtTask      *task,
           GCancellable *cancellable,
           gpointer      user_data,
           GError      **error)
{
  Hold *h = user_data;

  g_atomic_int_inc (&h->started);
  gate_wait (&h->gate);
  dvt_task_return_int (task, 7);
  g_atomic_int_inc (&h->finished);
}

/* Work that returns as soon as it is cancelled. */
static void
work_until_cancelled (DvtTask      *task,
                      GCancellable *cancellable,
                      gpointer      user_data,
                      GError      **error)
{
  int *started = user_data;

  g_atomic_int_inc (started);
  g_assert_nonnull (cancellable);
  g_assert_true (POLL_UNTIL (g_cancellable_is_cancelled (cancellable), 30));
  g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* An async function that keeps its task and never completes it. */
typedef struct
{
  GMutex     lock;
  GPtrArray *tasks;
  int        calls;
} Keep;

static void
keep_init (Keep *k)
{
  g_mutex_init (&k->lock);
  k->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  k->calls = 0;
}

static void
async_keep (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Keep *k = user_data;

  g_mutex_lock (&k->lock);
  g_ptr_array_add (k->tasks, g_object_ref (task));
  g_mutex_unlock (&k->lock);
  g_atomic_int_inc (&k->calls);
}

/* Completes the kept tasks (late, if they have ended) and frees them. */
static void
keep_clear (Keep *k)
{
  for (guint i = 0; i < k->tasks->len; i++)
    dvt_task_return_int (g_ptr_array_index (k->tasks, i), 1);
  g_ptr_array_unref (k->tasks);
  g_mutex_clear (&k->lock);
}

typedef struct
{
  DvtRuntime *rt;
  gboolean    done;
  gboolean    ok;
  GArray     *results;
  GError     *error;
} Outcome;

static void
to_thread_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Outcome *o = user_data;

  o->ok = dvt_runtime_to_thread_finish (o->rt, result, NULL, &o->error);
  o->done = TRUE;
}

static void
map_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Outcome *o = user_data;

  o->results = dvt_runtime_map_finish (o->rt, result, &o->error);
  o->ok = o->results != NULL;
  o->done = TRUE;
}

static void
drain_default_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- order ------------------------------------------------------------- */

static void
test_order_success (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = named ("fetch-url");
  g_autoptr(GError) error = NULL;
  g_autofree char *seq = NULL;
  GThread *loop = loop_thread_of (rt);
  Ev ev;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);

  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_sleep, GUINT_TO_POINTER (20), NULL,
                                                 options, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (rec_terminals (&rec, 0) == 1, 20));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "queued started1 finished");
  rec_assert_well_formed (&rec, TRUE);
  rec_assert_events_thread (&rec, loop);
  g_assert_cmpint (rec.overlaps, ==, 0);

  /* Each event carries the task: one id, its name, attempt 1. */
  for (guint i = 0; i < rec_len (&rec); i++)
    {
      Ev e = rec_get (&rec, i);

      g_assert_cmpuint (e.id, ==, g_array_index (rec.events, Ev, 0).id);
      g_assert_cmpuint (e.id, >, 0);
      g_assert_cmpstr (e.name, ==, "fetch-url");
      g_assert_cmpuint (e.attempt, ==, 1);
      g_assert_false (e.own);
      ev_clear (&e);
    }
  /* Delivery is batched: the task may have ended by the time its queued
   * event is delivered, but it always has by its finished event. */
  g_assert_true (rec_find (&rec, EV_FINISHED, 0, &ev));
  g_assert_true (ev.completed);
  g_assert_false (ev.had_error);
  g_assert_null (ev.error);
  g_assert_cmpfloat (ev.value, >=, 0.020 - TOL);
  g_assert_cmpfloat (ev.value, <, PROMPT);
  ev_clear (&ev);

  rec_clear (&rec);
}

/* Two calls: ids differ, each gets its own three events. */
static void
test_order_ids_unique (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GArray) ids = NULL;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  for (int i = 0; i < 5; i++)
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, GINT_TO_POINTER (i), NULL,
                                                   NULL, NULL, NULL, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  ids = rec_ids (&rec);
  g_assert_cmpuint (ids->len, ==, 5);
  for (guint i = 0; i < ids->len; i++)
    {
      g_autofree char *seq = rec_seq (&rec, g_array_index (ids, guint64, i));

      g_assert_cmpstr (seq, ==, "queued started1 finished");
    }
  rec_assert_well_formed (&rec, TRUE);
  rec_clear (&rec);
}

/* Retried: started once per attempt (1..k), a retry between each, with
 * the failed attempt, its error and the back-off delay. */
static void
check_retry_order (gboolean exhaust)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_autofree char *seq = NULL;
  Flaky f = { exhaust ? 0 : 3, 0 };
  const double backoff = 0.02;
  guint n_retry = 0;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  dvt_options_set_retries (options, 2);
  dvt_options_set_retry_backoff (options, backoff);

  if (exhaust)
    {
      g_assert_false (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                      NULL, &error));
      g_assert_error (error, TEST_ERROR, 3);
    }
  else
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_flaky, &f, NULL, options, NULL,
                                                   NULL, &error));
  g_assert_cmpint (f.calls, ==, 3);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, exhaust
                   ? "queued started1 retry1 started2 retry2 started3 failed"
                   : "queued started1 retry1 started2 retry2 started3 finished");
  rec_assert_well_formed (&rec, TRUE);

  for (guint i = 0; i < rec_len (&rec); i++)
    {
      Ev e = rec_get (&rec, i);

      if (e.kind == EV_RETRY)
        {
          g_autofree char *message = g_strdup_printf ("attempt %u failed", e.attempt);

          n_retry++;
          g_assert_cmpuint (e.attempt, ==, n_retry);
          /* The error of the attempt that failed, unchanged. */
          g_assert_error (e.error, TEST_ERROR, (int) e.attempt);
          g_assert_cmpstr (e.error->message, ==, message);
          /* base · 2^(n-1) */
          g_assert_cmpfloat (fabs (e.value - backoff * (1 << (e.attempt - 1))), <, 1e-6);
        }
      if (e.kind == EV_FAILED)
        {
          g_assert_error (e.error, TEST_ERROR, 3);
          g_assert_cmpstr (e.error->message, ==, "attempt 3 failed");
          g_assert_cmpuint (e.attempt, ==, 3);
          /* Two back-offs were waited out. */
          g_assert_cmpfloat (e.value, >=, 3 * backoff - TOL);
        }
      if (e.kind == EV_FINISHED)
        {
          g_assert_cmpuint (e.attempt, ==, 3);
          g_assert_cmpfloat (e.value, >=, 3 * backoff - TOL);
        }
      ev_clear (&e);
    }
  g_assert_cmpuint (n_retry, ==, 2);

  /* The counters agree with the events. */
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->started, ==, rec_count (&rec, EV_STARTED, 0));
  g_assert_cmpuint (stats->retries, ==, rec_count (&rec, EV_RETRY, 0));
  g_assert_cmpuint (stats->queued, ==, rec_count (&rec, EV_QUEUED, 0));
  rec_clear (&rec);
}

static void
test_order_retry (void)
{
  check_retry_order (FALSE);
}

static void
test_order_retry_exhausted (void)
{
  check_retry_order (TRUE);
}

/* Retries of async work (run_blocking), failing through the task. */
static void
async_flaky (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  guint attempt = dvt_task_get_attempt (task);

  if (attempt < 2)
    dvt_task_return_new_error (task, TEST_ERROR, 40 + (int) attempt, "async attempt %u", attempt);
  else
    dvt_task_return_int (task, attempt);
}

static void
test_order_retry_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *seq = NULL;
  Ev ev;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  dvt_options_set_retries (options, 3);
  dvt_options_set_retry_backoff (options, 0.001);
  g_assert_true (dvt_runtime_run_blocking (rt, async_flaky, NULL, NULL, options, NULL, NULL,
                                           &error));
  g_assert_no_error (error);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "queued started1 retry1 started2 finished");
  g_assert_true (rec_find (&rec, EV_RETRY, 0, &ev));
  g_assert_error (ev.error, TEST_ERROR, 41);
  g_assert_cmpstr (ev.error->message, ==, "async attempt 1");
  ev_clear (&ev);
  rec_clear (&rec);
}

/* Back-off interrupted: by a timeout (failed, timed out) or by a cancel
 * (cancelled); no further started. */
static void
check_backoff_interrupted (gboolean by_timeout)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) task = NULL;
  g_autofree char *seq = NULL;
  Flaky f = { 0, 0 };
  Ev ev;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  dvt_options_set_retries (options, 5);
  dvt_options_set_retry_backoff (options, 3600);
  if (by_timeout)
    dvt_options_set_timeout (options, SHORT);

  task = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, cancellable, &error);
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (rec_count (&rec, EV_RETRY, 0) == 1, 20));
  if (!by_timeout)
    g_cancellable_cancel (cancellable);
  g_assert_true (dvt_task_wait (task, PROMPT + SHORT, &error));
  g_assert_no_error (error);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, by_timeout ? "queued started1 retry1 failed"
                                       : "queued started1 retry1 cancelled");
  g_assert_true (rec_find (&rec, by_timeout ? EV_FAILED : EV_CANCELLED, 0, &ev));
  if (by_timeout)
    {
      g_assert_error (ev.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      g_assert_cmpfloat (ev.value, >=, SHORT - TOL);
    }
  else
    g_assert_error (ev.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  ev_clear (&ev);
  g_assert_cmpint (f.calls, ==, 1);
  rec_clear (&rec);
}

static void
test_order_backoff_timeout (void)
{
  check_backoff_interrupted (TRUE);
}

static void
test_order_backoff_cancel (void)
{
  check_backoff_interrupted (FALSE);
}

static void
test_failure (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autofree char *seq = NULL;
  Ev ev;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_fail, GINT_TO_POINTER (17), NULL,
                                                  NULL, NULL, NULL, &error));
  g_assert_error (error, TEST_ERROR, 17);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "queued started1 failed");
  g_assert_true (rec_find (&rec, EV_FAILED, 0, &ev));
  /* The error the caller got, unchanged. */
  g_assert_error (ev.error, TEST_ERROR, 17);
  g_assert_cmpstr (ev.error->message, ==, error->message);
  g_assert_cmpfloat (ev.value, >=, 0);
  g_assert_cmpfloat (ev.value, <, PROMPT);
  ev_clear (&ev);
  rec_assert_well_formed (&rec, TRUE);
  rec_clear (&rec);
}

/* A timeout while the task is still queued: failed, timed out, never
 * started. */
static void
test_timeout_while_queued (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) blocker = NULL;
  g_autoptr(DvtTask) victim = NULL;
  g_autofree char *seq = NULL;
  Hold h;
  Ev ev;
  Rec rec;

  hold_init (&h);
  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  blocker = dvt_runtime_submit (rt, work_hold, &h, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 1, 20));
  dvt_options_set_timeout (options, 0.05);
  victim = dvt_runtime_submit (rt, work_hold, &h, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dvt_task_wait (victim, PROMPT, &error));
  g_assert_no_error (error);
  hold_finish (&h);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, dvt_task_get_id (victim));
  g_assert_cmpstr (seq, ==, "queued failed");
  g_assert_true (rec_find (&rec, EV_FAILED, dvt_task_get_id (victim), &ev));
  g_assert_error (ev.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpfloat (ev.value, >=, 0.05 - TOL);
  ev_clear (&ev);
  g_assert_cmpint (g_atomic_int_get (&h.started), ==, 1);
  rec_assert_well_formed (&rec, TRUE);
  rec_clear (&rec);
  hold_clear (&h);
}

/* ---- exactly one terminal event: every entry point, every ending ------ */

typedef enum
{
  E_TO_THREAD_BLOCKING,
  E_TO_THREAD_ASYNC,
  E_RUN_BLOCKING,
  E_SUBMIT,
  E_SCHEDULE,
  E_MAP_BLOCKING,
  E_MAP_ASYNC,
  N_ENTRIES
} Entry;

static const char * const entry_names[N_ENTRIES] = {
  "to-thread-blocking", "to-thread-async", "run-blocking", "submit", "schedule",
  "map-blocking", "map-async",
};

typedef enum
{
  O_SUCCESS,
  O_ERROR,
  O_TIMEOUT,
  O_CANCEL_BEFORE,
  O_CANCEL_RUNNING,
  O_SHUTDOWN,
  N_OUTCOMES
} Ending;

static const char * const ending_names[N_OUTCOMES] = {
  "success", "error", "timeout", "cancel-before", "cancel-running", "shutdown",
};

#define MAP_ITEMS 8

typedef struct
{
  Ending ending;
  Hold   hold;
  Keep   keep;
} Work;

static void
work_entry_thread (DvtTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data,
                   GError      **error)
{
  Work *w = user_data;

  switch (w->ending)
    {
    case O_SUCCESS:
      g_atomic_int_inc (&w->hold.started);
      dvt_task_return_int (task, 42);
      g_atomic_int_inc (&w->hold.finished);
      break;
    case O_ERROR:
      g_atomic_int_inc (&w->hold.started);
      /* A map's item 3 fails; a plain task fails. */
      if (dvt_task_get_index (task) == 3 || dvt_task_get_index (task) == 0)
        g_set_error (error, TEST_ERROR, 7, "boom");
      else
        dvt_task_return_int (task, 42);
      g_atomic_int_inc (&w->hold.finished);
      break;
    default:
      work_hold (task, cancellable, &w->hold, error);
    }
}

static void
work_entry_async (DvtTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data,
                  GError      **error)
{
  Work *w = user_data;

  switch (w->ending)
    {
    case O_SUCCESS:
      g_atomic_int_inc (&w->keep.calls);
      dvt_task_return_int (task, 42);
      break;
    case O_ERROR:
      g_atomic_int_inc (&w->keep.calls);
      g_set_error (error, TEST_ERROR, 7, "boom");
      break;
    default:
      async_keep (task, cancellable, &w->keep, error);
    }
}

typedef struct
{
  DvtRuntime   *rt;
  GCancellable *cancellable;  /* or NULL: shut down instead */
  int          *started;
} Interrupter;

static gpointer
interrupter_thread (gpointer data)
{
  Interrupter *in = data;

  g_assert_true (POLL_UNTIL (g_atomic_int_get (in->started) >= 1, 30));
  g_usleep (10000);
  if (in->cancellable != NULL)
    g_cancellable_cancel (in->cancellable);
  else
    dvt_runtime_shutdown (in->rt, FALSE, TRUE);

  return NULL;
}

static void
test_one_terminal (gconstpointer data)
{
  Entry entry = GPOINTER_TO_INT (data) / N_OUTCOMES;
  Ending ending = GPOINTER_TO_INT (data) % N_OUTCOMES;
  gboolean is_async = entry == E_RUN_BLOCKING || entry == E_SCHEDULE;
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = named ("job");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) future = NULL;
  g_autofree char *seq = NULL;
  g_autofree char *seq_named = NULL;
  GThread *interrupter = NULL;
  GThread *loop = loop_thread_of (rt);
  Interrupter in = { rt, NULL, NULL };
  Outcome o = { rt, FALSE, FALSE, NULL, NULL };
  gboolean ok = FALSE;
  Work w;
  Rec rec, rec_named, rec_other;
  Ev ev;
  EvKind expected;
  guint64 id;

  memset (&w, 0, sizeof w);
  w.ending = ending;
  hold_init (&w.hold);
  keep_init (&w.keep);
  rec_init (&rec);
  rec_init (&rec_named);
  rec_init (&rec_other);
  rec_share_inside (&rec_named, &rec);
  rec_share_inside (&rec_other, &rec);
  rec_connect (&rec, rt, NULL);
  rec_connect (&rec_named, rt, "job");
  rec_connect (&rec_other, rt, "other-job");

  if (ending == O_TIMEOUT)
    dvt_options_set_timeout (options, SHORT);
  if (ending == O_CANCEL_BEFORE)
    g_cancellable_cancel (cancellable);
  if (ending == O_CANCEL_RUNNING || ending == O_SHUTDOWN)
    {
      in.cancellable = ending == O_CANCEL_RUNNING ? cancellable : NULL;
      in.started = is_async ? &w.keep.calls : &w.hold.started;
      interrupter = g_thread_new ("interrupter", interrupter_thread, &in);
    }

  switch (entry)
    {
    case E_TO_THREAD_BLOCKING:
      ok = dvt_runtime_to_thread_blocking (rt, work_entry_thread, &w, NULL, options,
                                           cancellable, NULL, &error);
      break;
    case E_RUN_BLOCKING:
      ok = dvt_runtime_run_blocking (rt, work_entry_async, &w, NULL, options, cancellable,
                                     NULL, &error);
      break;
    case E_TO_THREAD_ASYNC:
      dvt_runtime_to_thread_async (rt, work_entry_thread, &w, NULL, options, cancellable,
                                   to_thread_cb, &o);
      g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
      ok = o.ok;
      error = g_steal_pointer (&o.error);
      break;
    case E_SUBMIT:
    case E_SCHEDULE:
      future = entry == E_SUBMIT
               ? dvt_runtime_submit (rt, work_entry_thread, &w, NULL, options, cancellable,
                                     &error)
               : dvt_runtime_schedule (rt, work_entry_async, &w, NULL, options, cancellable,
                                       &error);
      g_assert_no_error (error);
      g_assert_true (dvt_task_wait (future, 30, &error));
      g_assert_no_error (error);
      ok = dvt_task_propagate_value (future, NULL, &error);
      break;
    case E_MAP_BLOCKING:
      o.results = dvt_runtime_map_blocking (rt, MAP_ITEMS, work_entry_thread, &w, NULL,
                                            options, cancellable, &error);
      ok = o.results != NULL;
      break;
    case E_MAP_ASYNC:
      dvt_runtime_map_async (rt, MAP_ITEMS, work_entry_thread, &w, NULL, options,
                             cancellable, map_cb, &o);
      g_assert_true (ITERATE_UNTIL (NULL, o.done, 30));
      ok = o.ok;
      error = g_steal_pointer (&o.error);
      break;
    default:
      g_assert_not_reached ();
    }
  if (interrupter != NULL)
    g_thread_join (interrupter);

  /* What the caller saw. */
  switch (ending)
    {
    case O_SUCCESS:
      g_assert_no_error (error);
      g_assert_true (ok);
      expected = EV_FINISHED;
      break;
    case O_ERROR:
      g_assert_error (error, TEST_ERROR, 7);
      expected = EV_FAILED;
      break;
    case O_TIMEOUT:
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      expected = EV_FAILED;
      break;
    default:
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      expected = EV_CANCELLED;
    }

  /* Let everything return; the waiting shutdown delivers what is left. */
  gate_open (&w.hold.gate);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  /* One task: the map's items emit nothing. */
  {
    g_autoptr(GArray) ids = rec_ids (&rec);

    g_assert_cmpuint (ids->len, ==, 1);
    id = g_array_index (ids, guint64, 0);
  }
  if (future != NULL)
    g_assert_cmpuint (id, ==, dvt_task_get_id (future));

  seq = rec_seq (&rec, id);
  g_test_message ("%s/%s: %s", entry_names[entry], ending_names[ending], seq);
  g_assert_cmpuint (rec_count (&rec, EV_QUEUED, id), ==, 1);
  g_assert_cmpuint (rec_terminals (&rec, id), ==, 1);
  g_assert_cmpuint (rec_count (&rec, expected, id), ==, 1);
  g_assert_cmpuint (rec_count (&rec, EV_RETRY, id), ==, 0);
  if (ending == O_CANCEL_BEFORE)
    g_assert_cmpuint (rec_count (&rec, EV_STARTED, id), ==, 0);
  else
    g_assert_cmpuint (rec_count (&rec, EV_STARTED, id), ==, 1);
  rec_assert_well_formed (&rec, TRUE);
  rec_assert_events_thread (&rec, loop);
  g_assert_cmpint (rec.overlaps, ==, 0);

  /* The terminal event carries the caller's error. */
  g_assert_true (rec_find (&rec, expected, id, &ev));
  if (error != NULL)
    {
      g_assert_nonnull (ev.error);
      g_assert_cmpuint (ev.error->domain, ==, error->domain);
      g_assert_cmpint (ev.error->code, ==, error->code);
      g_assert_cmpstr (ev.error->message, ==, error->message);
    }
  if (ending == O_TIMEOUT)
    g_assert_cmpfloat (ev.value, >=, SHORT - TOL);
  g_assert_cmpfloat (ev.value, <, 30 * slow);
  g_assert_cmpstr (ev.name, ==, "job");
  ev_clear (&ev);

  /* Detail scoping: the handlers of "job" saw the same, "other-job"
   * nothing. */
  seq_named = rec_seq (&rec_named, 0);
  g_assert_cmpstr (seq_named, ==, seq);
  g_assert_cmpuint (rec_len (&rec_other), ==, 0);

  /* Work that ignored its cancellation has returned; the work of a
   * cancelled-before call never ran. */
  g_assert_cmpint (g_atomic_int_get (&w.hold.finished), ==, g_atomic_int_get (&w.hold.started));
  if (ending == O_CANCEL_BEFORE)
    g_assert_cmpint (w.hold.started + w.keep.calls, ==, 0);

  rec_clear (&rec);
  rec_clear (&rec_named);
  rec_clear (&rec_other);
  keep_clear (&w.keep);
  gate_clear (&w.hold.gate);
  g_clear_pointer (&o.results, g_array_unref);
  drain_default_context ();
}

/* ---- cancellation and shutdown ----------------------------------------- */

/* Cancelling queued work: queued, cancelled, never started; running work:
 * queued, started, cancelled. */
static void
test_cancel_queued_and_running (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) running = NULL;
  g_autoptr(DvtTask) queued = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *seq_running = NULL;
  g_autofree char *seq_queued = NULL;
  g_autofree char *seq_async = NULL;
  Outcome o = { rt, FALSE, FALSE, NULL, NULL };
  int started = 0;
  guint64 async_id;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);

  running = dvt_runtime_submit (rt, work_until_cancelled, &started, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&started) == 1, 20));
  queued = dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL, &error);
  dvt_runtime_to_thread_async (rt, work_int, NULL, NULL, NULL, cancellable, to_thread_cb, &o);
  g_assert_true (POLL_UNTIL (rec_count (&rec, EV_QUEUED, 0) == 3, 20));

  dvt_task_cancel (queued);
  g_cancellable_cancel (cancellable);
  g_assert_true (ITERATE_UNTIL (NULL, o.done, 20));
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  dvt_task_cancel (running);
  g_assert_true (dvt_task_wait (running, 20, &error));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq_running = rec_seq (&rec, dvt_task_get_id (running));
  seq_queued = rec_seq (&rec, dvt_task_get_id (queued));
  g_assert_cmpstr (seq_running, ==, "queued started1 cancelled");
  g_assert_cmpstr (seq_queued, ==, "queued cancelled");
  {
    g_autoptr(GArray) ids = rec_ids (&rec);

    g_assert_cmpuint (ids->len, ==, 3);
    async_id = g_array_index (ids, guint64, 2);
  }
  seq_async = rec_seq (&rec, async_id);
  g_assert_cmpstr (seq_async, ==, "queued cancelled");
  rec_assert_well_formed (&rec, TRUE);
  g_clear_error (&o.error);
  rec_clear (&rec);
  drain_default_context ();
}

/* shutdown (cancel_pending): every unfinished task, running or queued,
 * ends cancelled with one event; finished ones keep their finished. After
 * the waiting shutdown every event has been delivered. */
static void
test_shutdown_cancel_pending (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(DvtTask) done = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_autofree char *seq_done = NULL;
  int started = 0;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  done = dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (done, 20, &error));
  for (guint i = 0; i < 6; i++)
    g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_until_cancelled, &started, NULL, NULL,
                                                NULL, &error));
  g_assert_no_error (error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&started) == 2, 20));

  dvt_runtime_shutdown (rt, FALSE, TRUE);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  /* Final: no polling needed. */
  g_assert_cmpuint (rec_terminals (&rec, 0), ==, 7);
  seq_done = rec_seq (&rec, dvt_task_get_id (done));
  g_assert_cmpstr (seq_done, ==, "queued started1 finished");
  for (guint i = 0; i < tasks->len; i++)
    {
      DvtTask *t = g_ptr_array_index (tasks, i);
      g_autofree char *seq = rec_seq (&rec, dvt_task_get_id (t));
      Ev ev;

      g_assert_true (g_str_equal (seq, "queued started1 cancelled") ||
                     g_str_equal (seq, "queued cancelled"));
      g_assert_true (rec_find (&rec, EV_CANCELLED, dvt_task_get_id (t), &ev));
      g_assert_error (ev.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      ev_clear (&ev);
    }
  g_assert_cmpuint (rec_count (&rec, EV_STARTED, 0), ==, 3);
  rec_assert_well_formed (&rec, TRUE);

  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->cancelled, ==, rec_count (&rec, EV_CANCELLED, 0));
  g_assert_cmpuint (stats->started, ==, rec_count (&rec, EV_STARTED, 0));
  g_assert_cmpuint (stats->done, ==, rec_count (&rec, EV_FINISHED, 0));
  rec_clear (&rec);
}

/* The last events are recorded while the loop thread is busy (here, in a
 * source of its own that blocks until the shutdown has begun): the loop
 * stops before its mailbox is dispatched again, and the waiting shutdown
 * must still deliver them, and leave nothing behind for the runtime's
 * finalization. */
static gboolean
block_loop (gpointer data)
{
  Hold *h = data;

  g_atomic_int_inc (&h->started);
  gate_wait (&h->gate);
  g_atomic_int_inc (&h->finished);

  return G_SOURCE_REMOVE;
}

static gpointer
shutdown_thread (gpointer data)
{
  dvt_runtime_shutdown (data, TRUE, FALSE);
  return NULL;
}

static void
test_shutdown_loop_busy (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  g_autofree char *seq = NULL;
  GSource *source;
  GThread *stopper;
  Hold h;
  Rec rec;

  hold_init (&h);
  rec_init (&rec);
  rec_connect (&rec, rt, NULL);

  source = g_idle_source_new ();
  g_source_set_callback (source, block_loop, &h, NULL);
  g_source_attach (source, dvt_runtime_get_context (rt));
  g_source_unref (source);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 1, 20));

  /* Blocking work runs on a worker: it needs no loop thread. Its events
   * wait in the loop's mailbox. */
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, NULL, NULL, NULL,
                                                 NULL));
  stopper = g_thread_new ("stopper", shutdown_thread, rt);
  g_usleep (50000);  /* the shutdown has asked the loop to quit */
  gate_open (&h.gate);
  g_thread_join (stopper);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "queued started1 finished");
  rec_disconnect (&rec);
  g_object_unref (rt);  /* finalizes it */
  rec_clear (&rec);
  gate_clear (&h.gate);
}

/* Submissions racing a shutdown that cancels: every task that got a
 * queued event gets exactly one terminal event, queued first. */
typedef struct
{
  DvtRuntime *rt;
  GPtrArray  *tasks;      /* accepted futures */
  int         go;
  int        *submitted;  /* by all racers (atomic) */
} Racer;

/* Each racer stops after this many, should the shutdown come late (under
 * valgrind, which runs one thread at a time, the racers may get the CPU
 * before the thread that shuts down). */
#define RACER_MAX (is_valgrind () ? 1000u : 20000u)

static gpointer
racer_thread (gpointer data)
{
  Racer *r = data;

  /* Yields: under valgrind a pure spin holds the one running thread. */
  while (!g_atomic_int_get (&r->go))
    g_thread_yield ();
  while (r->tasks->len < RACER_MAX)
    {
      GError *error = NULL;
      DvtTask *t = dvt_runtime_submit (r->rt, work_int, NULL, NULL, NULL, NULL, &error);

      if (t == NULL)
        {
          g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
          g_error_free (error);
          break;
        }
      g_ptr_array_add (r->tasks, t);
      g_atomic_int_inc (r->submitted);
    }

  return NULL;
}

static void
test_shutdown_races_submissions (void)
{
  guint rounds = is_valgrind () ? 3 : 30;

  for (guint round = 0; round < rounds; round++)
    {
      g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
      Racer racers[3];
      GThread *threads[3];
      GHashTable *index;
      guint n_tasks = 0;
      guint n_bad = 0;
      int submitted = 0;
      Rec rec;

      rec_init (&rec);
      rec_connect (&rec, rt, NULL);
      for (guint i = 0; i < 3; i++)
        {
          racers[i].rt = rt;
          racers[i].tasks = g_ptr_array_new_with_free_func (g_object_unref);
          racers[i].go = 0;
          racers[i].submitted = &submitted;
          threads[i] = g_thread_new ("racer", racer_thread, &racers[i]);
        }
      for (guint i = 0; i < 3; i++)
        g_atomic_int_set (&racers[i].go, 1);
      /* Shut down, cancelling, in the middle of the submissions. */
      while (g_atomic_int_get (&submitted) < 300 + 100 * (int) (round % 5))
        g_thread_yield ();
      dvt_runtime_shutdown (rt, FALSE, TRUE);
      for (guint i = 0; i < 3; i++)
        g_thread_join (threads[i]);
      dvt_runtime_shutdown (rt, TRUE, FALSE);

      index = rec_index (&rec);
      for (guint i = 0; i < 3; i++)
        {
          for (guint j = 0; j < racers[i].tasks->len; j++)
            {
              DvtTask *t = g_ptr_array_index (racers[i].tasks, j);
              guint64 id = dvt_task_get_id (t);
              const char *seq = g_hash_table_lookup (index, &id);

              if (seq == NULL ||
                  !(g_str_equal (seq, "queued started1 finished") ||
                    g_str_equal (seq, "queued started1 cancelled") ||
                    g_str_equal (seq, "queued cancelled")))
                {
                  g_autoptr(GError) error = NULL;

                  dvt_task_propagate_value (t, NULL, &error);
                  g_test_fail_printf ("round %u: task %" G_GUINT64_FORMAT " (%s) has "
                                      "events “%s”", round, id,
                                      error != NULL ? error->message : "done",
                                      seq != NULL ? seq : "");
                  n_bad++;
                }
            }
          n_tasks += racers[i].tasks->len;
          g_ptr_array_unref (racers[i].tasks);
        }
      g_hash_table_unref (index);
      g_test_message ("round %u: %u tasks", round, n_tasks);
      rec_clear (&rec);
      if (n_bad > 0)
        return;
    }
}

/* Completion racing cancellation and timeouts: each task's one terminal
 * event says what its result says. */
static void
test_terminal_matches_result (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  guint n = is_valgrind () ? 60 : 600;
  guint n_finished = 0, n_failed = 0, n_cancelled = 0;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  dvt_options_set_timeout (options, 0.001);
  for (guint i = 0; i < n; i++)
    {
      DvtTask *t = dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (i % 2), NULL,
                                       i % 3 == 0 ? options : NULL, NULL, NULL);

      if (i % 3 == 1)
        dvt_task_cancel (t);
      g_ptr_array_add (tasks, t);
      if (i % 7 == 2)
        dvt_task_cancel (g_ptr_array_index (tasks, i / 2));
    }
  for (guint i = 0; i < n; i++)
    g_assert_true (dvt_task_wait (g_ptr_array_index (tasks, i), 30, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  for (guint i = 0; i < n; i++)
    {
      DvtTask *t = g_ptr_array_index (tasks, i);
      g_autoptr(GError) error = NULL;
      guint64 id = dvt_task_get_id (t);
      EvKind kind;

      g_assert_cmpuint (rec_terminals (&rec, id), ==, 1);
      if (dvt_task_propagate_value (t, NULL, &error))
        kind = EV_FINISHED, n_finished++;
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        kind = EV_CANCELLED, n_cancelled++;
      else
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
          kind = EV_FAILED, n_failed++;
        }
      g_assert_cmpuint (rec_count (&rec, kind, id), ==, 1);
    }
  g_test_message ("%u finished, %u failed, %u cancelled", n_finished, n_failed, n_cancelled);
  rec_assert_well_formed (&rec, TRUE);
  rec_clear (&rec);
}

/* ---- detail scoping ---------------------------------------------------- */

static void
test_detail (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) a = named ("a");
  g_autoptr(DvtOptions) b = named ("b");
  g_autoptr(DvtOptions) ab = named ("a-b");
  g_autofree char *seq_a = NULL;
  g_autofree char *seq_b = NULL;
  Rec all, only_a, only_b, only_c;

  rec_init (&all);
  rec_init (&only_a);
  rec_init (&only_b);
  rec_init (&only_c);
  rec_share_inside (&only_a, &all);
  rec_share_inside (&only_b, &all);
  rec_share_inside (&only_c, &all);
  rec_connect (&all, rt, NULL);
  rec_connect (&only_a, rt, "a");
  rec_connect (&only_b, rt, "b");
  rec_connect (&only_c, rt, "c");

  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, a, NULL, NULL, NULL));
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, b, NULL, NULL, NULL));
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_fail, GINT_TO_POINTER (3), NULL, a,
                                                  NULL, NULL, NULL));
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, NULL, NULL, NULL,
                                                 NULL));
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, ab, NULL, NULL,
                                                 NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (rec_terminals (&all, 0), ==, 5);
  seq_a = rec_seq (&only_a, 0);
  g_assert_cmpstr (seq_a, ==, "queued started1 finished queued started1 failed");
  seq_b = rec_seq (&only_b, 0);
  g_assert_cmpstr (seq_b, ==, "queued started1 finished");
  g_assert_cmpuint (rec_len (&only_c), ==, 0);
  for (guint i = 0; i < rec_len (&only_a); i++)
    {
      Ev e = rec_get (&only_a, i);

      g_assert_cmpstr (e.name, ==, "a");
      ev_clear (&e);
    }
  g_assert_cmpint (all.overlaps, ==, 0);

  rec_clear (&all);
  rec_clear (&only_a);
  rec_clear (&only_b);
  rec_clear (&only_c);
}

/* A handler connected with a detail only: the runtime has a handler, so
 * tasks are recorded; only the named ones are delivered to it. */
static void
test_detail_only_handler (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) a = named ("a");
  g_autofree char *seq = NULL;
  Rec only_a;

  rec_init (&only_a);
  g_signal_connect (rt, "finished::a", G_CALLBACK (on_finished), &only_a);
  only_a.instance = NULL;
  for (int i = 0; i < 3; i++)
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL,
                                                   i == 1 ? a : NULL, NULL, NULL, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  seq = rec_seq (&only_a, 0);
  g_assert_cmpstr (seq, ==, "finished");
  g_signal_handlers_disconnect_by_data (rt, &only_a);
  rec_clear (&only_a);
}

/* ---- a task's own signals ---------------------------------------------- */

static void
test_task_signals_submit (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) blocker = NULL;
  g_autoptr(DvtTask) future = NULL;
  g_autoptr(DvtTask) other = NULL;
  g_autofree char *seq = NULL;
  GThread *loop = loop_thread_of (rt);
  Hold h;
  Ev ev;
  Rec rec;

  hold_init (&h);
  rec_init (&rec);
  blocker = dvt_runtime_submit (rt, work_hold, &h, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 1, 20));
  future = dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (30), NULL, NULL, NULL, &error);
  other = dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  /* Connected after submission, before it starts. */
  rec_connect (&rec, future, NULL);
  hold_finish (&h);
  g_assert_true (dvt_task_wait (future, 20, &error));
  g_assert_true (dvt_task_wait (other, 20, &error));
  g_assert_true (POLL_UNTIL (rec_terminals (&rec, 0) == 1, 20));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  /* Its own events from then on; none of the other tasks'. */
  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "started1 finished");
  g_assert_cmpuint (rec_count (&rec, N_EV, dvt_task_get_id (future)), ==, 2);
  rec_assert_events_thread (&rec, loop);
  g_assert_true (rec_find (&rec, EV_FINISHED, 0, &ev));
  g_assert_true (ev.own);
  /* Elapsed from acceptance: queued behind the blocker, then 30 ms. */
  g_assert_cmpfloat (ev.value, >=, 0.030 - TOL);
  ev_clear (&ev);

  rec_clear (&rec);
  gate_clear (&h.gate);
}

/* A scheduled future that fails later; both the runtime's handlers and
 * the task's run, the same events. */
static void
test_task_signals_schedule (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) future = NULL;
  g_autofree char *seq_task = NULL;
  g_autofree char *seq_rt = NULL;
  Keep k;
  Ev ev;
  Rec rec_rt, rec_task;
  DvtTask *kept;

  keep_init (&k);
  rec_init (&rec_rt);
  rec_init (&rec_task);
  rec_share_inside (&rec_task, &rec_rt);
  rec_connect (&rec_rt, rt, NULL);
  future = dvt_runtime_schedule (rt, async_keep, &k, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  rec_connect (&rec_task, future, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&k.calls) == 1, 20));

  kept = g_ptr_array_index (k.tasks, 0);
  g_assert_true (kept == future);
  dvt_task_return_new_error (kept, TEST_ERROR, 5, "later");
  g_ptr_array_remove_index (k.tasks, 0);  /* completed: keep_clear must not */
  g_assert_true (dvt_task_wait (future, 20, &error));
  g_assert_no_error (error);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq_rt = rec_seq (&rec_rt, 0);
  g_assert_cmpstr (seq_rt, ==, "queued started1 failed");
  seq_task = rec_seq (&rec_task, 0);
  /* Connected after submission: queued (and started) may have been
   * delivered before. */
  g_assert_true (g_str_has_suffix (seq_task, "failed"));
  g_assert_true (g_str_has_suffix (seq_rt, seq_task));
  g_assert_true (rec_find (&rec_task, EV_FAILED, 0, &ev));
  g_assert_error (ev.error, TEST_ERROR, 5);
  g_assert_cmpstr (ev.error->message, ==, "later");
  g_assert_true (ev.own);
  ev_clear (&ev);
  g_assert_cmpint (rec_rt.overlaps, ==, 0);

  rec_clear (&rec_rt);
  rec_clear (&rec_task);
  keep_clear (&k);
}

/* Retries and cancellation through a future's own signals. */
static void
test_task_signals_retry_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) blocker = NULL;
  g_autoptr(DvtTask) future = NULL;
  g_autofree char *seq = NULL;
  Flaky f = { 0, 0 };
  Hold h;
  Ev ev;
  Rec rec;

  hold_init (&h);
  rec_init (&rec);
  dvt_options_set_retries (options, 3);
  dvt_options_set_retry_backoff (options, 20);  /* below retry-max-delay */
  blocker = dvt_runtime_submit (rt, work_hold, &h, NULL, NULL, NULL, &error);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 1, 20));
  future = dvt_runtime_submit (rt, work_flaky, &f, NULL, options, NULL, &error);
  rec_connect (&rec, future, NULL);
  hold_finish (&h);
  g_assert_true (POLL_UNTIL (rec_count (&rec, EV_RETRY, 0) == 1, 20));
  dvt_task_cancel (future);
  g_assert_true (POLL_UNTIL (rec_terminals (&rec, 0) == 1, 20));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "started1 retry1 cancelled");
  g_assert_true (rec_find (&rec, EV_RETRY, 0, &ev));
  g_assert_error (ev.error, TEST_ERROR, 1);
  g_assert_cmpfloat (ev.value, ==, 20);
  ev_clear (&ev);
  rec_clear (&rec);
  gate_clear (&h.gate);
}

/* ---- where handlers run ------------------------------------------------ */

/* Several workers completing at once: handlers run on the loop thread,
 * never two at once. */
static void
test_thread_default (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  GThread *loop = loop_thread_of (rt);
  Rec rec, rec_a;

  rec_init (&rec);
  rec_init (&rec_a);
  rec_share_inside (&rec_a, &rec);
  rec.sleep_us = 1000;
  rec.sleep_all = TRUE;
  rec_connect (&rec, rt, NULL);
  rec_connect (&rec_a, rt, "a");

  for (guint i = 0; i < 40; i++)
    {
      g_autoptr(DvtOptions) options = named (i % 2 ? "a" : "b");

      g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (i % 3),
                                                  NULL, options, NULL, NULL));
    }
  for (guint i = 0; i < tasks->len; i++)
    g_assert_true (dvt_task_wait (g_ptr_array_index (tasks, i), 30, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (rec_terminals (&rec, 0), ==, 40);
  g_assert_cmpuint (rec_terminals (&rec_a, 0), ==, 20);
  g_assert_cmpuint (rec_len (&rec), ==, 120);
  rec_assert_events_thread (&rec, loop);
  rec_assert_events_thread (&rec_a, loop);
  g_assert_cmpint (rec.overlaps, ==, 0);
  g_assert_cmpint (rec.max_inside, ==, 1);
  rec_assert_well_formed (&rec, TRUE);
  rec_clear (&rec);
  rec_clear (&rec_a);
}

static void
on_finished_count (DvtRuntime *rt, DvtTask *task, double elapsed, gpointer count)
{
  g_atomic_int_inc ((int *) count);
}

/* Owns @ctx while checking: handlers must run while it is iterated. */
static void
on_finished_check_owner (DvtRuntime *rt, DvtTask *task, double elapsed, gpointer ctx)
{
  g_assert_true (g_main_context_is_owner (ctx));
}

/* With an event context, handlers run where it is iterated (here, this
 * thread), only then, one at a time. */
static void
test_thread_event_context (void)
{
  g_autoptr(GMainContext) ctx = g_main_context_new ();
  g_autoptr(DvtTestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 4,
                                               "event-context", ctx, NULL);
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GMainContext) got = NULL;
  Rec rec, rec_task;

  g_object_get (rt, "event-context", &got, NULL);
  g_assert_true (got == ctx);

  rec_init (&rec);
  rec_init (&rec_task);
  rec_share_inside (&rec_task, &rec);
  rec.sleep_us = 500;
  rec.sleep_all = TRUE;
  rec_connect (&rec, rt, NULL);
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished_check_owner), ctx);

  /* Blocking calls from this thread: nothing is delivered meanwhile. */
  for (guint i = 0; i < 4; i++)
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_sleep, GUINT_TO_POINTER (1), NULL,
                                                   NULL, NULL, NULL, NULL));
  g_usleep (20000);
  g_assert_cmpuint (rec_len (&rec), ==, 0);

  /* Many completing together, and a future's own signals. */
  for (guint i = 0; i < 30; i++)
    g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (i % 3), NULL,
                                                NULL, NULL, NULL));
  rec_connect (&rec_task, g_ptr_array_index (tasks, 29), NULL);
  for (guint i = 0; i < tasks->len; i++)
    g_assert_true (dvt_task_wait (g_ptr_array_index (tasks, i), 30, NULL));
  g_assert_true (ITERATE_UNTIL (ctx, rec_terminals (&rec, 0) == 34 &&
                                     rec_terminals (&rec_task, 0) == 1, 30));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  while (g_main_context_iteration (ctx, FALSE))
    ;

  g_assert_cmpuint (rec_len (&rec), ==, 34 * 3);
  rec_assert_thread (&rec, g_thread_self ());
  rec_assert_thread (&rec_task, g_thread_self ());
  g_assert_cmpint (rec.overlaps, ==, 0);
  rec_assert_well_formed (&rec, TRUE);

  g_signal_handlers_disconnect_by_func (rt, on_finished_check_owner, ctx);
  rec_clear (&rec);
  rec_clear (&rec_task);
}

/* The events wait in the event context; once it is iterated they are
 * delivered, and the runtime, shut down and dropped meanwhile, is then
 * finalized. */
static void
test_event_context_after_drop (void)
{
  g_autoptr(GMainContext) ctx = g_main_context_new ();
  DvtRuntime *rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2, "event-context", ctx,
                                 NULL);
  g_autofree char *seq = NULL;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, NULL, NULL, NULL,
                                                 NULL));
  rec_disconnect (&rec);
  /* A handler that stays, so the events are still emitted. */
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished), &rec);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_add_weak_pointer (G_OBJECT (rt), (gpointer *) &rt);
  g_object_unref (rt);

  g_assert_true (ITERATE_UNTIL (ctx, rt == NULL, 20));
  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "finished");
  rec_clear (&rec);
}

/* ---- nothing dropped --------------------------------------------------- */

/* Four completions at once with a slow handler: exactly four calls. */
static void
test_no_drops_slow_handler (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GArray) ids = NULL;
  Hold h;
  Rec rec;

  hold_init (&h);
  rec_init (&rec);
  rec.sleep_us = 100000;
  rec.sleep_kind = EV_FINISHED;
  g_signal_connect (rt, "finished", G_CALLBACK (on_finished), &rec);

  for (guint i = 0; i < 4; i++)
    g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_hold, &h, NULL, NULL, NULL, NULL));
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 4, 20));
  gate_open (&h.gate);
  g_assert_true (POLL_UNTIL (rec_len (&rec) == 4, 20));
  g_usleep (100000);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (rec_len (&rec), ==, 4);
  ids = rec_ids (&rec);
  g_assert_cmpuint (ids->len, ==, 4);
  g_assert_cmpint (rec.overlaps, ==, 0);
  g_signal_handlers_disconnect_by_data (rt, &rec);
  rec_clear (&rec);
  hold_clear (&h);
}

typedef struct
{
  DvtRuntime *rt;
  guint       n;
} Submitter;

static gpointer
submitter_thread (gpointer data)
{
  Submitter *s = data;

  for (guint i = 0; i < s->n; i++)
    {
      GError *error = NULL;

      if (i % 2 == 0)
        g_assert_true (dvt_runtime_to_thread_blocking (s->rt, work_int, GUINT_TO_POINTER (i),
                                                       NULL, NULL, NULL, NULL, &error));
      else
        {
          DvtTask *t = dvt_runtime_submit (s->rt, work_int, NULL, NULL, NULL, NULL, &error);

          g_assert_true (dvt_task_wait (t, 30, &error));
          g_object_unref (t);
        }
      g_assert_no_error (error);
    }

  return NULL;
}

/* 1000 tasks from 4 threads: 1000 of each event, none lost or doubled. */
static void
test_no_drops_many_threads (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GArray) ids = NULL;
  g_autoptr(DvtStats) stats = NULL;
  Submitter s = { rt, 250 };
  GThread *threads[4];
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  for (guint i = 0; i < 4; i++)
    threads[i] = g_thread_new ("submitter", submitter_thread, &s);
  for (guint i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  g_assert_true (POLL_UNTIL (rec_terminals (&rec, 0) >= 1000, 30));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_cmpuint (rec_count (&rec, EV_FINISHED, 0), ==, 1000);
  g_assert_cmpuint (rec_count (&rec, EV_QUEUED, 0), ==, 1000);
  g_assert_cmpuint (rec_count (&rec, EV_STARTED, 0), ==, 1000);
  g_assert_cmpuint (rec_len (&rec), ==, 3000);
  ids = rec_ids (&rec);
  g_assert_cmpuint (ids->len, ==, 1000);
  rec_assert_well_formed (&rec, TRUE);
  g_assert_cmpint (rec.overlaps, ==, 0);

  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->done, ==, 1000);
  rec_clear (&rec);
}

/* ---- a handler that submits work --------------------------------------- */

typedef struct
{
  DvtRuntime *rt;
  GPtrArray  *followers;  /* touched by handlers only, then by the test */
  GError     *blocking_error;
} FollowUp;

static void
start_b (Rec           *rec,
         const Ev      *ev,
         DvtTask       *task)
{
  FollowUp *fu = rec->hook_data;
  g_autoptr(DvtOptions) options = NULL;
  GError *blocking_error = NULL;
  GError *error = NULL;
  DvtTask *b;

  if (ev->kind != EV_FINISHED || g_strcmp0 (ev->name, "a") != 0)
    return;

  /* A blocking call from a handler: handlers do not run on the loop
   * thread, so it is allowed. */
  if (!dvt_runtime_to_thread_blocking (fu->rt, work_int, NULL, NULL, NULL, NULL, NULL,
                                       &blocking_error))
    fu->blocking_error = blocking_error;

  options = named ("b");
  b = dvt_runtime_submit (fu->rt, work_sleep, GUINT_TO_POINTER (5), NULL, options, NULL,
                          &error);
  g_assert_no_error (error);
  g_ptr_array_add (fu->followers, b);
}

static void
check_follow_up (gboolean on_event_context)
{
  g_autoptr(GMainContext) ctx = on_event_context ? g_main_context_new () : NULL;
  g_autoptr(DvtTestRuntime) rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 2,
                                               "event-context", ctx, NULL);
  g_autoptr(DvtOptions) a = named ("a");
  g_autoptr(GError) error = NULL;
  g_autofree char *seq_b = NULL;
  FollowUp fu = { rt, g_ptr_array_new_with_free_func (g_object_unref), NULL };
  Rec rec, rec_b;

  rec_init (&rec);
  rec_init (&rec_b);
  rec_share_inside (&rec_b, &rec);
  rec.hook = start_b;
  rec.hook_data = &fu;
  rec_connect (&rec, rt, NULL);
  rec_connect (&rec_b, rt, "b");

  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, a, NULL, NULL,
                                                 &error));
  g_assert_true (ITERATE_UNTIL (ctx, rec_terminals (&rec_b, 0) == 1, 20));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  if (ctx != NULL)
    while (g_main_context_iteration (ctx, FALSE))
      ;

  g_assert_cmpuint (fu.followers->len, ==, 1);
  seq_b = rec_seq (&rec, dvt_task_get_id (g_ptr_array_index (fu.followers, 0)));
  g_assert_cmpstr (seq_b, ==, "queued started1 finished");
  rec_assert_well_formed (&rec, TRUE);
  g_assert_no_error (fu.blocking_error);

  g_assert_cmpint (rec.overlaps, ==, 0);

  g_clear_error (&fu.blocking_error);
  g_ptr_array_unref (fu.followers);
  rec_clear (&rec);
  rec_clear (&rec_b);
}

static void
test_follow_up (void)
{
  check_follow_up (FALSE);
}

static void
test_follow_up_event_context (void)
{
  check_follow_up (TRUE);
}

/* ---- throttled --------------------------------------------------------- */

static void
test_throttled (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(DvtStats) stats = NULL;
  /* Slow enough that the four submissions take less than an interval. */
  const double rate = is_valgrind () ? 4 : 20, interval = 1 / rate;
  double max_wait = 0;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  g_assert_true (dvt_runtime_set_rate_limit (rt, rate, 1, &error));

  for (guint i = 0; i < 4; i++)
    g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL, &error));
  for (guint i = 0; i < 4; i++)
    g_assert_true (dvt_task_wait (g_ptr_array_index (tasks, i), 30, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  /* The first starts at once; the others are held back, each for less
   * than its place in line times the interval. */
  g_assert_cmpuint (rec_count (&rec, EV_THROTTLED, 0), ==, 3);
  for (guint i = 0; i < 4; i++)
    {
      DvtTask *t = g_ptr_array_index (tasks, i);
      g_autofree char *seq = rec_seq (&rec, dvt_task_get_id (t));
      Ev ev;

      if (i == 0)
        {
          g_assert_cmpstr (seq, ==, "queued started1 finished");
          continue;
        }
      g_assert_cmpstr (seq, ==, "queued throttled started1 finished");
      g_assert_true (rec_find (&rec, EV_THROTTLED, dvt_task_get_id (t), &ev));
      g_assert_cmpfloat (ev.value, >, 0);
      g_assert_cmpfloat (ev.value, <=, i * interval + TOL);
      g_assert_cmpuint (ev.attempt, ==, 1);
      max_wait = MAX (max_wait, ev.value);
      /* It finished after its wait. */
      {
        double wait = ev.value;

        ev_clear (&ev);
        g_assert_true (rec_find (&rec, EV_FINISHED, dvt_task_get_id (t), &ev));
        g_assert_cmpfloat (ev.value, >=, wait - TOL);
        ev_clear (&ev);
      }
    }
  /* The last waited about three intervals (less the time it took to
   * submit the four). */
  if (!is_valgrind ())
    g_assert_cmpfloat (max_wait, >, 2 * interval);

  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->throttled, ==, 3);
  rec_clear (&rec);
}

/* ---- elapsed ----------------------------------------------------------- */

/* Elapsed runs from acceptance: a task queued behind another for 100 ms
 * that then sleeps 50 ms took at least 150 ms. */
static void
test_elapsed (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) first = NULL;
  g_autoptr(DvtTask) second = NULL;
  gint64 start = g_get_monotonic_time ();
  double outer;
  Ev ev;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  first = dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (100), NULL, NULL, NULL, &error);
  second = dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (50), NULL, NULL, NULL, &error);
  g_assert_true (dvt_task_wait (second, 30, &error));
  outer = seconds_since (start);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  g_assert_true (rec_find (&rec, EV_FINISHED, dvt_task_get_id (first), &ev));
  g_assert_cmpfloat (ev.value, >=, 0.100 - TOL);
  g_assert_cmpfloat (ev.value, <=, outer);
  ev_clear (&ev);
  g_assert_true (rec_find (&rec, EV_FINISHED, dvt_task_get_id (second), &ev));
  g_assert_cmpfloat (ev.value, >=, 0.150 - TOL);
  g_assert_cmpfloat (ev.value, <=, outer);
  g_assert_true (isfinite (ev.value));
  ev_clear (&ev);
  rec_clear (&rec);
}

/* ---- nothing recorded without listeners -------------------------------- */

static void
test_not_watched (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(GError) error = NULL;
  g_autoptr(DvtTask) early_future = NULL;
  g_autoptr(DvtTask) late = NULL;
  g_autofree char *seq = NULL;
  Outcome o = { rt, FALSE, FALSE, NULL, NULL };
  Hold h;
  Rec rec;

  hold_init (&h);
  rec_init (&rec);

  /* Accepted with no handler anywhere: running, queued, and a future. */
  dvt_runtime_to_thread_async (rt, work_hold, &h, NULL, NULL, NULL, to_thread_cb, &o);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&h.started) == 1, 20));
  early_future = dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL, &error);

  rec_connect (&rec, rt, NULL);
  late = dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL, &error);
  gate_open (&h.gate);
  g_assert_true (ITERATE_UNTIL (NULL, o.done, 20));
  g_assert_true (o.ok);
  g_assert_true (dvt_task_wait (early_future, 20, NULL));
  g_assert_true (dvt_task_wait (late, 20, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  /* Only the task accepted after the handler was connected. */
  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "queued started1 finished");
  g_assert_cmpuint (rec_count (&rec, N_EV, dvt_task_get_id (late)), ==, 3);
  rec_clear (&rec);
  hold_clear (&h);
  drain_default_context ();
}

/* A handler disconnected again: tasks accepted afterwards are not
 * recorded, and no event waits anywhere for them. */
static void
test_not_watched_after_disconnect (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, NULL, NULL, NULL,
                                                 NULL));
  g_assert_true (POLL_UNTIL (rec_terminals (&rec, 0) == 1, 20));
  rec_disconnect (&rec);
  for (guint i = 0; i < 20; i++)
    g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, NULL, NULL, NULL,
                                                   NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpuint (rec_len (&rec), ==, 3);
  rec_clear (&rec);
}

/* ---- maps -------------------------------------------------------------- */

static void
item_flaky (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  /* Odd items fail their first attempt. */
  if (dvt_task_get_index (task) % 2 == 1 && dvt_task_get_attempt (task) == 1)
    g_set_error (error, TEST_ERROR, 1, "item failed once");
  else
    dvt_task_return_int (task, dvt_task_get_index (task));
}

/* A map is one task: its items, their retries included, emit nothing. */
static void
test_map_one_task (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = named ("batch");
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  g_autoptr(DvtStats) stats = NULL;
  g_autofree char *seq = NULL;
  Ev ev;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  dvt_options_set_retries (options, 1);
  dvt_options_set_retry_backoff (options, 0.001);
  results = dvt_runtime_map_blocking (rt, 50, item_flaky, NULL, NULL, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 50);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  seq = rec_seq (&rec, 0);
  g_assert_cmpstr (seq, ==, "queued started1 finished");
  g_assert_true (rec_find (&rec, EV_FINISHED, 0, &ev));
  g_assert_cmpstr (ev.name, ==, "batch");
  ev_clear (&ev);

  stats = dvt_runtime_get_stats (rt);
  g_test_message ("map stats: queued %" G_GUINT64_FORMAT " started %" G_GUINT64_FORMAT
                  " retries %" G_GUINT64_FORMAT,
                  stats->queued, stats->started, stats->retries);
  rec_clear (&rec);
}

/* ---- trace ------------------------------------------------------------- */

typedef enum
{
  TRACE_ENV,
  TRACE_PROPERTY,
  TRACE_PROPERTY_LATE,
  TRACE_OFF,
} TraceMode;

static void
trace_child (TraceMode mode)
{
  DvtRuntime *rt;
  g_autoptr(DvtOptions) options = named ("traced");
  g_autoptr(DvtOptions) broken = named ("broken");
  Rec rec;

  g_setenv ("G_MESSAGES_DEBUG", "Dovetail", TRUE);
  if (mode == TRACE_ENV)
    g_setenv ("DVT_TRACE", "1", TRUE);
  else
    g_unsetenv ("DVT_TRACE");

  rt = g_object_new (DVT_TYPE_RUNTIME, "max-workers", 1,
                     "trace", mode == TRACE_PROPERTY, NULL);
  rec_init (&rec);
  if (mode == TRACE_OFF)
    rec_connect (&rec, rt, NULL);  /* events, but no trace */
  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_int, NULL, NULL, options, NULL, NULL,
                                                 NULL));
  if (mode == TRACE_PROPERTY_LATE)
    g_object_set (rt, "trace", TRUE, NULL);
  g_assert_false (dvt_runtime_to_thread_blocking (rt, work_fail, GINT_TO_POINTER (9), NULL,
                                                  broken, NULL, NULL, NULL));
  if (mode != TRACE_OFF)
    {
      gboolean on = FALSE;

      g_object_get (rt, "trace", &on, NULL);
      g_assert_true (on);
    }
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);
  rec_clear (&rec);
}

static void
test_trace (gconstpointer data)
{
  TraceMode mode = GPOINTER_TO_INT (data);

  if (g_test_subprocess ())
    {
      trace_child (mode);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  /* g_debug() writes to stdout (GLib sends debug and info there unless
   * told otherwise); the child runs in the C locale, where GLib writes
   * the curly quotes around the name as "?": match any character. */
  if (mode == TRACE_OFF)
    {
      g_test_trap_assert_stdout_unmatched ("*task *");
      g_test_trap_assert_stderr_unmatched ("*task *");
      return;
    }

  if (mode != TRACE_PROPERTY_LATE)
    {
      /* One line per event, in order, in the Dovetail domain. */
      g_test_trap_assert_stdout ("*Dovetail-DEBUG*: task 1 ?traced? queued: attempt 1, 0 s\n*");
      g_test_trap_assert_stdout ("*Dovetail-DEBUG*: task 1 ?traced? started: attempt 1, *s\n*");
      g_test_trap_assert_stdout ("*Dovetail-DEBUG*: task 1 ?traced? finished: attempt 1, *s\n*");
      g_test_trap_assert_stdout ("*?traced? queued*?traced? started*?traced? finished*");
      g_test_trap_assert_stdout_unmatched ("*?traced? queued*?traced? queued*");
      g_test_trap_assert_stdout_unmatched ("*?traced? finished*?traced? finished*");
    }
  else
    /* Set after the first task was accepted: only the second is traced. */
    g_test_trap_assert_stdout_unmatched ("*?traced?*");

  g_test_trap_assert_stdout ("*Dovetail-DEBUG*: task 2 ?broken? queued: attempt 1, 0 s\n*");
  g_test_trap_assert_stdout ("*Dovetail-DEBUG*: task 2 ?broken? failed: attempt 1, "
                             "failed with 9, *s\n*");
  g_test_trap_assert_stdout ("*?broken? queued*?broken? started*?broken? failed*");
  g_test_trap_assert_stdout_unmatched ("*?broken? failed*?broken? failed*");
  g_test_trap_assert_stderr_unmatched ("*task *");
}

/* ---- counters agree with events ---------------------------------------- */

static void
test_counters_agree (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (3);
  g_autoptr(DvtOptions) retry = dvt_options_new ();
  g_autoptr(DvtOptions) timeout = dvt_options_new ();
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(DvtStats) stats = NULL;
  g_autoptr(GError) error = NULL;
  Flaky f = { 2, 0 };
  Flaky never = { 0, 0 };
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  g_assert_true (dvt_runtime_set_rate_limit (rt, is_valgrind () ? 20 : 200, 2, &error));
  dvt_options_set_retries (retry, 2);
  dvt_options_set_retry_backoff (retry, 0.001);
  dvt_options_set_timeout (timeout, 0.02);

  for (guint i = 0; i < 10; i++)
    g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_int, NULL, NULL, NULL, NULL, NULL));
  g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_flaky, &f, NULL, retry, NULL, NULL));
  g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_flaky, &never, NULL, retry, NULL, NULL));
  g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (200), NULL,
                                              timeout, NULL, NULL));
  {
    DvtTask *t = dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (200), NULL, NULL, NULL,
                                     NULL);

    dvt_task_cancel (t);
    g_ptr_array_add (tasks, t);
  }
  for (guint i = 0; i < tasks->len; i++)
    g_assert_true (dvt_task_wait (g_ptr_array_index (tasks, i), 30, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->queued, ==, rec_count (&rec, EV_QUEUED, 0));
  g_assert_cmpuint (stats->started, ==, rec_count (&rec, EV_STARTED, 0));
  g_assert_cmpuint (stats->retries, ==, rec_count (&rec, EV_RETRY, 0));
  g_assert_cmpuint (stats->throttled, ==, rec_count (&rec, EV_THROTTLED, 0));
  g_assert_cmpuint (stats->done, ==, rec_count (&rec, EV_FINISHED, 0));
  g_assert_cmpuint (stats->error, ==, rec_count (&rec, EV_FAILED, 0));
  g_assert_cmpuint (stats->cancelled, ==, rec_count (&rec, EV_CANCELLED, 0));
  /* And by their definitions: 14 calls; 10 plain + the flaky one
   * succeed; the one that never succeeds and the timed-out one fail; one
   * retry for the flaky one (it succeeds at attempt 2), two for the other;
   * one timeout. */
  g_assert_cmpuint (stats->queued, ==, 14);
  g_assert_cmpuint (stats->done, ==, 11);
  g_assert_cmpuint (stats->error, ==, 2);
  g_assert_cmpuint (stats->cancelled, ==, 1);
  g_assert_cmpuint (stats->retries, ==, 3);
  g_assert_cmpuint (stats->timed_out, ==, 1);
  g_assert_cmpuint (stats->queued, ==, stats->done + stats->error + stats->cancelled);
  /* 10 + 2 + 3 attempts, and those of the timed-out and the cancelled
   * task if they started before their end (the rate limit may hold them). */
  g_assert_cmpuint (stats->started, >=, 15);
  g_assert_cmpuint (stats->started, <=, 17);
  g_assert_cmpuint (stats->running, ==, 0);
  g_assert_cmpuint (stats->pending, ==, 0);
  g_assert_cmpuint (stats->throttled, >, 0);
  rec_assert_well_formed (&rec, TRUE);
  rec_clear (&rec);
}

/* ---- the last reference goes with the events ------------------------- */

/* The caller shuts down without waiting and drops the runtime while work
 * runs: the task, then its event records, hold the runtime, whose last
 * reference goes on the loop thread once the events are delivered. */
static void
test_last_reference_in_delivery (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  DvtTask *task;
  int finished = 0;

  g_signal_connect (rt, "finished", G_CALLBACK (on_finished_count), &finished);
  task = dvt_runtime_submit (rt, work_sleep, GUINT_TO_POINTER (50), NULL, NULL, NULL, NULL);
  g_object_unref (task);
  add_weak_pointer_atomic (G_OBJECT (rt), (gpointer *) &rt);
  dvt_runtime_shutdown (rt, FALSE, FALSE);
  g_object_unref (rt);
  g_assert_nonnull (g_atomic_pointer_get (&rt));

  g_assert_true (POLL_UNTIL (g_atomic_pointer_get (&rt) == NULL, 20));
  g_assert_cmpint (g_atomic_int_get (&finished), ==, 1);
  /* Its threads stop on their own. */
  g_assert_true (POLL_UNTIL (({ guint n; count_threads ("dvt-loop", &n); n == 0; }), 20));
}

/* ---- a task renamed by its work ---------------------------------------- */

/* dvt_task_set_name() says to call it "typically from the work function
 * itself"; meanwhile the events of the task are delivered on another
 * thread, which reads the name (the signal's detail, and handlers calling
 * dvt_task_get_name()). Under ASan a race here shows as a use after free. */
static void
work_rename (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *name = g_strdup_printf ("renamed-%u", i);

      dvt_task_set_name (task, name);
    }
  dvt_task_return_int (task, 1);
}

static void
test_rename_in_work (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (4);
  g_autoptr(DvtOptions) options = named ("before");
  g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func (g_object_unref);
  guint n = is_valgrind () ? 50 : 500;
  Rec rec;

  rec_init (&rec);
  rec_connect (&rec, rt, NULL);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (tasks, dvt_runtime_submit (rt, work_rename, NULL, NULL, options, NULL,
                                                NULL));
  for (guint i = 0; i < n; i++)
    g_assert_true (dvt_task_wait (g_ptr_array_index (tasks, i), 30, NULL));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_assert_cmpuint (rec_terminals (&rec, 0), ==, n);
  rec_clear (&rec);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/events/order/success", test_order_success);
  g_test_add_func ("/events/order/ids-unique", test_order_ids_unique);
  g_test_add_func ("/events/order/retry", test_order_retry);
  g_test_add_func ("/events/order/retry-exhausted", test_order_retry_exhausted);
  g_test_add_func ("/events/order/retry-async", test_order_retry_async);
  g_test_add_func ("/events/order/backoff-timeout", test_order_backoff_timeout);
  g_test_add_func ("/events/order/backoff-cancel", test_order_backoff_cancel);
  g_test_add_func ("/events/failure", test_failure);
  g_test_add_func ("/events/timeout/while-queued", test_timeout_while_queued);

  for (int e = 0; e < N_ENTRIES; e++)
    for (int o = 0; o < N_OUTCOMES; o++)
      {
        g_autofree char *path = g_strdup_printf ("/events/one-terminal/%s/%s",
                                                 entry_names[e], ending_names[o]);

        g_test_add_data_func (path, GINT_TO_POINTER (e * N_OUTCOMES + o), test_one_terminal);
      }

  g_test_add_func ("/events/cancel/queued-and-running", test_cancel_queued_and_running);
  g_test_add_func ("/events/shutdown/cancel-pending", test_shutdown_cancel_pending);
  g_test_add_func ("/events/shutdown/loop-busy", test_shutdown_loop_busy);
  g_test_add_func ("/events/shutdown/races-submissions", test_shutdown_races_submissions);
  g_test_add_func ("/events/terminal-matches-result", test_terminal_matches_result);

  g_test_add_func ("/events/detail", test_detail);
  g_test_add_func ("/events/detail/only-handler", test_detail_only_handler);

  g_test_add_func ("/events/task/submit", test_task_signals_submit);
  g_test_add_func ("/events/task/schedule", test_task_signals_schedule);
  g_test_add_func ("/events/task/retry-cancel", test_task_signals_retry_cancel);

  g_test_add_func ("/events/thread/default", test_thread_default);
  g_test_add_func ("/events/thread/event-context", test_thread_event_context);
  g_test_add_func ("/events/thread/event-context-after-drop", test_event_context_after_drop);

  g_test_add_func ("/events/no-drops/slow-handler", test_no_drops_slow_handler);
  g_test_add_func ("/events/no-drops/many-threads", test_no_drops_many_threads);

  g_test_add_func ("/events/follow-up", test_follow_up);
  g_test_add_func ("/events/follow-up/event-context", test_follow_up_event_context);

  g_test_add_func ("/events/throttled", test_throttled);
  g_test_add_func ("/events/elapsed", test_elapsed);
  g_test_add_func ("/events/not-watched", test_not_watched);
  g_test_add_func ("/events/not-watched/after-disconnect", test_not_watched_after_disconnect);
  g_test_add_func ("/events/map/one-task", test_map_one_task);
  g_test_add_func ("/events/counters-agree", test_counters_agree);
  g_test_add_func ("/events/last-reference-in-delivery", test_last_reference_in_delivery);
  g_test_add_func ("/events/rename-in-work", test_rename_in_work);

  g_test_add_data_func ("/events/trace/env", GINT_TO_POINTER (TRACE_ENV), test_trace);
  g_test_add_data_func ("/events/trace/property", GINT_TO_POINTER (TRACE_PROPERTY), test_trace);
  g_test_add_data_func ("/events/trace/property-late", GINT_TO_POINTER (TRACE_PROPERTY_LATE),
                        test_trace);
  g_test_add_data_func ("/events/trace/off", GINT_TO_POINTER (TRACE_OFF), test_trace);

  return g_test_run ();
}
