/* test-soak.c: a long run of many tasks with random failures, timeouts,
 * retries and cancellations from several submitting threads
 *
 *   test-soak [--tasks N] [--threads T] [--seed S] [--no-rate-limit] [-v]
 *
 * Every task gets a plan from a seeded hash of its sequence number:
 * succeed, fail once then succeed, always fail, sleep past a short timeout,
 * or ignore cancellation. Each submitting thread pushes its share through a
 * mix of entry points (futures from submit and schedule, some cancelled
 * right away, by another thread, or just before they are waited on;
 * to_thread_async with callbacks on the thread's own context;
 * to_thread_blocking; run_blocking; a few map_blocking batches), with
 * random per-call retries, timeouts and use-caller-context. Meanwhile a
 * rate limit is switched on and off.
 *
 * At the end it checks, for every task, that the caller saw it end exactly
 * once, that its data was freed exactly once, that its outcome (and the
 * number of times its function ran) is what its plan and its cancellation
 * allow, and that the runtime's counters match what the callers saw.
 *
 * Exits 0 when everything holds; prints the failures and exits 1 if not.
 * The run is reproducible in its plans (not in its timing) with --seed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters --------------------------------------------------------- */

#define MAX_THREADS      16
#define FUTURE_WINDOW    128   /* futures in flight per submitting thread */
#define ASYNC_WINDOW     128   /* to_thread_async calls in flight per thread */
#define SHORT_TIMEOUT    0.002 /* s: tasks planned to sleep past it */
#define LONG_TIMEOUT     60.0  /* s (times `slow`): must never fire */
#define RETRY_BACKOFF    0.0005
#define RETRY_MAX_DELAY  0.002
#define IGNORE_SLEEP_US  300   /* a task ignoring cancellation sleeps this */
#define SLOW_CAP         20.0  /* s (times `slow`): a timeout must come first */
#define HANG_SECONDS     120.0 /* s (times `slow`) without progress: a hang */
#define MAP_ONE_IN       1500  /* a map starts at about one position in this */

/* ---- the plan of each task ---------------------------------------------- */

typedef enum
{
  PLAN_OK,
  PLAN_FAIL_ONCE,      /* the first attempt fails, the next ones succeed */
  PLAN_ALWAYS_FAIL,
  PLAN_SLOW,           /* runs until its (short) timeout ends it */
  PLAN_IGNORE_CANCEL,  /* sleeps without looking at its cancellable */
  N_PLANS
} Plan;

static const char *plan_names[] = { "ok", "fail-once", "always-fail", "slow", "ignore-cancel" };

typedef enum
{
  KIND_SUBMIT,          /* dvt_runtime_submit, a future */
  KIND_ASYNC,           /* dvt_runtime_to_thread_async, a callback */
  KIND_THREAD_BLOCKING, /* dvt_runtime_to_thread_blocking */
  KIND_SCHEDULE,        /* dvt_runtime_schedule of an async function, a future */
  KIND_RUN_BLOCKING,    /* dvt_runtime_run_blocking of an async function */
  KIND_MAP_ITEM,        /* one item of a dvt_runtime_map_blocking */
  N_KINDS
} Kind;

static const char *kind_names[] = {
  "submit", "to-thread-async", "to-thread-blocking", "schedule", "run-blocking", "map-item"
};

typedef enum
{
  CANCEL_NONE,
  CANCEL_AT_ONCE,      /* right after the call (futures, async calls) */
  CANCEL_LATER,        /* by the canceller thread, at some point */
  CANCEL_BEFORE,       /* futures: just before the wait; calls: already cancelled */
} CancelMode;

typedef enum
{
  OUT_NONE,
  OUT_OK,
  OUT_ERR_ONCE,        /* the work's first-attempt error */
  OUT_ERR_ALWAYS,      /* the work's error of its last attempt */
  OUT_TIMED_OUT,
  OUT_CANCELLED,
  OUT_MAP_FAILED,      /* an item of a map that failed as a whole */
  OUT_BAD,             /* anything else: a wrong value or error */
  N_OUTCOMES
} Outcome;

static const char *outcome_names[] = {
  "none", "ok", "error(once)", "error(always)", "timed-out", "cancelled", "map-failed", "BAD"
};

/* Set by the submitting thread. */
enum
{
  SF_SUBMITTED     = 1 << 0,
  SF_CANCEL_ASKED  = 1 << 1,  /* a cancellation was requested before the end was seen */
  SF_SHORT_TIMEOUT = 1 << 2,
  SF_LONG_TIMEOUT  = 1 << 3,
  SF_CALLER_CTX    = 1 << 4,  /* async work on the submitter's own context */
  SF_EARLY_DESTROY = 1 << 5,  /* a blocking call returned before freeing its data */
  SF_FAILED_MAP    = 1 << 6,
};

/* Set by the work (atomically). */
enum
{
  WF_NULL_CANCELLABLE = 1 << 0,  /* slow work under a timeout got no cancellable */
  WF_NEVER_ENDED      = 1 << 1,  /* slow work: no timeout came within SLOW_CAP */
  WF_BAD_ATTEMPT      = 1 << 2,  /* the attempt number did not follow the runs */
  WF_WRONG_DESTROY    = 1 << 3,  /* data of an async call freed off its context */
};

typedef struct
{
  int     runs;         /* atomic: calls of the work function */
  int     completions;  /* atomic: ends the caller saw */
  int     destroyed;    /* atomic: func_data_destroy calls */
  int     wflags;       /* atomic: WF_* */
  guint8  plan;
  guint8  kind;
  guint8  retries;      /* effective */
  guint8  outcome;
  guint8  thread;
  guint8  cancel;       /* CancelMode */
  guint8  sflags;       /* SF_* */
  guint8  pad;
} Entry;

static Entry  *entries;
static guint   n_tasks = 20000;
static guint   n_threads = 4;
static guint64 seed;
static gboolean no_rate_limit;
static gboolean verbose;

static DvtRuntime *rt;
static int progress;               /* atomic: ends seen by callers */
static int loop_deferred;          /* atomic: deferred completions on the loop */
static GAsyncQueue *cancel_queue;  /* GObjects to cancel */
static int cancel_stop_marker;

/* ---- failures ----------------------------------------------------------- */

static GMutex failures_lock;
static guint n_failures;
#define MAX_FAILURE_LINES 40

