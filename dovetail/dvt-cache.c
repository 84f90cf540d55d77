/* dvt-cache.c: single flight and memoisation of a function of a key
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "dvt-cache.h"
#include "dvt-enums.h"
#include "dvt-error-private.h"
#include "dvt-options.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"

/**
 * DvtCache:
 *
 * Single flight and memoisation: the value of a function of a key,
 * computed once by a task of a [class@Runtime] however many callers ask
 * for it at once, and kept for a while.
 *
 * A cache is made with a [callback@CacheFunc] that computes the value of
 * a #GVariant key. Callers ask for a key with [method@Cache.get] (a
 * [class@Task] of their own), [method@Cache.get_blocking] or
 * [method@Cache.get_async]:
 *
 * - **Single flight.** Callers that ask for a key while it is being
 *   computed wait for that run: one run per key at a time, whichever
 *   threads and main loops they call from.
 * - **Each caller's own wait.** Every caller gets its own task (or its own
 *   callback). Cancelling it, or a timeout of its wait, ends that caller's
 *   wait only; the run goes on for the others. When the *last* waiter of a
 *   run leaves, the run is cancelled (its cancellable is cancelled, and
 *   the key is free for a new run).
 * - **Memoisation.** A value is kept for [property@Cache:ttl] seconds (by
 *   default until it is evicted or invalidated; 0 keeps nothing, for
 *   single flight only), for at most [property@Cache:max-size] keys, the
 *   least recently used going first. Failures are not kept, unless
 *   [property@Cache:evict-on-error] is unset; cancellations and
 *   %DVT_ERROR_CLOSED never are.
 * - **Invalidation.** [method@Cache.invalidate] and [method@Cache.clear]
 *   drop stored values, and a run in flight for such a key does not store
 *   its result (its waiters still get it); the next caller starts a new
 *   run.
 *
 * A run is a task of the cache's runtime, with the cache's
 * [property@Cache:options] (a timeout, retries, a name...): by default the
 * function is blocking and runs on a worker; with
 * %DVT_CACHE_FLAGS_ASYNC_WORK it starts asynchronous work on a main
 * context. Values are copied for each caller. Expired values leave on a
 * timer on the runtime's loop thread: no thread sleeps.
 *
 * Keys are compared by value ([method@GLib.Variant.equal]); a cache made
 * with a [property@Cache:key-type] refuses keys of any other type with
 * %DVT_ERROR_INVALID_ARGUMENT.
 *
 * Every call is safe from any thread. The callbacks of
 * [method@Cache.get_async] run on the caller's thread-default main context.
 * Once the runtime has been shut down, the `get` calls fail with
 * %DVT_ERROR_CLOSED; a shutdown that cancels pending work ends every wait
 * with %G_IO_ERROR_CANCELLED, one that drains lets the runs end.
 *
 * ```c
 * static void
 * fetch (DvtTask *task, GVariant *key, GCancellable *cancellable,
 *        gpointer user_data, GError **error)
 * {
 *   g_auto(GValue) body = G_VALUE_INIT;
 *   char *text = download (g_variant_get_string (key, NULL), cancellable, error);
 *
 *   if (text == NULL)
 *     return;                    // the error fails the run
 *   g_value_init (&body, G_TYPE_STRING);
 *   g_value_take_string (&body, text);
 *   dvt_task_return_value (task, &body);
 * }
 *
 * g_autoptr(DvtCache) cache = dvt_cache_new (runtime, fetch, NULL, NULL);
 * dvt_cache_set_ttl (cache, 60, NULL);
 *
 * // From any thread; concurrent callers of one URL share one download.
 * if (dvt_cache_get_blocking (cache, g_variant_new_string (url), 0, NULL,
 *                             &body, &error))
 *   g_print ("%s\n", g_value_get_string (&body));
 * ```
 *
 * Since: 0.2
 */

/* What a run ended with, shared by its waiters and the stored entry. */
typedef struct
{
  int             ref_count;  /* atomic; g_atomic_ref_count_*() are calls */
  GValue          value;      /* a %NULL pointer value: none */
  GError         *error;
} CacheResult;

/* A key, in normal form, and its bytes: equal values have equal bytes.
 * Hashing and comparing them here reads each value's bytes once, where
 * g_variant_hash() and g_variant_equal() take the values' locks five
 * times per lookup. */
typedef struct
{
  GVariant     *value;   /* held */
  const char   *type;
  const guchar *data;
  gsize         size;
  guint         hash;
} Key;

/* A stored result. */
typedef struct _Entry Entry;
struct _Entry
{
  Key          key;
  CacheResult *result;
  gint64       stored_at;   /* monotonic µs */
  GList        lru_link;    /* in lru: the least recently used first */
  GList        age_link;    /* in by_age: the oldest first */
  Entry       *next_free;   /* on a list to free outside the lock */
};

/* A run and the callers waiting for it. */
typedef struct
{
  gatomicrefcount ref_count;
  DvtCache   *cache;       /* held */
  Key         key;
  /* Under the cache's lock: */
  DvtTask    *run;         /* held, from its start to its end */
  GPtrArray  *waiters;     /* the callers' tasks, held; NULL once ended */
  gboolean    attached;    /* in the cache's flights: its result is stored */
  gboolean    abandoned;   /* its last waiter left */
} Flight;

struct _DvtCache
{
  GObject         parent_instance;

  /* Set at construction. */
  DvtRuntime     *runtime;
  GVariantType   *key_type;
  DvtCacheFlags   flags;
  DvtCacheFunc    func;
  gpointer        func_data;
  GDestroyNotify  func_data_destroy;
  GSource        *purge;     /* on the runtime's context */

  GMutex          lock;
  /* Under the lock: */
  DvtOptions     *options;   /* a copy, never changed; or NULL */
  gboolean        wait_on_caller_context;
  double          ttl;
  gint64          ttl_us;    /* -1: forever */
  guint           max_size;  /* 0: no limit */
  gboolean        evict_on_error;
  GHashTable     *entries;   /* key → Entry */
  GQueue          lru;
  GQueue          by_age;
  GHashTable     *flights;   /* key → Flight, held */
  guint64         hits;
  guint64         misses;
  guint64         runs;
};

enum {
  PROP_0,
  PROP_RUNTIME,
  PROP_KEY_TYPE,
  PROP_FLAGS,
  PROP_TTL,
  PROP_MAX_SIZE,
  PROP_EVICT_ON_ERROR,
  PROP_OPTIONS,
  PROP_N_ENTRIES,
  PROP_HITS,
  PROP_MISSES,
  PROP_RUNS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtCache, dvt_cache, G_TYPE_OBJECT)

/* A TTL too long for the clock keeps values for good, as a wait limit
 * that long is none (see dvt_task_wait()). */
#define TTL_FOREVER_FROM ((double) (G_MAXINT64 / 4) / G_USEC_PER_SEC)

/* ---- results ------------------------------------------------------------- */

static CacheResult *
result_new (void)
{
  CacheResult *result = g_new0 (CacheResult, 1);

  result->ref_count = 1;

  return result;
}

static CacheResult *
result_new_error (GError *error)
{
  CacheResult *result = result_new ();

  result->error = error;

  return result;
}

static CacheResult *
result_ref (CacheResult *result)
{
  g_atomic_int_inc (&result->ref_count);

  return result;
}