static void fail (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
fail (const char *format,
      ...)
{
  va_list args;

  g_mutex_lock (&failures_lock);
  if (n_failures++ < MAX_FAILURE_LINES)
    {
      va_start (args, format);
      fputs ("FAIL: ", stdout);
      vprintf (format, args);
      fputc ('\n', stdout);
      fflush (stdout);
      va_end (args);
    }
  g_mutex_unlock (&failures_lock);
}

static guint
seq_of (Entry *e)
{
  return (guint) (e - entries);
}

static gint64
value_of (guint seq)
{
  return (gint64) seq * 3 + 1;
}

static void
describe (Entry *e,
          char  *buf,
          gsize  size)
{
  g_snprintf (buf, size,
              "task %u (%s, plan %s, retries %u, cancel %u, flags 0x%x/0x%x, thread %u): "
              "outcome %s, runs %d, ends seen %d, data freed %d",
              seq_of (e), kind_names[e->kind], plan_names[e->plan], e->retries, e->cancel,
              e->sflags, (guint) g_atomic_int_get (&e->wflags), e->thread,
              outcome_names[e->outcome], g_atomic_int_get (&e->runs),
              g_atomic_int_get (&e->completions), g_atomic_int_get (&e->destroyed));
}

/* ---- per-task randomness ------------------------------------------------ */

static guint64
mix64 (guint64 x)
{
  /* splitmix64 */
  x += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return x ^ (x >> 31);
}

static guint64
task_random (guint seq,
             guint salt)
{
  return mix64 (seed * G_GUINT64_CONSTANT (0x100000001b3) ^ ((guint64) salt << 40) ^ seq);
}

static Plan
pick_plan (guint64 r)
{
  guint p = (guint) (r % 10000);

  if (p < 600)
    return PLAN_FAIL_ONCE;     /* 6 % */
  if (p < 1000)
    return PLAN_ALWAYS_FAIL;   /* 4 % */
  if (p < 1050)
    return PLAN_IGNORE_CANCEL; /* 0.5 % */
  if (p < 1070)
    return PLAN_SLOW;          /* 0.2 % */
  return PLAN_OK;
}

static Kind
pick_kind (guint64 r)
{
  guint k = (guint) ((r >> 16) % 100);

  if (k < 35)
    return KIND_SUBMIT;
  if (k < 60)
    return KIND_ASYNC;
  if (k < 70)
    return KIND_THREAD_BLOCKING;
  if (k < 85)
    return KIND_SCHEDULE;
  return KIND_RUN_BLOCKING;
}

static CancelMode
pick_cancel (guint64 r,
             Plan    plan)
{
  guint c = (guint) ((r >> 40) % 100);

  if (plan == PLAN_IGNORE_CANCEL)
    return c % 2 ? CANCEL_LATER : CANCEL_AT_ONCE;
  if (c < 2)
    return CANCEL_AT_ONCE;
  if (c < 5)
    return CANCEL_LATER;
  if (c < 7)
    return CANCEL_BEFORE;
  return CANCEL_NONE;
}

/* ---- options ------------------------------------------------------------ */

/* Shared, read-only once made: [retries choice][timeout][caller context].
 * Retries choice 0 is "no options at all" (NULL), 1 is "unset" (the
 * runtime's default of 1), 2..4 are 0..2. */
#define N_RETRY_CHOICES 5
enum { TMO_NONE, TMO_SHORT, TMO_LONG, N_TMO };
static DvtOptions *options_table[N_RETRY_CHOICES][N_TMO][2];
static const guint runtime_retries = 1;

static void
make_options (void)
{
  for (guint r = 0; r < N_RETRY_CHOICES; r++)
    for (guint t = 0; t < N_TMO; t++)
      for (guint u = 0; u < 2; u++)
        {
          DvtOptions *o;

          if (r == 0 && t == TMO_NONE && u == 0)
            continue;  /* NULL */
          o = dvt_options_new ();
          if (r >= 2)
            {
              dvt_options_set_retries (o, (int) r - 2);
              dvt_options_set_retry_backoff (o, RETRY_BACKOFF);
              dvt_options_set_retry_max_delay (o, RETRY_MAX_DELAY);
              if (r == 4)
                dvt_options_set_retry_jitter (o, 0.3);
            }
          if (t == TMO_SHORT)
            dvt_options_set_timeout (o, SHORT_TIMEOUT);
          else if (t == TMO_LONG)
            dvt_options_set_timeout (o, LONG_TIMEOUT * slow);
          dvt_options_set_use_caller_context (o, u != 0);
          options_table[r][t][u] = o;
        }
}

static void
free_options (void)
{
  for (guint r = 0; r < N_RETRY_CHOICES; r++)
    for (guint t = 0; t < N_TMO; t++)
      for (guint u = 0; u < 2; u++)
        g_clear_object (&options_table[r][t][u]);
}

static guint
effective_retries (guint choice)
{
  return choice <= 1 ? runtime_retries : choice - 2;
}

/* ---- submitting threads ------------------------------------------------- */

typedef struct
{
  DvtTask *task;
  Entry   *entry;
} Future;

typedef struct
{
  guint          index;
  guint          first;
  guint          n;
  GThread       *thread;
  GMainContext  *context;
  GRand         *rand;

  Future         futures[FUTURE_WINDOW];
  guint          fut_head;
  guint          fut_len;

  int            async_outstanding;  /* callbacks not yet run */
  guint          async_calls;
  int            async_destroyed;    /* atomic */
  int            deferred;           /* atomic: deferred completions here */

  /* counts */
  guint          calls;              /* accepted calls, maps included */
  guint          maps;
  guint          maps_failed;
} Submitter;

static Submitter submitters[MAX_THREADS];
static _Thread_local Submitter *current_submitter;

/* ---- maps --------------------------------------------------------------- */

typedef struct
{
  guint    base;
  guint    n;
  guint    retries;
  gboolean return_errors;
  gboolean should_fail;
  int      destroyed;  /* atomic */
  gboolean failed;
} MapData;

static GMutex     maps_lock;
static GPtrArray *all_maps;

/* ---- recording ends ----------------------------------------------------- */

static Outcome
classify (Entry        *e,
          const GError *error,
          gint64        value)
{
  guint seq = seq_of (e);
  char expected[96];

  if (error == NULL)
    {
      if (value != value_of (seq))
        {
          fail ("task %u (%s): succeeded with %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT,
                seq, kind_names[e->kind], value, value_of (seq));
          return OUT_BAD;
        }
      return OUT_OK;
    }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return OUT_CANCELLED;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return OUT_TIMED_OUT;
  if (error->domain == TEST_ERROR &&
      (error->code == PLAN_FAIL_ONCE || error->code == PLAN_ALWAYS_FAIL))
    {
      guint attempt = error->code == PLAN_FAIL_ONCE ? 1 : e->retries + 1u;

      /* The work's own error, unchanged, from its last attempt. */
      g_snprintf (expected, sizeof expected, "task %u failed on attempt %u", seq, attempt);
      if (strcmp (error->message, expected) == 0)
        return error->code == PLAN_FAIL_ONCE ? OUT_ERR_ONCE : OUT_ERR_ALWAYS;
    }

  fail ("task %u (%s, plan %s, retries %u): unexpected error %s %d “%s”",
        seq, kind_names[e->kind], plan_names[e->plan], e->retries,
        g_quark_to_string (error->domain), error->code, error->message);
  return OUT_BAD;
}

static void
record_end (Entry        *e,
            const GError *error,
            gint64        value)
{
  Outcome outcome = classify (e, error, value);

  if (g_atomic_int_add (&e->completions, 1) == 0)
    e->outcome = (guint8) outcome;
  g_atomic_int_inc (&progress);
}

static void
entry_destroy (gpointer data)
{
  Entry *e = data;

  g_atomic_int_inc (&e->destroyed);
  if (e->kind == KIND_ASYNC)
    {
      Submitter *s = &submitters[e->thread];

      /* Freed where the callback runs: on the submitter's own thread. */
      if (current_submitter != s)
        g_atomic_int_or (&e->wflags, WF_WRONG_DESTROY);
      g_atomic_int_inc (&s->async_destroyed);
    }
}

static void
count_run (DvtTask *task,
           Entry   *e)
{
  int run = g_atomic_int_add (&e->runs, 1) + 1;

  if ((guint) run != dvt_task_get_attempt (task))
    g_atomic_int_or (&e->wflags, WF_BAD_ATTEMPT);
}

static GError *
work_error (Entry *e,
            guint  attempt)
{
  return g_error_new (TEST_ERROR, e->plan, "task %u failed on attempt %u",
                      seq_of (e), attempt);
}

/* ---- the blocking work -------------------------------------------------- */

/* A few microseconds of work. */
static void
work_tail (void)
{
  gint64 end = g_get_monotonic_time () + 20;

  while (g_get_monotonic_time () < end)
    g_thread_yield ();
}

/* Work that takes longer than its timeout: runs until the runtime tells it
 * (its cancellable) that the task has ended. Without a cancellable it
 * watches the task itself, so that a missing cancellable is seen but does
 * not hold a worker for long. */
static gboolean
slow_should_stop (DvtTask      *task,
                  GCancellable *cancellable)
{
  if (cancellable != NULL)
    return g_cancellable_is_cancelled (cancellable);
  return dvt_task_get_completed (task);
}

static void
slow_thread_work (DvtTask      *task,
                  GCancellable *cancellable,
                  Entry        *e)
{
  gint64 end = g_get_monotonic_time () + (gint64) (SLOW_CAP * slow * G_USEC_PER_SEC);

  if (cancellable == NULL)
    g_atomic_int_or (&e->wflags, WF_NULL_CANCELLABLE);
  while (!slow_should_stop (task, cancellable))
    {
      if (g_get_monotonic_time () > end)
        {
          g_atomic_int_or (&e->wflags, WF_NEVER_ENDED);
          break;
        }
      g_usleep (100);
    }
}

static void
thread_work (DvtTask      *task,
             GCancellable *cancellable,
             gpointer      user_data,
             GError      **error)
{
  Entry *e = user_data;
  guint attempt = dvt_task_get_attempt (task);

  count_run (task, e);

  switch ((Plan) e->plan)
    {
    case PLAN_FAIL_ONCE:
      if (attempt > 1)
        break;
      G_GNUC_FALLTHROUGH;
    case PLAN_ALWAYS_FAIL:
      /* Both ways a thread function can fail. */
      if (seq_of (e) % 2)
        g_propagate_error (error, work_error (e, attempt));
      else
        dvt_task_return_error (task, work_error (e, attempt));
      return;

    case PLAN_SLOW:
      slow_thread_work (task, cancellable, e);
      break;  /* its late result is dropped */

    case PLAN_IGNORE_CANCEL:
      g_usleep (IGNORE_SLEEP_US);
      break;

    case PLAN_OK:
    case N_PLANS:
      break;
    }

  dvt_task_return_int (task, value_of (seq_of (e)));
  /* Some work goes on a little after completing its task (cleaning up):
   * the call must still not return before the function has. */
  if (seq_of (e) % 16 == 0)
    work_tail ();
}

/* ---- the async work ----------------------------------------------------- */

typedef enum
{
  DEFER_RESULT,   /* complete on the next iteration */
  DEFER_IGNORE,   /* complete a little later, whatever happened meanwhile */
  DEFER_SLOW,     /* complete once the task has been ended (timed out) */
} DeferMode;

typedef struct
{
  DvtTask      *task;
  GCancellable *cancellable;
  Entry        *entry;
  int          *counter;
  DeferMode     mode;
  GError       *error;     /* for DEFER_RESULT: fail with it */
  gint64        cap_end;
} Deferred;

static gboolean
deferred_fire (gpointer data)
{
  Deferred *d = data;

  if (d->mode == DEFER_SLOW && !slow_should_stop (d->task, d->cancellable))
    {
      if (g_get_monotonic_time () <= d->cap_end)
        return G_SOURCE_CONTINUE;
      g_atomic_int_or (&d->entry->wflags, WF_NEVER_ENDED);
    }

  if (d->error != NULL)
    dvt_task_return_error (d->task, g_steal_pointer (&d->error));
  else
    dvt_task_return_int (d->task, value_of (seq_of (d->entry)));

  return G_SOURCE_REMOVE;
}

static void
deferred_free (gpointer data)
{
  Deferred *d = data;

  g_clear_error (&d->error);
  g_clear_object (&d->cancellable);
  g_object_unref (d->task);
  g_atomic_int_add (d->counter, -1);
  g_free (d);
}

/* Keeps @task and completes it later from the current thread-default
 * context: the runtime's loop, or the submitter's own. */
static void
defer (DvtTask      *task,
       GCancellable *cancellable,
       Entry        *e,
       DeferMode     mode,
       GError       *error)
{
  Deferred *d = g_new0 (Deferred, 1);
  GMainContext *context = g_main_context_get_thread_default ();
  GSource *source;

  d->task = g_object_ref (task);
  d->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  d->entry = e;
  d->mode = mode;
  d->error = error;
  d->cap_end = g_get_monotonic_time () + (gint64) (SLOW_CAP * slow * G_USEC_PER_SEC);
  d->counter = current_submitter != NULL && context == current_submitter->context
                 ? &current_submitter->deferred : &loop_deferred;
  g_atomic_int_inc (d->counter);

  source = mode == DEFER_RESULT ? g_idle_source_new () : g_timeout_source_new (1);
  g_source_set_callback (source, deferred_fire, d, deferred_free);
  g_source_attach (source, context);
  g_source_unref (source);
}

static void
async_work (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  Entry *e = user_data;
  guint attempt = dvt_task_get_attempt (task);
  guint seq = seq_of (e);
  gboolean later = (mix64 (seq + attempt) & 3) == 0;

  count_run (task, e);

  switch ((Plan) e->plan)
    {
    case PLAN_FAIL_ONCE:
      if (attempt > 1)
        break;
      G_GNUC_FALLTHROUGH;
    case PLAN_ALWAYS_FAIL:
      if (later)
        defer (task, cancellable, e, DEFER_RESULT, work_error (e, attempt));
      else if (seq % 2)
        g_propagate_error (error, work_error (e, attempt));
      else
        dvt_task_return_error (task, work_error (e, attempt));
      return;

    case PLAN_SLOW:
      if (cancellable == NULL)
        g_atomic_int_or (&e->wflags, WF_NULL_CANCELLABLE);
      defer (task, cancellable, e, DEFER_SLOW, NULL);
      return;

    case PLAN_IGNORE_CANCEL:
      defer (task, cancellable, e, DEFER_IGNORE, NULL);
      return;

    case PLAN_OK:
    case N_PLANS:
      break;
    }

  if (later)
    defer (task, cancellable, e, DEFER_RESULT, NULL);
  else
    dvt_task_return_int (task, value_of (seq));
}

/* ---- map items ---------------------------------------------------------- */

static void
map_item_work (DvtTask      *task,
               GCancellable *cancellable,
               gpointer      user_data,
               GError      **error)
{
  MapData *md = user_data;
  guint index = dvt_task_get_index (task);
  Entry *e;
  guint attempt = dvt_task_get_attempt (task);

  if (index >= md->n)
    {
      fail ("map at %u: item index %u out of range %u", md->base, index, md->n);
      dvt_task_return_int (task, -1);
      return;
    }
  e = &entries[md->base + index];
  count_run (task, e);

  if (e->plan == PLAN_ALWAYS_FAIL || (e->plan == PLAN_FAIL_ONCE && attempt == 1))
    {
      g_propagate_error (error, work_error (e, attempt));
      return;
    }
  dvt_task_return_int (task, value_of (md->base + index));
  if (index % 16 == 0)
    work_tail ();
}

static void
map_data_destroy (gpointer data)
{
  MapData *md = data;

  g_atomic_int_inc (&md->destroyed);
}

/* ---- the canceller thread ----------------------------------------------- */

static gpointer
canceller_thread (gpointer data)
{
  GRand *rand = g_rand_new_with_seed ((guint32) seed ^ 0xc0ffee);

  for (;;)
    {
      gpointer item = g_async_queue_pop (cancel_queue);

      if (item == &cancel_stop_marker)
        break;
      if (g_rand_int_range (rand, 0, 8) == 0)
        g_usleep ((gulong) g_rand_int_range (rand, 0, 300));
      if (DVT_IS_TASK (item))
        dvt_task_cancel (item);
      else
        g_cancellable_cancel (item);
      g_object_unref (item);
    }
  g_rand_free (rand);

  return NULL;
}

static void
cancel_later (gpointer object)
{
  g_async_queue_push (cancel_queue, g_object_ref (object));
}

/* ---- the rate-limit switcher -------------------------------------------- */

static GMutex   throttle_lock;
static GCond    throttle_cond;
static gboolean throttle_stop;
static guint    throttle_phases;

/* Sleeps @usec unless told to stop; returns FALSE if told to stop. */
static gboolean
throttle_sleep (gint64 usec)
{
  gint64 end = g_get_monotonic_time () + usec;
  gboolean stop;

  g_mutex_lock (&throttle_lock);
  while (!throttle_stop && g_cond_wait_until (&throttle_cond, &throttle_lock, end))
    ;
  stop = throttle_stop;
  g_mutex_unlock (&throttle_lock);

  return !stop;
}

static gpointer
throttle_thread (gpointer data)
{
  /* Every 200 ms, 20 ms under a rate limit of 20 000 starts per second
   * (valgrind: 500), the first phase soon, so that short runs have one
   * too. */
  gint64 pause = 20000;
  double rate = is_valgrind () ? 500 : 20000;

  while (throttle_sleep (pause))
    {
      if (!dvt_runtime_set_rate_limit (rt, rate, 8, NULL))
        fail ("set_rate_limit refused %g/8", rate);
      throttle_phases++;
      throttle_sleep (20000);
      dvt_runtime_clear_rate_limit (rt);
      pause = 180000;
    }

  return NULL;
}

/* ---- the watchdog ------------------------------------------------------- */

static GMutex   watchdog_lock;
static GCond    watchdog_cond;
static gboolean watchdog_done;
static gint64   start_time;

static void
dump_unfinished (void)
{
  guint shown = 0;

  for (guint i = 0; i < n_tasks && shown < 30; i++)
    {
      Entry *e = &entries[i];
      char buf[512];

      if ((e->sflags & SF_SUBMITTED) && g_atomic_int_get (&e->completions) == 0)
        {
          describe (e, buf, sizeof buf);
          g_printerr ("  not ended: %s\n", buf);
          shown++;
        }
    }
}

static gpointer
watchdog_thread (gpointer data)
{
  int last = -1;
  gint64 last_change = g_get_monotonic_time ();
  gint64 last_report = last_change;

  g_mutex_lock (&watchdog_lock);
  while (!watchdog_done)
    {
      gint64 now;
      int p;

      g_cond_wait_until (&watchdog_cond, &watchdog_lock, g_get_monotonic_time () + G_USEC_PER_SEC);
      if (watchdog_done)
        break;
      now = g_get_monotonic_time ();
      p = g_atomic_int_get (&progress);
      if (p != last)
        {
          last = p;
          last_change = now;
        }
      if (now - last_report >= 30 * G_USEC_PER_SEC)
        {
          g_printerr ("# %.0f s: %d of %u tasks ended\n",
                      (double) (now - start_time) / G_USEC_PER_SEC, p, n_tasks);
          last_report = now;
        }
      if (now - last_change > (gint64) (HANG_SECONDS * slow * G_USEC_PER_SEC))
        {
          g_autoptr(DvtStats) stats = dvt_runtime_get_stats (rt);

          g_printerr ("soak: no task ended for %.0f s: a hang (%d of %u ended; runtime: "
                      "queued %" G_GUINT64_FORMAT " done %" G_GUINT64_FORMAT
                      " error %" G_GUINT64_FORMAT " cancelled %" G_GUINT64_FORMAT
                      " running %" G_GUINT64_FORMAT " pending %" G_GUINT64_FORMAT ")\n",
                      HANG_SECONDS * slow, p, n_tasks, stats->queued, stats->done,
                      stats->error, stats->cancelled, stats->running, stats->pending);
          dump_unfinished ();
          abort ();
        }
    }
  g_mutex_unlock (&watchdog_lock);

  return NULL;
}

/* ---- submitting --------------------------------------------------------- */

static DvtOptions *
options_for (Entry   *e,
             guint64  r,
             guint   *retries)
{
  guint choice = (guint) ((r >> 24) % N_RETRY_CHOICES);
  guint tmo = TMO_NONE;
  guint ucc = 0;

  if (e->plan == PLAN_SLOW)
    tmo = TMO_SHORT;
  else if ((r >> 32) % 10 == 0)
    tmo = TMO_LONG;
  if ((e->kind == KIND_SCHEDULE || e->kind == KIND_RUN_BLOCKING) && (r >> 36) % 5 == 0)
    ucc = 1;

  *retries = effective_retries (choice);
  if (tmo == TMO_SHORT)
    e->sflags |= SF_SHORT_TIMEOUT;
  else if (tmo == TMO_LONG)
    e->sflags |= SF_LONG_TIMEOUT;
  if (ucc)
    e->sflags |= SF_CALLER_CTX;

  return options_table[choice][tmo][ucc];
}

static void
finish_future (Submitter *s,
               Future    *f)
{
  Entry *e = f->entry;
  g_autoptr(GError) error = NULL;
  gint64 v;

  if (e->cancel == CANCEL_BEFORE)
    {
      e->sflags |= SF_CANCEL_ASKED;
      dvt_task_cancel (f->task);
    }

  /* Now and then a wait with a tiny deadline first. */
  if (g_rand_int_range (s->rand, 0, 16) == 0 && !dvt_task_wait (f->task, 1e-5, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        fail ("task %u: dvt_task_wait with a deadline failed with “%s”",
              seq_of (e), error->message);
      g_clear_error (&error);
    }

  if (!dvt_task_wait (f->task, 0, &error))
    {
      fail ("task %u: dvt_task_wait failed: %s", seq_of (e), error->message);
      g_clear_error (&error);
    }
  if (!dvt_task_get_completed (f->task))
    fail ("task %u: wait returned but the task has not completed", seq_of (e));

  v = dvt_task_propagate_int (f->task, &error);
  if ((error != NULL) != dvt_task_had_error (f->task))
    fail ("task %u: had_error disagrees with its result", seq_of (e));
  record_end (e, error, v);
  g_clear_object (&f->task);
}

static void
push_future (Submitter *s,
             DvtTask   *task,
             Entry     *e)
{
  Future *f;

  if (s->fut_len == FUTURE_WINDOW)
    {
      finish_future (s, &s->futures[s->fut_head]);
      s->fut_head = (s->fut_head + 1) % FUTURE_WINDOW;
      s->fut_len--;
    }
  f = &s->futures[(s->fut_head + s->fut_len) % FUTURE_WINDOW];
  f->task = task;
  f->entry = e;
  s->fut_len++;
}

static void
drain_futures (Submitter *s)
{
  while (s->fut_len > 0)
    {
      finish_future (s, &s->futures[s->fut_head]);
      s->fut_head = (s->fut_head + 1) % FUTURE_WINDOW;
      s->fut_len--;
    }
}

static void
async_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Entry *e = user_data;
  Submitter *s = &submitters[e->thread];
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  gint64 v = 0;

  if (current_submitter != s)
    fail ("task %u: callback on the wrong thread", seq_of (e));

  if (dvt_runtime_to_thread_finish (DVT_RUNTIME (source), result, &value, &error))
    {
      if (G_VALUE_HOLDS_INT64 (&value))
        v = g_value_get_int64 (&value);
      else
        fail ("task %u: succeeded with a %s value", seq_of (e), G_VALUE_TYPE_NAME (&value));
    }
  record_end (e, error, v);
  s->async_outstanding--;
}

static void
submit_one (Submitter *s,
            guint      seq,
            guint64    r)
{
  Entry *e = &entries[seq];
  DvtOptions *options;
  guint retries;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = NULL;

  e->plan = (guint8) pick_plan (r);
  e->kind = (guint8) pick_kind (r);
  e->cancel = (guint8) pick_cancel (r, e->plan);
  e->thread = (guint8) s->index;
  options = options_for (e, r, &retries);
  e->retries = (guint8) retries;
  e->sflags |= SF_SUBMITTED;

  switch ((Kind) e->kind)
    {
    case KIND_SUBMIT:
    case KIND_SCHEDULE:
      {
        DvtTask *task;

        if (e->kind == KIND_SUBMIT)
          task = dvt_runtime_submit (rt, thread_work, e, entry_destroy, options, NULL, &error);
        else
          task = dvt_runtime_schedule (rt, async_work, e, entry_destroy, options, NULL, &error);
        if (task == NULL)
          {
            fail ("task %u: %s refused: %s", seq, kind_names[e->kind], error->message);
            e->sflags &= ~SF_SUBMITTED;
            return;
          }
        s->calls++;
        if (e->cancel == CANCEL_AT_ONCE)
          {
            e->sflags |= SF_CANCEL_ASKED;
            dvt_task_cancel (task);
          }
        else if (e->cancel == CANCEL_LATER)
          {
            e->sflags |= SF_CANCEL_ASKED;
            cancel_later (task);
          }
        push_future (s, task, e);
      }
      break;

    case KIND_ASYNC:
      if (e->cancel != CANCEL_NONE)
        {
          cancellable = g_cancellable_new ();
          e->sflags |= SF_CANCEL_ASKED;
          if (e->cancel == CANCEL_BEFORE)
            g_cancellable_cancel (cancellable);
        }
      s->async_outstanding++;
      s->async_calls++;
      s->calls++;
      dvt_runtime_to_thread_async (rt, thread_work, e, entry_destroy, options, cancellable,
                                   async_done, e);
      if (e->cancel == CANCEL_AT_ONCE)
        g_cancellable_cancel (cancellable);
      else if (e->cancel == CANCEL_LATER)
        cancel_later (cancellable);
      break;

    case KIND_THREAD_BLOCKING:
    case KIND_RUN_BLOCKING:
      {
        g_auto(GValue) value = G_VALUE_INIT;
        gboolean ok;
        gint64 v = 0;

        /* Cancelled at once means: by another thread while this one waits. */
        if (e->cancel != CANCEL_NONE)
          {
            cancellable = g_cancellable_new ();
            e->sflags |= SF_CANCEL_ASKED;
            if (e->cancel == CANCEL_BEFORE)
              g_cancellable_cancel (cancellable);
            else
              cancel_later (cancellable);
          }
        s->calls++;
        if (e->kind == KIND_THREAD_BLOCKING)
          ok = dvt_runtime_to_thread_blocking (rt, thread_work, e, entry_destroy, options,
                                               cancellable, &value, &error);
        else
          ok = dvt_runtime_run_blocking (rt, async_work, e, entry_destroy, options,
                                         cancellable, &value, &error);
        if (ok)
          {
            if (G_VALUE_HOLDS_INT64 (&value))
              v = g_value_get_int64 (&value);
            else
              fail ("task %u: succeeded with a %s value", seq, G_VALUE_TYPE_NAME (&value));
          }
        /* Not released early: the data is freed before the call returns. */
        if ((error == NULL ||
             (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
              !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))) &&
            g_atomic_int_get (&e->destroyed) != 1)
          e->sflags |= SF_EARLY_DESTROY;
        record_end (e, error, v);
      }
      break;

    case KIND_MAP_ITEM:
    case N_KINDS:
      g_assert_not_reached ();
    }
}

/* Items @base .. @base + @n - 1 as one map_blocking call. */
static void
submit_map (Submitter *s,
            guint      base,
            guint      n)
{
  guint64 r = task_random (base, 7);
  MapData *md = g_new0 (MapData, 1);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) results = NULL;
  int retry_choice = (int) (r % 4) - 1;  /* -1 (runtime default) .. 2 */
  static const int concurrency[] = { -1, 1, 2, 8 };

  md->base = base;
  md->n = n;
  md->retries = retry_choice < 0 ? runtime_retries : (guint) retry_choice;
  md->return_errors = (r >> 8) % 4 != 0;
  md->should_fail = !md->return_errors && (r >> 12) % 3 == 0;
  if (md->should_fail)
    md->retries = 0;  /* which items ran is up to timing: keep retries countable */
  g_mutex_lock (&maps_lock);
  g_ptr_array_add (all_maps, md);
  g_mutex_unlock (&maps_lock);

  if (md->should_fail || retry_choice >= 0)
    {
      dvt_options_set_retries (options, (int) md->retries);
      dvt_options_set_retry_backoff (options, RETRY_BACKOFF);
    }
  dvt_options_set_return_errors (options, md->return_errors);
  dvt_options_set_max_concurrency (options, concurrency[(r >> 16) % 4]);
  if ((r >> 20) % 5 == 0)
    dvt_options_set_timeout (options, LONG_TIMEOUT * slow);

  for (guint i = 0; i < n; i++)
    {
      Entry *e = &entries[base + i];
      Plan plan = pick_plan (task_random (base + i, 0));

      if (plan == PLAN_SLOW || plan == PLAN_IGNORE_CANCEL)
        plan = PLAN_OK;
      /* A map that does not report item errors must succeed, unless it
       * is one meant to fail. */
      if (!md->return_errors && !md->should_fail &&
          (plan == PLAN_ALWAYS_FAIL || (plan == PLAN_FAIL_ONCE && md->retries == 0)))
        plan = PLAN_OK;
      e->plan = (guint8) plan;
      e->kind = KIND_MAP_ITEM;
      e->retries = (guint8) md->retries;
      e->thread = (guint8) s->index;
      e->sflags = SF_SUBMITTED;
    }
  if (md->should_fail)
    entries[base + (guint) ((r >> 24) % n)].plan = PLAN_ALWAYS_FAIL;

  s->calls++;
  s->maps++;
  results = dvt_runtime_map_blocking (rt, n, map_item_work, md, map_data_destroy, options,
                                      NULL, &error);
  /* Not cancelled: no item calls the function any more once it returns. */
  if (g_atomic_int_get (&md->destroyed) != 1)
    fail ("map at %u (%u items, retries %u%s, return-errors %d, %s): its data was freed "
          "%d times when map_blocking returned",
          base, n, md->retries, retry_choice < 0 && !md->should_fail ? " (default)" : "",
          md->return_errors, results != NULL ? "succeeded" : "failed",
          g_atomic_int_get (&md->destroyed));

  if (results == NULL)
    {
      guint failed_seq = G_MAXUINT, attempt = 0;

      md->failed = TRUE;
      s->maps_failed++;
      if (!md->should_fail)
        fail ("map at %u (%u items, return-errors %d): failed with “%s”",
              base, n, md->return_errors, error->message);
      /* The error of one of its failing items, unchanged. */
      else if (error->domain != TEST_ERROR ||
               sscanf (error->message, "task %u failed on attempt %u", &failed_seq, &attempt) != 2 ||
               failed_seq < base || failed_seq >= base + n || attempt != 1 ||
               (entries[failed_seq].plan != PLAN_ALWAYS_FAIL &&
                entries[failed_seq].plan != PLAN_FAIL_ONCE) ||
               error->code != entries[failed_seq].plan)
        fail ("map at %u: failed with an unexpected error %s %d “%s”",
              base, g_quark_to_string (error->domain), error->code, error->message);
      for (guint i = 0; i < n; i++)
        {
          Entry *e = &entries[base + i];

          e->sflags |= SF_FAILED_MAP;
          if (g_atomic_int_add (&e->completions, 1) == 0)
            e->outcome = OUT_MAP_FAILED;
          g_atomic_int_inc (&progress);
        }
      return;
    }

  if (md->should_fail)
    fail ("map at %u: should have failed but succeeded", base);
  if (results->len != n)
    {
      fail ("map at %u: %u results for %u items", base, results->len, n);
      return;
    }
  for (guint i = 0; i < n; i++)
    {
      GValue *slot = &g_array_index (results, GValue, i);
      Entry *e = &entries[base + i];

      if (G_VALUE_HOLDS (slot, G_TYPE_ERROR))
        record_end (e, g_value_get_boxed (slot), 0);
      else if (G_VALUE_HOLDS_INT64 (slot))
        record_end (e, NULL, g_value_get_int64 (slot));
      else
        {
          fail ("map at %u: item %u holds a %s", base, i,
                G_IS_VALUE (slot) ? G_VALUE_TYPE_NAME (slot) : "unset value");
          record_end (e, NULL, -1);
        }
    }
}