static void
result_unref (CacheResult *result)
{
  if (!g_atomic_int_dec_and_test (&result->ref_count))
    return;

  if (G_IS_VALUE (&result->value))
    g_value_unset (&result->value);
  g_clear_error (&result->error);
  g_free (result);
}

/* The result of @run, which has ended. A pointer result stays with the
 * task, which frees it: a cache cannot copy it for each caller. */
static CacheResult *
result_new_from_run (DvtTask *run)
{
  const GValue *held = &run->result.value;
  CacheResult *result = result_new ();

  if (!dvt_task_had_error (run) && G_VALUE_HOLDS_POINTER (held) &&
      g_value_get_pointer (held) != NULL)
    {
      result->error = g_error_new_literal (DVT_ERROR, DVT_ERROR_FAILED,
                                           _("A cache function completed its task with a "
                                             "pointer, which a cache cannot copy for each "
                                             "caller; complete it with a value instead"));
      return result;
    }

  if (!dvt_task_propagate_value (run, &result->value, &result->error))
    g_value_unset (&result->value);

  return result;
}

/* Completes @task, a caller's, with @result. */
static void
result_return (CacheResult *result,
               DvtTask     *task)
{
  if (result->error != NULL)
    dvt_task_return_error (task, g_error_copy (result->error));
  else
    dvt_task_return_value (task, &result->value);
}

/* Gives @result to a caller, as dvt_task_propagate_value() does: a
 * failure leaves a %NULL pointer value, which bindings can convert. */
static gboolean
result_propagate (CacheResult  *result,
                  GValue       *value,
                  GError      **error)
{
  if (result->error != NULL)
    {
      g_propagate_error (error, g_error_copy (result->error));
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  if (value != NULL)
    {
      g_value_init (value, G_VALUE_TYPE (&result->value));
      g_value_copy (&result->value, value);
    }

  return TRUE;
}

/* ---- keys ------------------------------------------------------------------ */

static guint
key_hash (gconstpointer data)
{
  return ((const Key *) data)->hash;
}

static gboolean
key_equal (gconstpointer a,
           gconstpointer b)
{
  const Key *x = a, *y = b;

  return x->hash == y->hash && x->size == y->size &&
         (x->type == y->type || strcmp (x->type, y->type) == 0) &&
         (x->size == 0 || memcmp (x->data, y->data, x->size) == 0);
}

static void
key_clear (Key *key)
{
  g_clear_pointer (&key->value, g_variant_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Key, key_clear)

static void
key_copy (Key       *dest,
          const Key *src)
{
  *dest = *src;
  g_variant_ref (dest->value);
}

/* Fills @key for @value (which it sinks if floating) and returns TRUE; or
 * FALSE with @error set if the cache takes keys of another type. */
static gboolean
take_key (DvtCache  *self,
          GVariant  *value,
          Key       *key,
          GError   **error)
{
  /* g_variant_ref_sink() takes the value's lock even when it is not
   * floating: a plain reference is cheaper on the hit path. */
  g_autoptr(GVariant) held = g_variant_is_floating (value) ? g_variant_ref_sink (value)
                                                           : g_variant_ref (value);
  guint hash;

  if (self->key_type != NULL && !g_variant_is_of_type (held, self->key_type))
    {
      g_autofree char *text = g_variant_print (held, FALSE);
      g_autofree char *wanted = g_variant_type_dup_string (self->key_type);

      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   _("The key %s is of type “%s”, but this cache takes keys "
                     "of type “%s”"),
                   text, g_variant_get_type_string (held), wanted);
      return FALSE;
    }

  /* A value made by g_variant_new() is in normal form, and a check is
   * remembered: only values from untrusted bytes are copied. */
  if (!g_variant_is_normal_form (held))
    {
      GVariant *normal = g_variant_get_normal_form (held);

      g_variant_unref (held);
      held = normal;
    }

  key->type = g_variant_get_type_string (held);
  key->size = g_variant_get_size (held);
  key->data = g_variant_get_data (held);
  hash = g_str_hash (key->type);
  for (gsize i = 0; i < key->size; i++)
    hash = (hash << 5) + hash + key->data[i];
  key->hash = hash;
  key->value = g_steal_pointer (&held);

  return TRUE;
}

/* Whether the `get` calls can answer: the cache was made with a function
 * and its runtime accepts work. */
static gboolean
check_open (DvtCache  *self,
            GError   **error)
{
  if (self->runtime == NULL || self->func == NULL)
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                           _("This cache has no runtime or no function: make "
                             "it with dvt_cache_new()"));
      return FALSE;
    }

  if (dvt_runtime_is_shutdown (self->runtime))
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The runtime has been shut down and accepts no "
                             "more work"));
      return FALSE;
    }

  return TRUE;
}

/* ---- entries ---------------------------------------------------------------
 *
 * Stored results, in a hash table and on two lists: lru for eviction
 * (a hit moves its entry to the end) and by_age for expiry (every entry
 * lives for the same TTL, so the oldest goes first). An entry that leaves
 * goes on a list of its own, freed once the lock is released: freeing a
 * value may run the application's code. */

static void
free_entries (Entry *garbage)
{
  while (garbage != NULL)
    {
      Entry *next = garbage->next_free;

      key_clear (&garbage->key);
      result_unref (garbage->result);
      g_free (garbage);
      garbage = next;
    }
}

static void
remove_entry_locked (DvtCache  *self,
                     Entry     *entry,
                     Entry    **garbage)
{
  g_hash_table_remove (self->entries, &entry->key);
  g_queue_unlink (&self->lru, &entry->lru_link);
  g_queue_unlink (&self->by_age, &entry->age_link);
  entry->next_free = *garbage;
  *garbage = entry;
}

static gboolean
entry_expired_locked (DvtCache *self,
                      Entry    *entry,
                      gint64    now)
{
  return self->ttl_us >= 0 && now - entry->stored_at >= self->ttl_us;
}

/* Arms the expiry timer for the oldest entry, or disarms it. It may fire
 * early (the oldest left meanwhile): then it finds nothing to do yet. */
static void
arm_purge_locked (DvtCache *self)
{
  Entry *oldest = self->by_age.head != NULL ? self->by_age.head->data : NULL;

  if (self->purge == NULL)
    return;

  g_source_set_ready_time (self->purge,
                           oldest != NULL && self->ttl_us >= 0
                             ? oldest->stored_at + self->ttl_us
                             : -1);
}

/* Removes the entries that have expired by @now. */
static void
remove_expired_locked (DvtCache  *self,
                       gint64     now,
                       Entry    **garbage)
{
  while (self->by_age.head != NULL &&
         entry_expired_locked (self, self->by_age.head->data, now))
    remove_entry_locked (self, self->by_age.head->data, garbage);
}

/* Evicts the least recently used entries beyond max-size. */
static void
evict_locked (DvtCache  *self,
              Entry    **garbage)
{
  while (self->max_size != 0 && g_hash_table_size (self->entries) > self->max_size)
    remove_entry_locked (self, self->lru.head->data, garbage);
}

/* The fresh result stored for @key, held, or %NULL (an expired one is
 * removed). A hit makes its entry the most recently used. */