static gboolean
iterate_until_settled (Submitter *s,
                       double     seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * slow * G_USEC_PER_SEC);

  while (s->async_outstanding > 0 ||
         (guint) g_atomic_int_get (&s->async_destroyed) < s->async_calls ||
         g_atomic_int_get (&s->deferred) > 0)
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      if (!g_main_context_iteration (s->context, FALSE))
        g_usleep (200);
    }

  return TRUE;
}

static gpointer
submitter_thread (gpointer data)
{
  Submitter *s = data;
  guint end = s->first + s->n;

  current_submitter = s;
  g_main_context_push_thread_default (s->context);

  for (guint seq = s->first; seq < end;)
    {
      guint64 r = task_random (seq, 0);

      if (task_random (seq, 1) % MAP_ONE_IN == 0)
        {
          guint size = 16 + (guint) ((r >> 48) % 241);

          size = MIN (size, end - seq);
          submit_map (s, seq, size);
          seq += size;
        }
      else
        submit_one (s, seq++, r);

      if ((seq & 15) == 0)
        g_main_context_iteration (s->context, FALSE);
      while (s->async_outstanding >= ASYNC_WINDOW)
        g_main_context_iteration (s->context, TRUE);
    }

  drain_futures (s);
  if (!iterate_until_settled (s, 120))
    fail ("thread %u: %d async callbacks never ran, %d of %u async data freed, "
          "%d deferred completions left", s->index, s->async_outstanding,
          g_atomic_int_get (&s->async_destroyed), s->async_calls,
          g_atomic_int_get (&s->deferred));

  g_main_context_pop_thread_default (s->context);
  current_submitter = NULL;

  return NULL;
}