static CacheResult *
lookup_locked (DvtCache  *self,
               const Key *key,
               Entry    **garbage)
{
  Entry *entry = g_hash_table_lookup (self->entries, key);

  if (entry == NULL)
    return NULL;

  if (self->ttl_us >= 0 && entry_expired_locked (self, entry, g_get_monotonic_time ()))
    {
      remove_entry_locked (self, entry, garbage);
      return NULL;
    }

  if (self->lru.tail != &entry->lru_link)
    {
      g_queue_unlink (&self->lru, &entry->lru_link);
      g_queue_push_tail_link (&self->lru, &entry->lru_link);
    }

  return result_ref (entry->result);
}

/* Whether @result is kept: a value while the TTL is not 0, a failure of
 * the work only when evict-on-error is unset. A cancelled run, or one
 * that the shutdown refused, says nothing about its key. */
static gboolean
is_kept_locked (DvtCache    *self,
                CacheResult *result)
{
  if (self->ttl_us == 0)
    return FALSE;
  if (result->error == NULL)
    return TRUE;

  return !self->evict_on_error &&
         !g_error_matches (result->error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
         !g_error_matches (result->error, DVT_ERROR, DVT_ERROR_CLOSED);
}

static void
store_locked (DvtCache     *self,
              const Key    *key,
              CacheResult  *result,
              Entry       **garbage)
{
  Entry *entry = g_hash_table_lookup (self->entries, key);

  if (entry != NULL)
    remove_entry_locked (self, entry, garbage);

  entry = g_new0 (Entry, 1);
  key_copy (&entry->key, key);
  entry->result = result_ref (result);
  entry->stored_at = g_get_monotonic_time ();
  entry->lru_link.data = entry;
  entry->age_link.data = entry;
  g_hash_table_insert (self->entries, &entry->key, entry);
  g_queue_push_tail_link (&self->lru, &entry->lru_link);
  g_queue_push_tail_link (&self->by_age, &entry->age_link);

  evict_locked (self, garbage);
  if (self->by_age.head == &entry->age_link)
    arm_purge_locked (self);
}

/* On the runtime's loop thread, when the oldest entry expires. */
static gboolean
purge_expired (gpointer data)
{
  g_autoptr(DvtCache) self = g_weak_ref_get (data);
  Entry *garbage = NULL;

  if (self == NULL)
    return G_SOURCE_REMOVE;

  g_mutex_lock (&self->lock);
  remove_expired_locked (self, g_get_monotonic_time (), &garbage);
  arm_purge_locked (self);
  g_mutex_unlock (&self->lock);
  free_entries (garbage);

  return G_SOURCE_CONTINUE;
}

static gboolean
purge_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  g_source_set_ready_time (source, -1);

  return callback (user_data);
}

static GSourceFuncs purge_funcs = { NULL, NULL, purge_dispatch, NULL, NULL, NULL };

static void
weak_ref_free (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

/* ---- flights ------------------------------------------------------------------
 *
 * A flight is one run of the function for a key and the callers waiting
 * for it: the first caller that finds neither a stored result nor a
 * flight starts one, the next ones join it. Each caller's task is a
 * future of the runtime (dvt_runtime_new_future(): no work of its own) that
 * the flight completes with the run's result. A caller leaves when its
 * task ends any other way (cancelled, by its caller or a shutdown): a done
 * hook on the task tells the flight, which cancels the run once its last
 * waiter has left. The run's own end reaches the flight through another
 * done hook, on whichever thread ends it, so that no wait depends on a
 * main context being iterated.
 *
 * The hooks run where the runtime publishes a task's end; what they do is
 * the cache's, built on the runtime as an application is, so they run
 * outside the runtime's fork gate (see dvt-thread-private.h), and the
 * runtime's calls they make enter it themselves. */

static Flight *
flight_new (DvtCache  *self,
            const Key *key)
{
  Flight *flight = g_new0 (Flight, 1);

  g_atomic_ref_count_init (&flight->ref_count);
  flight->cache = g_object_ref (self);
  key_copy (&flight->key, key);
  flight->waiters = g_ptr_array_new ();

  return flight;
}

static Flight *
flight_ref (Flight *flight)
{
  g_atomic_ref_count_inc (&flight->ref_count);

  return flight;
}

static void
flight_unref (gpointer data)
{
  Flight *flight = data;

  if (!g_atomic_ref_count_dec (&flight->ref_count))
    return;

  g_assert (flight->run == NULL);
  g_assert (flight->waiters == NULL || flight->waiters->len == 0);
  g_clear_pointer (&flight->waiters, g_ptr_array_unref);
  key_clear (&flight->key);
  g_object_unref (flight->cache);
  g_free (flight);
}

/* Takes @flight out of the cache's flights: its result will not be
 * stored, and the next caller of its key starts a new run. Returns the
 * table's reference, for the caller to drop once the lock is released, or
 * %NULL if it was out already. */
static Flight *
detach_locked (DvtCache *self,
               Flight   *flight)
{
  if (!flight->attached)
    return NULL;

  flight->attached = FALSE;
  g_hash_table_steal (self->flights, &flight->key);

  return flight;
}

/* The run has ended with @result, or could not start: every waiter gets
 * the result, and the cache keeps it if the flight was still attached. */
static void
flight_finish (Flight      *flight,
               CacheResult *result)
{
  DvtCache *self = flight->cache;
  g_autoptr(GPtrArray) waiters = NULL;
  Flight *detached;
  Entry *garbage = NULL;

  g_mutex_lock (&self->lock);
  waiters = g_steal_pointer (&flight->waiters);
  detached = detach_locked (self, flight);
  if (detached != NULL && is_kept_locked (self, result))
    store_locked (self, &flight->key, result, &garbage);
  g_mutex_unlock (&self->lock);

  /* Each waiter's done hook finds the flight ended and does nothing. */
  for (guint i = 0; i < waiters->len; i++)
    {
      result_return (result, waiters->pdata[i]);
      g_object_unref (waiters->pdata[i]);
    }
  free_entries (garbage);
  if (detached != NULL)
    flight_unref (detached);
}

/* Runs the cache's function: the work of a run. */
static void
run_flight (DvtTask       *task,
            GCancellable  *cancellable,
            gpointer       data,
            GError       **error)
{
  Flight *flight = data;
  DvtCache *self = flight->cache;

  self->func (task, flight->key.value, cancellable, self->func_data, error);
}

/* The done hook of a run. */
static void
on_run_done (DvtTask  *run,
             gpointer  data)
{
  Flight *flight = data;
  DvtForkGate gate = dvt_fork_gate_suspend ();
  CacheResult *result = result_new_from_run (run);
  DvtTask *held;

  g_mutex_lock (&flight->cache->lock);
  held = g_steal_pointer (&flight->run);
  g_mutex_unlock (&flight->cache->lock);

  flight_finish (flight, result);
  result_unref (result);
  g_clear_object (&held);
  flight_unref (flight);
  dvt_fork_gate_leave (gate);
}

/* Starts the run of a new flight, unless its waiters have left already. */
static void
flight_start (Flight *flight)
{
  DvtCache *self = flight->cache;
  g_autoptr(DvtOptions) options = NULL;
  g_autoptr(GError) error = NULL;
  gboolean abandoned;
  DvtTask *run = NULL;

  g_mutex_lock (&self->lock);
  abandoned = flight->abandoned;
  if (self->options != NULL)
    options = g_object_ref (self->options);
  g_mutex_unlock (&self->lock);

  if (abandoned)
    error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, _("The task was cancelled"));
  else if (self->flags & DVT_CACHE_FLAGS_ASYNC_WORK)
    run = dvt_runtime_schedule (self->runtime, run_flight, flight_ref (flight), flight_unref,
                                options, NULL, &error);
  else
    run = dvt_runtime_submit (self->runtime, run_flight, flight_ref (flight), flight_unref,
                              options, NULL, &error);
  if (run == NULL)
    {
      CacheResult *result = result_new_error (g_steal_pointer (&error));

      flight_finish (flight, result);
      result_unref (result);
      return;
    }

  g_mutex_lock (&self->lock);
  flight->run = g_object_ref (run);
  abandoned = flight->abandoned;
  g_mutex_unlock (&self->lock);

  if (abandoned)
    dvt_task_cancel (run);
  dvt_task_add_done_hook (run, on_run_done, flight_ref (flight));
  g_object_unref (run);
}