/* ---- checks ------------------------------------------------------------- */

typedef struct
{
  guint64 ended[N_OUTCOMES];
  guint64 runs;          /* function calls of tasks (map items apart) */
  guint64 retries_min;   /* retried attempts, at least... */
  guint64 retries_max;   /* ...and at most (a cancel may land in a back-off) */
  guint64 plans[N_PLANS];
  guint64 kinds[N_KINDS];
  guint64 cancel_asked;
  guint64 null_cancellable[N_KINDS];
} Totals;

static guint
max_attempts (Entry *e)
{
  switch ((Plan) e->plan)
    {
    case PLAN_FAIL_ONCE:
      return MIN (2u, e->retries + 1u);
    case PLAN_ALWAYS_FAIL:
      return e->retries + 1u;
    default:
      return 1;
    }
}

/* Whether attempt @n of @e fails. */
static gboolean
attempt_fails (Entry *e,
               guint  n)
{
  return e->plan == PLAN_ALWAYS_FAIL || (e->plan == PLAN_FAIL_ONCE && n == 1);
}

static Outcome
natural_outcome (Entry *e)
{
  switch ((Plan) e->plan)
    {
    case PLAN_FAIL_ONCE:
      return e->retries >= 1 ? OUT_OK : OUT_ERR_ONCE;
    case PLAN_ALWAYS_FAIL:
      return OUT_ERR_ALWAYS;
    case PLAN_SLOW:
      return OUT_TIMED_OUT;
    default:
      return OUT_OK;
    }
}

static void
check_entry (Entry  *e,
             Totals *t)
{
  char buf[512];
  int runs = g_atomic_int_get (&e->runs);
  int wflags = g_atomic_int_get (&e->wflags);
  Outcome natural = natural_outcome (e);
  Outcome outcome = (Outcome) e->outcome;
  gboolean ok = TRUE;
  guint expected_runs = 0;
  gboolean exact_runs = TRUE;

  if (!(e->sflags & SF_SUBMITTED))
    return;

  t->plans[e->plan]++;
  t->kinds[e->kind]++;
  if (e->sflags & SF_CANCEL_ASKED)
    t->cancel_asked++;

  if (g_atomic_int_get (&e->completions) != 1)
    ok = FALSE;
  if (e->kind != KIND_MAP_ITEM && g_atomic_int_get (&e->destroyed) != 1)
    ok = FALSE;

  /* The outcome its plan gives; or cancelled, if it was cancelled before
   * it finished; or the failure of its whole map. */
  if (outcome != natural &&
      !(outcome == OUT_CANCELLED && (e->sflags & SF_CANCEL_ASKED)) &&
      !(outcome == OUT_MAP_FAILED && (e->sflags & SF_FAILED_MAP)))
    ok = FALSE;

  switch (outcome)
    {
    case OUT_OK:
      expected_runs = e->plan == PLAN_FAIL_ONCE ? 2 : 1;
      break;
    case OUT_ERR_ONCE:
      expected_runs = 1;
      break;
    case OUT_ERR_ALWAYS:
      expected_runs = e->retries + 1u;
      break;
    default:
      exact_runs = FALSE;
      break;
    }
  if (exact_runs ? (guint) runs != expected_runs : (guint) runs > max_attempts (e))
    ok = FALSE;
  if (outcome == OUT_TIMED_OUT && runs > 1)
    ok = FALSE;

  if (wflags & (WF_BAD_ATTEMPT | WF_WRONG_DESTROY | WF_NEVER_ENDED))
    ok = FALSE;
  if (e->sflags & SF_EARLY_DESTROY)
    ok = FALSE;

  if (!ok)
    {
      describe (e, buf, sizeof buf);
      fail ("%s", buf);
    }

  if (wflags & WF_NULL_CANCELLABLE)
    t->null_cancellable[e->kind]++;

  t->ended[outcome]++;
  if (e->kind != KIND_MAP_ITEM)
    t->runs += (guint) runs;

  /* Retries: every run after the first followed a retried failure; a
   * failed last run may also have been retried if a cancel then ended
   * the task during its back-off. */
  if (runs > 0)
    {
      t->retries_min += (guint) runs - 1;
      t->retries_max += (guint) runs - 1;
      if (outcome == OUT_CANCELLED && (guint) runs <= e->retries &&
          attempt_fails (e, (guint) runs))
        t->retries_max++;
    }
}