/* The done hook of a caller's task: if the flight has not ended, the
 * caller leaves it, and the last one to leave cancels the run. */
static void
on_waiter_done (DvtTask  *task,
                gpointer  data)
{
  Flight *flight = data;
  DvtCache *self = flight->cache;
  DvtForkGate gate = dvt_fork_gate_suspend ();
  DvtTask *cancel = NULL;
  Flight *detached = NULL;
  gboolean left = FALSE;
  guint i;

  g_mutex_lock (&self->lock);
  if (flight->waiters != NULL && g_ptr_array_find (flight->waiters, task, &i))
    {
      g_ptr_array_remove_index_fast (flight->waiters, i);
      left = TRUE;
      if (flight->waiters->len == 0)
        {
          flight->abandoned = TRUE;
          detached = detach_locked (self, flight);
          if (flight->run != NULL)
            cancel = g_object_ref (flight->run);
        }
    }
  g_mutex_unlock (&self->lock);

  if (cancel != NULL)
    {
      dvt_task_cancel (cancel);
      g_object_unref (cancel);
    }
  if (left)
    g_object_unref (task);
  if (detached != NULL)
    flight_unref (detached);
  flight_unref (flight);
  dvt_fork_gate_leave (gate);
}

/* A caller's task for @key (checked): completed at once with a stored
 * result, or waiting for the key's flight, joined or started. */
static DvtTask *
get_task (DvtCache      *self,
          const Key     *key,
          GCancellable  *cancellable,
          GError       **error)
{
  g_autoptr(GMainContext) wait_context = NULL;
  CacheResult *result;
  Flight *flight = NULL;
  Flight *started = NULL;
  Entry *garbage = NULL;
  DvtTask *task;

  /* A blocking wait iterates the caller's context when the run starts
   * there: the caller may be the one that starts it. */
  g_mutex_lock (&self->lock);
  if (self->wait_on_caller_context)
    wait_context = g_main_context_ref_thread_default ();
  g_mutex_unlock (&self->lock);

  task = dvt_runtime_new_future (self->runtime, wait_context, cancellable, error);
  if (task == NULL || dvt_task_get_completed (task))
    return task;  /* the runtime is closed, or the cancellable was cancelled */

  g_mutex_lock (&self->lock);
  result = lookup_locked (self, key, &garbage);
  if (result != NULL)
    self->hits++;
  else
    {
      self->misses++;
      flight = g_hash_table_lookup (self->flights, key);
      if (flight == NULL)
        {
          flight = flight_new (self, key);
          flight->attached = TRUE;
          g_hash_table_insert (self->flights, &flight->key, flight);
          self->runs++;
          started = flight_ref (flight);
        }
      g_ptr_array_add (flight->waiters, g_object_ref (task));
      flight_ref (flight);
    }
  g_mutex_unlock (&self->lock);
  free_entries (garbage);

  if (result != NULL)
    {
      result_return (result, task);
      result_unref (result);
      return task;
    }

  /* Runs at once if the task has ended meanwhile. */
  dvt_task_add_done_hook (task, on_waiter_done, flight);
  if (started != NULL)
    {
      flight_start (started);
      flight_unref (started);
    }

  return task;
}

/* ---- the object ---------------------------------------------------------------- */

static void
dvt_cache_constructed (GObject *object)
{
  DvtCache *self = DVT_CACHE (object);
  GWeakRef *weak;

  G_OBJECT_CLASS (dvt_cache_parent_class)->constructed (object);

  if (self->runtime == NULL)
    {
      g_critical ("A DvtCache needs a runtime: make it with dvt_cache_new()");
      return;
    }

  weak = g_new0 (GWeakRef, 1);
  g_weak_ref_init (weak, self);
  self->purge = g_source_new (&purge_funcs, sizeof (GSource));
  g_source_set_static_name (self->purge, "[dovetail] cache expiry");
  g_source_set_priority (self->purge, G_PRIORITY_LOW);
  g_source_set_callback (self->purge, purge_expired, weak, weak_ref_free);
  g_source_attach (self->purge, dvt_runtime_get_context (self->runtime));
}

static void
dvt_cache_finalize (GObject *object)
{
  DvtCache *self = DVT_CACHE (object);
  Entry *garbage = NULL;

  /* Every flight holds the cache. */
  g_assert (g_hash_table_size (self->flights) == 0);

  if (self->purge != NULL)
    {
      g_source_destroy (self->purge);
      g_clear_pointer (&self->purge, g_source_unref);
    }

  while (self->by_age.head != NULL)
    remove_entry_locked (self, self->by_age.head->data, &garbage);
  free_entries (garbage);
  g_hash_table_unref (self->entries);
  g_hash_table_unref (self->flights);

  if (self->func_data_destroy != NULL)
    self->func_data_destroy (self->func_data);
  g_clear_object (&self->options);
  g_clear_pointer (&self->key_type, g_variant_type_free);
  g_clear_object (&self->runtime);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (dvt_cache_parent_class)->finalize (object);
}