static void
check_stats (Totals *t,
             guint   calls,
             guint   maps,
             guint   maps_failed)
{
  g_autoptr(DvtStats) s = dvt_runtime_get_stats (rt);
  guint64 tasks_done = t->ended[OUT_OK];
  guint64 done, error, cancelled;

  /* Map items count only through their map. */
  {
    guint64 items_ok = 0, items_err = 0;

    for (guint i = 0; i < n_tasks; i++)
      if (entries[i].kind == KIND_MAP_ITEM && (entries[i].sflags & SF_SUBMITTED))
        {
          if (entries[i].outcome == OUT_OK)
            items_ok++;
          else if (entries[i].outcome == OUT_ERR_ONCE || entries[i].outcome == OUT_ERR_ALWAYS)
            items_err++;
        }
    tasks_done -= items_ok;
    done = tasks_done + (maps - maps_failed);
    error = t->ended[OUT_ERR_ONCE] + t->ended[OUT_ERR_ALWAYS] - items_err +
            t->ended[OUT_TIMED_OUT] + maps_failed;
    cancelled = t->ended[OUT_CANCELLED];
  }

  printf ("runtime stats: queued %" G_GUINT64_FORMAT " started %" G_GUINT64_FORMAT
          " done %" G_GUINT64_FORMAT " error %" G_GUINT64_FORMAT
          " cancelled %" G_GUINT64_FORMAT " retries %" G_GUINT64_FORMAT
          " throttled %" G_GUINT64_FORMAT " timed_out %" G_GUINT64_FORMAT
          " running %" G_GUINT64_FORMAT " pending %" G_GUINT64_FORMAT "\n",
          s->queued, s->started, s->done, s->error, s->cancelled, s->retries,
          s->throttled, s->timed_out, s->running, s->pending);

#define CHECK_STAT(cond, ...) G_STMT_START { if (!(cond)) fail (__VA_ARGS__); } G_STMT_END
  CHECK_STAT (s->queued == s->done + s->error + s->cancelled,
              "stats: queued %" G_GUINT64_FORMAT " != done + error + cancelled %" G_GUINT64_FORMAT,
              s->queued, s->done + s->error + s->cancelled);
  CHECK_STAT (s->running == 0, "stats: running %" G_GUINT64_FORMAT " after shutdown", s->running);
  CHECK_STAT (s->pending == 0, "stats: pending %" G_GUINT64_FORMAT " after shutdown", s->pending);
  CHECK_STAT (s->queued == calls, "stats: queued %" G_GUINT64_FORMAT ", %u calls were accepted",
              s->queued, calls);
  CHECK_STAT (s->done == done, "stats: done %" G_GUINT64_FORMAT ", callers saw %" G_GUINT64_FORMAT,
              s->done, done);
  CHECK_STAT (s->error == error, "stats: error %" G_GUINT64_FORMAT ", callers saw %" G_GUINT64_FORMAT,
              s->error, error);
  CHECK_STAT (s->cancelled == cancelled,
              "stats: cancelled %" G_GUINT64_FORMAT ", callers saw %" G_GUINT64_FORMAT,
              s->cancelled, cancelled);
  CHECK_STAT (s->timed_out == t->ended[OUT_TIMED_OUT],
              "stats: timed_out %" G_GUINT64_FORMAT ", callers saw %" G_GUINT64_FORMAT,
              s->timed_out, t->ended[OUT_TIMED_OUT]);
  CHECK_STAT (s->timed_out <= s->error, "stats: timed_out %" G_GUINT64_FORMAT " > error %"
              G_GUINT64_FORMAT, s->timed_out, s->error);
  /* Each map starts once; its items are not counted. */
  CHECK_STAT (s->started == t->runs + maps,
              "stats: started %" G_GUINT64_FORMAT ", work functions ran %" G_GUINT64_FORMAT
              " times and %u maps started", s->started, t->runs, maps);
  CHECK_STAT (s->retries >= t->retries_min && s->retries <= t->retries_max,
              "stats: retries %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT
              "..%" G_GUINT64_FORMAT, s->retries, t->retries_min, t->retries_max);
  CHECK_STAT (s->throttled <= s->started + s->cancelled + s->timed_out,
              "stats: throttled %" G_GUINT64_FORMAT " > started + cancelled + timed out",
              s->throttled);
#undef CHECK_STAT
}

/* ---- main --------------------------------------------------------------- */