static void
dvt_cache_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  DvtCache *self = DVT_CACHE (object);

  switch (prop_id)
    {
    case PROP_RUNTIME:
      g_value_set_object (value, self->runtime);
      break;
    case PROP_KEY_TYPE:
      g_value_set_boxed (value, self->key_type);
      break;
    case PROP_FLAGS:
      g_value_set_flags (value, self->flags);
      break;
    case PROP_TTL:
      g_value_set_double (value, dvt_cache_get_ttl (self));
      break;
    case PROP_MAX_SIZE:
      g_value_set_uint (value, dvt_cache_get_max_size (self));
      break;
    case PROP_EVICT_ON_ERROR:
      g_value_set_boolean (value, dvt_cache_get_evict_on_error (self));
      break;
    case PROP_OPTIONS:
      g_value_take_object (value, dvt_cache_dup_options (self));
      break;
    case PROP_N_ENTRIES:
      g_value_set_uint (value, dvt_cache_get_n_entries (self));
      break;
    case PROP_HITS:
      g_value_set_uint64 (value, dvt_cache_get_hits (self));
      break;
    case PROP_MISSES:
      g_value_set_uint64 (value, dvt_cache_get_misses (self));
      break;
    case PROP_RUNS:
      g_value_set_uint64 (value, dvt_cache_get_runs (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_cache_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  DvtCache *self = DVT_CACHE (object);

  switch (prop_id)
    {
    case PROP_RUNTIME:
      self->runtime = g_value_dup_object (value);
      break;
    case PROP_KEY_TYPE:
      self->key_type = g_value_dup_boxed (value);
      break;
    case PROP_FLAGS:
      self->flags = g_value_get_flags (value);
      break;
    case PROP_TTL:
      dvt_cache_set_ttl (self, g_value_get_double (value), NULL);
      break;
    case PROP_MAX_SIZE:
      dvt_cache_set_max_size (self, g_value_get_uint (value));
      break;
    case PROP_EVICT_ON_ERROR:
      dvt_cache_set_evict_on_error (self, g_value_get_boolean (value));
      break;
    case PROP_OPTIONS:
      dvt_cache_set_options (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_cache_class_init (DvtCacheClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = dvt_cache_constructed;
  object_class->finalize = dvt_cache_finalize;
  object_class->get_property = dvt_cache_get_property;
  object_class->set_property = dvt_cache_set_property;

  /**
   * DvtCache:runtime:
   *
   * The runtime whose tasks compute the values.
   *
   * Since: 0.2
   */
  properties[PROP_RUNTIME] =
    g_param_spec_object ("runtime", NULL, NULL,
                         DVT_TYPE_RUNTIME,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:key-type:
   *
   * The type every key must have (it may be indefinite, such as `(s*)`),
   * or %NULL for keys of any type. A key of another type is refused with
   * %DVT_ERROR_INVALID_ARGUMENT.
   *
   * Since: 0.2
   */
  properties[PROP_KEY_TYPE] =
    g_param_spec_boxed ("key-type", NULL, NULL,
                        G_TYPE_VARIANT_TYPE,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:flags:
   *
   * How the cache runs its function.
   *
   * Since: 0.2
   */
  properties[PROP_FLAGS] =
    g_param_spec_flags ("flags", NULL, NULL,
                        DVT_TYPE_CACHE_FLAGS, DVT_CACHE_FLAGS_NONE,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:ttl:
   *
   * How many seconds a value is kept after its run ended. %G_MAXDOUBLE,
   * the default, keeps it until it is evicted or invalidated (so does any
   * TTL longer than about a century); 0 keeps nothing: concurrent callers
   * still share one run, and the next caller starts a new one. A change
   * applies to the values already stored too.
   *
   * Expired values are never returned; they leave the cache on a timer on
   * the runtime's loop thread, or when their key is asked for.
   *
   * Since: 0.2
   */
  properties[PROP_TTL] =
    g_param_spec_double ("ttl", NULL, NULL,
                         0, G_MAXDOUBLE, G_MAXDOUBLE,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:max-size:
   *
   * The most values kept, or 0 for no limit (the default). Storing one
   * more evicts the least recently used: a value is used when it is
   * stored and each time a caller gets it.
   *
   * Since: 0.2
   */
  properties[PROP_MAX_SIZE] =
    g_param_spec_uint ("max-size", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:evict-on-error:
   *
   * Whether a failed run leaves nothing behind (the default): the next
   * caller of its key starts a new run. Unset, the failure is kept as a
   * value is, and callers get the same error until it expires or is
   * invalidated. Cancellations and %DVT_ERROR_CLOSED are never kept.
   *
   * Since: 0.2
   */
  properties[PROP_EVICT_ON_ERROR] =
    g_param_spec_boolean ("evict-on-error", NULL, NULL,
                          TRUE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:options:
   *
   * The options of the runs: a timeout, retries, a name for events...
   * The cache keeps a copy; reading the property gives another. With
   * [property@Options:use-caller-context], the function of a cache with
   * %DVT_CACHE_FLAGS_ASYNC_WORK starts on the thread-default context of
   * the caller that starts the run, and a blocking caller iterates its
   * own context while it waits.
   *
   * Since: 0.2
   */
  properties[PROP_OPTIONS] =
    g_param_spec_object ("options", NULL, NULL,
                         DVT_TYPE_OPTIONS,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:n-entries:
   *
   * How many results are stored (expired ones included until they
   * leave). Not notified: read it when needed.
   *
   * Since: 0.2
   */
  properties[PROP_N_ENTRIES] =
    g_param_spec_uint ("n-entries", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:hits:
   *
   * How many calls found a stored result. Not notified.
   *
   * Since: 0.2
   */
  properties[PROP_HITS] =
    g_param_spec_uint64 ("hits", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:misses:
   *
   * How many calls found no stored result (each then started a run or
   * joined one, except for [method@Cache.lookup]). Not notified.
   *
   * Since: 0.2
   */
  properties[PROP_MISSES] =
    g_param_spec_uint64 ("misses", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCache:runs:
   *
   * How many runs of the function were started. Not notified.
   *
   * Since: 0.2
   */
  properties[PROP_RUNS] =
    g_param_spec_uint64 ("runs", NULL, NULL,
                         0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_cache_init (DvtCache *self)
{
  g_mutex_init (&self->lock);
  self->ttl = G_MAXDOUBLE;
  self->ttl_us = -1;
  self->evict_on_error = TRUE;
  self->entries = g_hash_table_new (key_hash, key_equal);
  self->flights = g_hash_table_new (key_hash, key_equal);
}

/**
 * dvt_cache_new:
 * @runtime: the runtime whose tasks compute the values
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   computes the value of a key; blocking, on a worker
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the cache is
 *   finalized (a run in flight holds the cache)
 *
 * Makes a cache of the values of @func, which runs on a worker as a
 * [callback@ThreadFunc] does, for keys of any type. See
 * [ctor@Cache.new_full] for the other kinds.
 *
 * Returns: (transfer full): a new cache
 *
 * Since: 0.2
 */
DvtCache *
dvt_cache_new (DvtRuntime     *runtime,
               DvtCacheFunc    func,
               gpointer        func_data,
               GDestroyNotify  func_data_destroy)
{
  return dvt_cache_new_full (runtime, NULL, DVT_CACHE_FLAGS_NONE,
                             func, func_data, func_data_destroy);
}

/**
 * dvt_cache_new_full:
 * @runtime: the runtime whose tasks compute the values
 * @key_type: (nullable): the type every key must have, or %NULL for any
 * @flags: how @func runs: %DVT_CACHE_FLAGS_ASYNC_WORK for a function that
 *   starts asynchronous work on a main context
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   computes the value of a key
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the cache is
 *   finalized (a run in flight holds the cache)
 *
 * Makes a cache of the values of @func.
 *
 * With %DVT_CACHE_FLAGS_ASYNC_WORK, @func is called as a
 * [callback@AsyncFunc] is: on the runtime's loop thread, or, when the
 * cache's options set [property@Options:use-caller-context], on the
 * thread-default context of the caller that starts the run. That is the
 * kind for work that is itself asynchronous (GIO calls), and for GJS,
 * which runs JavaScript on its own thread only.
 *
 * Returns: (transfer full): a new cache
 *
 * Since: 0.2
 */
DvtCache *
dvt_cache_new_full (DvtRuntime         *runtime,
                    const GVariantType *key_type,
                    DvtCacheFlags       flags,
                    DvtCacheFunc        func,
                    gpointer            func_data,
                    GDestroyNotify      func_data_destroy)
{
  DvtCache *self;

  g_return_val_if_fail (DVT_IS_RUNTIME (runtime), NULL);
  g_return_val_if_fail (func != NULL, NULL);

  self = g_object_new (DVT_TYPE_CACHE,
                       "runtime", runtime,
                       "key-type", key_type,
                       "flags", flags,
                       NULL);
  self->func = func;
  self->func_data = func_data;
  self->func_data_destroy = func_data_destroy;

  return self;
}

/**
 * dvt_cache_get_runtime:
 * @self: a cache
 *
 * Gets the runtime whose tasks compute the values.
 *
 * Returns: (transfer none): the runtime
 *
 * Since: 0.2
 */
DvtRuntime *
dvt_cache_get_runtime (DvtCache *self)
{
  g_return_val_if_fail (DVT_IS_CACHE (self), NULL);

  return self->runtime;
}

/**
 * dvt_cache_get_key_type:
 * @self: a cache
 *
 * Gets the type every key must have.
 *
 * Returns: (transfer none) (nullable): the type, or %NULL for keys of any
 *   type
 *
 * Since: 0.2
 */
const GVariantType *
dvt_cache_get_key_type (DvtCache *self)
{
  g_return_val_if_fail (DVT_IS_CACHE (self), NULL);

  return self->key_type;
}

/**
 * dvt_cache_get_flags:
 * @self: a cache
 *
 * Gets how the cache runs its function.
 *
 * Returns: the flags
 *
 * Since: 0.2
 */
DvtCacheFlags
dvt_cache_get_flags (DvtCache *self)
{
  g_return_val_if_fail (DVT_IS_CACHE (self), DVT_CACHE_FLAGS_NONE);

  return self->flags;
}

/**
 * dvt_cache_get_ttl:
 * @self: a cache
 *
 * Gets [property@Cache:ttl].
 *
 * Returns: seconds; %G_MAXDOUBLE for as long as possible
 *
 * Since: 0.2
 */
double
dvt_cache_get_ttl (DvtCache *self)
{
  double ttl;

  g_return_val_if_fail (DVT_IS_CACHE (self), 0);

  g_mutex_lock (&self->lock);
  ttl = self->ttl;
  g_mutex_unlock (&self->lock);

  return ttl;
}

/**
 * dvt_cache_set_ttl:
 * @self: a cache
 * @ttl: seconds a value is kept: 0 for none, %G_MAXDOUBLE for as long as
 *   possible
 * @error: return location for a #GError
 *
 * Sets [property@Cache:ttl]. A negative TTL, infinity or NaN is refused
 * with %DVT_ERROR_INVALID_ARGUMENT.
 *
 * Returns: %TRUE if the TTL was set
 *
 * Since: 0.2
 */
gboolean
dvt_cache_set_ttl (DvtCache  *self,
                   double     ttl,
                   GError   **error)
{
  Entry *garbage = NULL;
  gboolean changed;

  dvt_return_val_if_fail_error (DVT_IS_CACHE (self), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!(ttl >= 0) || isinf (ttl))
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   _("A cache’s TTL must be 0 or more seconds, and finite "
                     "(got %g); for values kept for good, use G_MAXDOUBLE"),
                   ttl);
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  changed = self->ttl != ttl;
  self->ttl = ttl;
  self->ttl_us = ttl >= TTL_FOREVER_FROM ? -1 : (gint64) (ttl * G_USEC_PER_SEC);
  remove_expired_locked (self, g_get_monotonic_time (), &garbage);
  arm_purge_locked (self);
  g_mutex_unlock (&self->lock);
  free_entries (garbage);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TTL]);

  return TRUE;
}

/**
 * dvt_cache_get_max_size:
 * @self: a cache
 *
 * Gets [property@Cache:max-size].
 *
 * Returns: the most values kept, or 0 for no limit
 *
 * Since: 0.2
 */
guint
dvt_cache_get_max_size (DvtCache *self)
{
  guint max_size;

  g_return_val_if_fail (DVT_IS_CACHE (self), 0);

  g_mutex_lock (&self->lock);
  max_size = self->max_size;
  g_mutex_unlock (&self->lock);

  return max_size;
}

/**
 * dvt_cache_set_max_size:
 * @self: a cache
 * @max_size: the most values kept, or 0 for no limit
 *
 * Sets [property@Cache:max-size], evicting the least recently used values
 * beyond it at once.
 *
 * Since: 0.2
 */
void
dvt_cache_set_max_size (DvtCache *self,
                        guint     max_size)
{
  Entry *garbage = NULL;
  gboolean changed;

  g_return_if_fail (DVT_IS_CACHE (self));

  g_mutex_lock (&self->lock);
  changed = self->max_size != max_size;
  self->max_size = max_size;
  evict_locked (self, &garbage);
  g_mutex_unlock (&self->lock);
  free_entries (garbage);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_SIZE]);
}

/**
 * dvt_cache_get_evict_on_error:
 * @self: a cache
 *
 * Gets [property@Cache:evict-on-error].
 *
 * Returns: whether failures are not kept
 *
 * Since: 0.2
 */
gboolean
dvt_cache_get_evict_on_error (DvtCache *self)
{
  gboolean evict_on_error;

  g_return_val_if_fail (DVT_IS_CACHE (self), TRUE);

  g_mutex_lock (&self->lock);
  evict_on_error = self->evict_on_error;
  g_mutex_unlock (&self->lock);

  return evict_on_error;
}

/**
 * dvt_cache_set_evict_on_error:
 * @self: a cache
 * @evict_on_error: %TRUE to keep no failure, %FALSE to keep them as values
 *
 * Sets [property@Cache:evict-on-error]. Setting it drops the failures
 * kept so far.
 *
 * Since: 0.2
 */
void
dvt_cache_set_evict_on_error (DvtCache *self,
                              gboolean  evict_on_error)
{
  Entry *garbage = NULL;
  gboolean changed;

  g_return_if_fail (DVT_IS_CACHE (self));

  evict_on_error = !!evict_on_error;
  g_mutex_lock (&self->lock);
  changed = self->evict_on_error != evict_on_error;
  self->evict_on_error = evict_on_error;
  if (evict_on_error)
    for (GList *l = self->by_age.head; l != NULL;)
      {
        Entry *entry = l->data;

        l = l->next;
        if (entry->result->error != NULL)
          remove_entry_locked (self, entry, &garbage);
      }
  g_mutex_unlock (&self->lock);
  free_entries (garbage);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_EVICT_ON_ERROR]);
}

/**
 * dvt_cache_dup_options:
 * @self: a cache
 *
 * Gets a copy of the options of the runs.
 *
 * Returns: (transfer full) (nullable): a copy of the options, or %NULL if
 *   none were set
 *
 * Since: 0.2
 */
DvtOptions *
dvt_cache_dup_options (DvtCache *self)
{
  DvtOptions *options = NULL;
  DvtOptions *copy;

  g_return_val_if_fail (DVT_IS_CACHE (self), NULL);

  g_mutex_lock (&self->lock);
  if (self->options != NULL)
    options = g_object_ref (self->options);
  g_mutex_unlock (&self->lock);

  if (options == NULL)
    return NULL;

  /* The cache's own copy is never changed: the caller gets another. */
  copy = dvt_options_copy (options);
  g_object_unref (options);

  return copy;
}

/**
 * dvt_cache_set_options:
 * @self: a cache
 * @options: (nullable): options for the runs started from now on (copied),
 *   or %NULL for the runtime's defaults
 *
 * Sets [property@Cache:options]: a timeout, retries, a name... Runs in
 * flight keep theirs.
 *
 * Since: 0.2
 */
void
dvt_cache_set_options (DvtCache   *self,
                       DvtOptions *options)
{
  DvtOptions *copy = NULL;
  DvtOptions *old;

  g_return_if_fail (DVT_IS_CACHE (self));
  g_return_if_fail (options == NULL || DVT_IS_OPTIONS (options));

  if (options != NULL)
    copy = dvt_options_copy (options);

  g_mutex_lock (&self->lock);
  old = g_steal_pointer (&self->options);
  self->options = copy;
  self->wait_on_caller_context = (self->flags & DVT_CACHE_FLAGS_ASYNC_WORK) &&
                                 copy != NULL && dvt_options_get_use_caller_context (copy);
  g_mutex_unlock (&self->lock);

  g_clear_object (&old);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_OPTIONS]);
}

/**
 * dvt_cache_get_n_entries:
 * @self: a cache
 *
 * Gets [property@Cache:n-entries].
 *
 * Returns: how many results are stored
 *
 * Since: 0.2
 */
guint
dvt_cache_get_n_entries (DvtCache *self)
{
  guint n;

  g_return_val_if_fail (DVT_IS_CACHE (self), 0);

  g_mutex_lock (&self->lock);
  n = g_hash_table_size (self->entries);
  g_mutex_unlock (&self->lock);

  return n;
}

/* Reads one of the counters, which the lock guards. */
static guint64
read_counter (DvtCache      *self,
              const guint64 *counter)
{
  guint64 n;

  g_mutex_lock (&self->lock);
  n = *counter;
  g_mutex_unlock (&self->lock);

  return n;
}

/**
 * dvt_cache_get_hits:
 * @self: a cache
 *
 * Gets [property@Cache:hits].
 *
 * Returns: how many calls found a stored result
 *
 * Since: 0.2
 */
guint64
dvt_cache_get_hits (DvtCache *self)
{
  g_return_val_if_fail (DVT_IS_CACHE (self), 0);

  return read_counter (self, &self->hits);
}

/**
 * dvt_cache_get_misses:
 * @self: a cache
 *
 * Gets [property@Cache:misses].
 *
 * Returns: how many calls found no stored result
 *
 * Since: 0.2
 */
guint64
dvt_cache_get_misses (DvtCache *self)
{
  g_return_val_if_fail (DVT_IS_CACHE (self), 0);

  return read_counter (self, &self->misses);
}

/**
 * dvt_cache_get_runs:
 * @self: a cache
 *
 * Gets [property@Cache:runs].
 *
 * Returns: how many runs of the function were started
 *
 * Since: 0.2
 */
guint64
dvt_cache_get_runs (DvtCache *self)
{
  g_return_val_if_fail (DVT_IS_CACHE (self), 0);

  return read_counter (self, &self->runs);
}

/* Reads a fresh stored result for get_blocking() and get_async(),
 * counting a hit; a miss is counted by get_task(). */
static CacheResult *
find_hit (DvtCache  *self,
          const Key *key)
{
  CacheResult *result;
  Entry *garbage = NULL;

  g_mutex_lock (&self->lock);
  result = lookup_locked (self, key, &garbage);
  if (result != NULL)
    self->hits++;
  g_mutex_unlock (&self->lock);
  free_entries (garbage);

  return result;
}

/**
 * dvt_cache_get:
 * @self: a cache
 * @key: the key; if it is floating, the cache takes it
 * @cancellable: (nullable): cancels this caller's task, not the run
 * @error: return location for a #GError
 *
 * Asks for the value of @key and returns this caller's own task at once:
 * a future to wait for ([method@Task.wait], [method@Task.wait_async]) and
 * read (`dvt_task_propagate_*()`).
 *
 * The task is completed with a stored value at once, or else with the
 * result of the key's run, joined or started. Cancelling the task (or
 * @cancellable) ends this caller's wait with %G_IO_ERROR_CANCELLED; the
 * run goes on for the other callers, and is cancelled once none is left.
 * The task is one of the runtime's (counted as queued, cancelled by a
 * shutdown that cancels pending work), but it has no work of its own: it
 * takes no worker and starts nothing.
 *
 * Returns: (transfer full): the caller's task, or %NULL with @error set:
 *   %DVT_ERROR_CLOSED once the runtime has been shut down,
 *   %DVT_ERROR_INVALID_ARGUMENT for a key of the wrong type
 *
 * Since: 0.2
 */
DvtTask *
dvt_cache_get (DvtCache      *self,
               GVariant      *key,
               GCancellable  *cancellable,
               GError       **error)
{
  g_auto(Key) checked = { NULL };

  dvt_return_val_if_fail_error (DVT_IS_CACHE (self), NULL, error);
  dvt_return_val_if_fail_error (key != NULL, NULL, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!take_key (self, key, &checked, error) || !check_open (self, error))
    return NULL;

  return get_task (self, &checked, cancellable, error);
}

/**
 * dvt_cache_get_blocking:
 * @self: a cache
 * @key: the key; if it is floating, the cache takes it
 * @timeout: the longest time to wait, in seconds; 0 or less waits as long
 *   as it takes
 * @cancellable: (nullable): cancels this caller's wait, not the run
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the value
 * @error: return location for a #GError
 *
 * Gets the value of @key: a stored one at once, or else the result of the
 * key's run, joined or started, blocking until it ends.
 *
 * When @timeout passes or @cancellable is cancelled first, this caller
 * stops waiting (%G_IO_ERROR_TIMED_OUT, %G_IO_ERROR_CANCELLED); the run
 * goes on for the other callers and is cancelled once none is left. Any
 * thread may call this, except the runtime's loop thread when the value
 * must be waited for (%DVT_ERROR_WOULD_DEADLOCK). A worker that waits here
 * lets the runtime start another, so a cache function may get other keys
 * of the same or another cache (never its own: that run would wait for
 * itself).
 *
 * Returns: (skip): %TRUE with the value, or %FALSE with the run's error
 *   (unchanged), or %DVT_ERROR_CLOSED once the runtime has been shut down
 *
 * Since: 0.2
 */
gboolean
dvt_cache_get_blocking (DvtCache      *self,
                        GVariant      *key,
                        double         timeout,
                        GCancellable  *cancellable,
                        GValue        *value,
                        GError       **error)
{
  g_auto(Key) checked = { NULL };
  g_autoptr(DvtTask) task = NULL;
  CacheResult *result;
  gboolean ok;

  dvt_return_val_if_fail_error (DVT_IS_CACHE (self), FALSE, error);
  dvt_return_val_if_fail_error (key != NULL, FALSE, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!take_key (self, key, &checked, error) || !check_open (self, error))
    goto failed;

  result = find_hit (self, &checked);
  if (result != NULL)
    {
      ok = result_propagate (result, value, error);
      result_unref (result);
      return ok;
    }

  task = get_task (self, &checked, cancellable, error);
  if (task == NULL)
    goto failed;

  if (!dvt_task_wait (task, timeout, error))
    {
      /* This caller leaves; the run goes on for the others. */
      dvt_task_cancel (task);
      goto failed;
    }

  return dvt_task_propagate_value (task, value, error);

failed:
  if (value != NULL)
    g_value_init (value, G_TYPE_POINTER);
  return FALSE;
}

static void
on_get_async_waited (GObject      *source,
                     GAsyncResult *res,
                     gpointer      user_data)
{
  DvtTask *task = DVT_TASK (source);
  g_autoptr(GTask) gtask = user_data;
  g_auto(GValue) value = G_VALUE_INIT;
  GError *error = NULL;

  if (dvt_task_wait_finish (task, res, &error) &&
      dvt_task_propagate_value (task, &value, &error))
    g_task_return_value (gtask, &value);
  else
    g_task_return_error (gtask, error);
  g_object_unref (task);
}

/**
 * dvt_cache_get_async:
 * @self: a cache
 * @key: the key; if it is floating, the cache takes it
 * @cancellable: (nullable): cancels this caller's wait, not the run
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once the value is
 *   there
 * @user_data: data for @callback
 *
 * Gets the value of @key without blocking: the main-loop twin of
 * [method@Cache.get_blocking]. @callback runs on the caller's
 * thread-default context, always after this call has returned, even for a
 * stored value; call [method@Cache.get_finish] there.
 *
 * Cancelling @cancellable ends this caller's wait with
 * %G_IO_ERROR_CANCELLED; the run goes on for the other callers, and is
 * cancelled once none is left.
 *
 * Since: 0.2
 */
void
dvt_cache_get_async (DvtCache            *self,
                     GVariant            *key,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) gtask = NULL;
  g_auto(Key) checked = { NULL };
  CacheResult *result;
  DvtTask *task;
  GError *error = NULL;

  g_return_if_fail (DVT_IS_CACHE (self));
  g_return_if_fail (key != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, dvt_cache_get_async);
  g_task_set_name (gtask, "[dovetail] dvt_cache_get_async");

  if (!take_key (self, key, &checked, &error) || !check_open (self, &error))
    {
      g_task_return_error (gtask, error);
      return;
    }

  result = find_hit (self, &checked);
  if (result != NULL)
    {
      if (result->error != NULL)
        g_task_return_error (gtask, g_error_copy (result->error));
      else
        g_task_return_value (gtask, &result->value);
      result_unref (result);
      return;
    }

  task = get_task (self, &checked, cancellable, &error);
  if (task == NULL)
    {
      g_task_return_error (gtask, error);
      return;
    }

  dvt_task_wait_async (task, NULL, on_get_async_waited, g_steal_pointer (&gtask));
}

/**
 * dvt_cache_get_finish:
 * @self: a cache
 * @result: the result given to the callback of [method@Cache.get_async]
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the value
 * @error: return location for a #GError
 *
 * Finishes [method@Cache.get_async].
 *
 * Returns: (skip): %TRUE with the value, or %FALSE with the run's error
 *   (unchanged), %G_IO_ERROR_CANCELLED if the wait was cancelled, or
 *   %DVT_ERROR_CLOSED once the runtime has been shut down
 *
 * Since: 0.2
 */
gboolean
dvt_cache_get_finish (DvtCache      *self,
                      GAsyncResult  *result,
                      GValue        *value,
                      GError       **error)
{
  GValue got = G_VALUE_INIT;

  dvt_return_val_if_fail_error (DVT_IS_CACHE (self), FALSE, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, self), FALSE, error);
  dvt_return_val_if_fail_error (g_task_get_source_tag (G_TASK (result)) == dvt_cache_get_async,
                                FALSE, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_task_propagate_value (G_TASK (result), &got, error))
    {
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  if (value != NULL)
    *value = got;
  else
    g_value_unset (&got);

  return TRUE;
}

/**
 * dvt_cache_lookup:
 * @self: a cache
 * @key: the key; if it is floating, the cache takes it
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the value
 *
 * Reads the value stored for @key, if there is a fresh one, without
 * starting or joining a run and without waiting: the fast path for
 * callers that have something else to do on a miss. A value found counts
 * as a hit and as a use (see [property@Cache:max-size]). It works after
 * the runtime has been shut down too.
 *
 * Returns: %TRUE with the value if a fresh one is stored; %FALSE if none is
 *   (nothing stored, expired, a run in flight, a kept failure, or a key
 *   of the wrong type), with a %NULL pointer value
 *
 * Since: 0.2
 */
gboolean
dvt_cache_lookup (DvtCache *self,
                  GVariant *key,
                  GValue   *value)
{
  g_auto(Key) checked = { NULL };
  CacheResult *result;
  Entry *garbage = NULL;
  gboolean found;

  g_return_val_if_fail (DVT_IS_CACHE (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (value == NULL || !G_IS_VALUE (value), FALSE);

  found = take_key (self, key, &checked, NULL);

  g_mutex_lock (&self->lock);
  result = found ? lookup_locked (self, &checked, &garbage) : NULL;
  found = result != NULL && result->error == NULL;
  if (found)
    self->hits++;
  else
    self->misses++;
  g_mutex_unlock (&self->lock);
  free_entries (garbage);

  if (value != NULL)
    {
      if (found)
        {
          g_value_init (value, G_VALUE_TYPE (&result->value));
          g_value_copy (&result->value, value);
        }
      else
        g_value_init (value, G_TYPE_POINTER);
    }
  if (result != NULL)
    result_unref (result);

  return found;
}

/**
 * dvt_cache_invalidate:
 * @self: a cache
 * @key: the key; if it is floating, the cache takes it
 *
 * Forgets the value of @key: the next caller starts a new run. A run in
 * flight for @key goes on for its waiters, who get its result, but the
 * result is not stored, and callers that come from now on start a new
 * run instead of joining it.
 *
 * Returns: %TRUE if a result was stored or a run was in flight for @key
 *
 * Since: 0.2
 */
gboolean
dvt_cache_invalidate (DvtCache *self,
                      GVariant *key)
{
  g_auto(Key) checked = { NULL };
  Entry *garbage = NULL;
  Flight *detached = NULL;
  Entry *entry;
  Flight *flight;

  g_return_val_if_fail (DVT_IS_CACHE (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  if (!take_key (self, key, &checked, NULL))
    return FALSE;

  g_mutex_lock (&self->lock);
  entry = g_hash_table_lookup (self->entries, &checked);
  if (entry != NULL)
    remove_entry_locked (self, entry, &garbage);
  flight = g_hash_table_lookup (self->flights, &checked);
  if (flight != NULL)
    detached = detach_locked (self, flight);
  g_mutex_unlock (&self->lock);

  free_entries (garbage);
  if (detached != NULL)
    flight_unref (detached);

  return entry != NULL || flight != NULL;
}

/**
 * dvt_cache_clear:
 * @self: a cache
 *
 * Forgets every value, as [method@Cache.invalidate] does for each key:
 * runs in flight go on for their waiters, but store nothing.
 *
 * Since: 0.2
 */
void
dvt_cache_clear (DvtCache *self)
{
  g_autoptr(GPtrArray) detached = g_ptr_array_new_with_free_func (flight_unref);
  Entry *garbage = NULL;
  GHashTableIter iter;
  gpointer flight;

  g_return_if_fail (DVT_IS_CACHE (self));

  g_mutex_lock (&self->lock);
  while (self->by_age.head != NULL)
    remove_entry_locked (self, self->by_age.head->data, &garbage);
  g_hash_table_iter_init (&iter, self->flights);
  while (g_hash_table_iter_next (&iter, NULL, &flight))
    {
      ((Flight *) flight)->attached = FALSE;
      g_hash_table_iter_steal (&iter);
      g_ptr_array_add (detached, flight);
    }
  arm_purge_locked (self);
  g_mutex_unlock (&self->lock);

  free_entries (garbage);
}