int
main (int argc, char *argv[])
{
  int tasks_arg = -1, threads_arg = -1;
  gint64 seed_arg = -1;
  GOptionEntry option_entries[] = {
    { "tasks", 'n', 0, G_OPTION_ARG_INT, &tasks_arg, "Tasks to push through (default 20000)", "N" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads_arg, "Submitting threads (default 4)", "T" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed_arg, "Seed of the plans (default: random)", "S" },
    { "no-rate-limit", 0, 0, G_OPTION_ARG_NONE, &no_rate_limit, "Never switch a rate limit on", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Say more", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) option_context = g_option_context_new ("- Dovetail soak test");
  g_autoptr(GError) error = NULL;
  GThread *canceller, *watchdog, *throttler = NULL;
  guint calls = 0, maps = 0, maps_failed = 0;
  Totals totals = { { 0 } };
  double elapsed;
  guint64 null_cancellable = 0;

  g_option_context_add_main_entries (option_context, option_entries, NULL);
  if (!g_option_context_parse (option_context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (tasks_arg >= 0)
    n_tasks = (guint) tasks_arg;
  if (threads_arg > 0)
    n_threads = MIN ((guint) threads_arg, MAX_THREADS);
  seed = seed_arg >= 0 ? (guint64) seed_arg : (guint64) g_random_int ();
  if (is_valgrind ())
    slow = 10.0;

  printf ("soak: %u tasks, %u submitting threads, seed %" G_GUINT64_FORMAT "%s\n",
          n_tasks, n_threads, seed, is_valgrind () ? " (valgrind)" : "");
  fflush (stdout);

  entries = g_new0 (Entry, n_tasks);
  all_maps = g_ptr_array_new_with_free_func (g_free);
  cancel_queue = g_async_queue_new ();

  rt = g_object_new (DVT_TYPE_RUNTIME,
                     "max-workers", 4,
                     "name", "soak",
                     "retries", runtime_retries,
                     "retry-backoff", RETRY_BACKOFF,
                     "retry-max-delay", RETRY_MAX_DELAY,
                     "retry-jitter", 0.5,
                     NULL);
  make_options ();

  start_time = g_get_monotonic_time ();
  watchdog = g_thread_new ("soak-watchdog", watchdog_thread, NULL);
  canceller = g_thread_new ("soak-cancel", canceller_thread, NULL);
  if (!no_rate_limit)
    throttler = g_thread_new ("soak-throttle", throttle_thread, NULL);

  for (guint t = 0; t < n_threads; t++)
    {
      Submitter *s = &submitters[t];
      guint share = n_tasks / n_threads;

      s->index = t;
      s->first = t * share;
      s->n = t == n_threads - 1 ? n_tasks - s->first : share;
      s->context = g_main_context_new ();
      s->rand = g_rand_new_with_seed ((guint32) (seed + t));
      s->thread = g_thread_new ("soak-submit", submitter_thread, s);
    }
  for (guint t = 0; t < n_threads; t++)
    {
      Submitter *s = &submitters[t];

      g_thread_join (s->thread);
      calls += s->calls;
      maps += s->maps;
      maps_failed += s->maps_failed;
    }

  if (throttler != NULL)
    {
      g_mutex_lock (&throttle_lock);
      throttle_stop = TRUE;
      g_cond_signal (&throttle_cond);
      g_mutex_unlock (&throttle_lock);
      g_thread_join (throttler);
    }
  g_async_queue_push (cancel_queue, &cancel_stop_marker);
  g_thread_join (canceller);

  /* Async work still completing tasks that have ended (late results)
   * needs the loop: let it finish before the loop stops. */
  if (!POLL_UNTIL (g_atomic_int_get (&loop_deferred) == 0, 60))
    fail ("%d deferred completions never ran on the loop thread",
          g_atomic_int_get (&loop_deferred));

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  elapsed = (double) (g_get_monotonic_time () - start_time) / G_USEC_PER_SEC;

  g_mutex_lock (&watchdog_lock);
  watchdog_done = TRUE;
  g_cond_signal (&watchdog_cond);
  g_mutex_unlock (&watchdog_lock);
  g_thread_join (watchdog);

  for (guint i = 0; i < n_tasks; i++)
    check_entry (&entries[i], &totals);
  check_stats (&totals, calls, maps, maps_failed);

  for (guint k = 0; k < N_KINDS; k++)
    null_cancellable += totals.null_cancellable[k];
  if (null_cancellable > 0)
    fail ("%" G_GUINT64_FORMAT " work functions under a timeout got no cancellable, so "
          "could not learn that their task timed out (submit %" G_GUINT64_FORMAT
          ", to-thread-async %" G_GUINT64_FORMAT ", to-thread-blocking %" G_GUINT64_FORMAT
          ", schedule %" G_GUINT64_FORMAT ", run-blocking %" G_GUINT64_FORMAT ")",
          null_cancellable, totals.null_cancellable[KIND_SUBMIT],
          totals.null_cancellable[KIND_ASYNC], totals.null_cancellable[KIND_THREAD_BLOCKING],
          totals.null_cancellable[KIND_SCHEDULE], totals.null_cancellable[KIND_RUN_BLOCKING]);

  /* Every map's data was freed once; nothing is freed after the end. */
  g_object_unref (rt);
  for (guint i = 0; i < all_maps->len; i++)
    {
      MapData *md = g_ptr_array_index (all_maps, i);

      if (g_atomic_int_get (&md->destroyed) != 1)
        fail ("map at %u: data freed %d times", md->base, g_atomic_int_get (&md->destroyed));
    }
  for (guint i = 0; i < n_tasks; i++)
    if ((entries[i].sflags & SF_SUBMITTED) && entries[i].kind != KIND_MAP_ITEM &&
        g_atomic_int_get (&entries[i].destroyed) != 1)
      {
        char buf[512];

        describe (&entries[i], buf, sizeof buf);
        fail ("after the runtime was freed: %s", buf);
        break;
      }

  if (verbose)
    {
      printf ("plans:");
      for (guint p = 0; p < N_PLANS; p++)
        printf (" %s %" G_GUINT64_FORMAT, plan_names[p], totals.plans[p]);
      printf ("\nkinds:");
      for (guint k = 0; k < N_KINDS; k++)
        printf (" %s %" G_GUINT64_FORMAT, kind_names[k], totals.kinds[k]);
      printf ("\ncancel requested %" G_GUINT64_FORMAT ", rate-limit phases %u\n",
              totals.cancel_asked, throttle_phases);
    }

  printf ("soak: %u tasks (%u calls, %u maps of which %u failed) in %.2f s: "
          "ok %" G_GUINT64_FORMAT ", work errors %" G_GUINT64_FORMAT
          ", timed out %" G_GUINT64_FORMAT ", cancelled %" G_GUINT64_FORMAT
          ", in failed maps %" G_GUINT64_FORMAT "; retries %" G_GUINT64_FORMAT
          "..%" G_GUINT64_FORMAT "; %u failures\n",
          n_tasks, calls, maps, maps_failed, elapsed,
          totals.ended[OUT_OK], totals.ended[OUT_ERR_ONCE] + totals.ended[OUT_ERR_ALWAYS],
          totals.ended[OUT_TIMED_OUT], totals.ended[OUT_CANCELLED],
          totals.ended[OUT_MAP_FAILED], totals.retries_min, totals.retries_max, n_failures);

  for (guint t = 0; t < n_threads; t++)
    {
      g_main_context_unref (submitters[t].context);
      g_rand_free (submitters[t].rand);
    }
  free_options ();
  g_ptr_array_unref (all_maps);
  g_async_queue_unref (cancel_queue);
  g_free (entries);

  return n_failures == 0 ? 0 : 1;
}
