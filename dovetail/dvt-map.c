/* dvt-map.c: ordered parallel maps and gathers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>
#include <unistd.h>

#include "dvt-error-private.h"
#include "dvt-i18n-private.h"
#include "dvt-map-private.h"
#include "dvt-options.h"
#include "dvt-runtime-private.h"
#include "dvt-thread-private.h"

/* A map runs one function over the index range [0, n_items).
 *
 * Blocking items: a few runners (at most max-concurrency, at most
 * max-workers) are queued as worker jobs; each claims chunks of the range
 * with one atomic add and runs them in order, reusing one item task for
 * all its items, so the bulk path allocates nothing per item. Results go
 * into pre-sized slots.
 *
 * Async items: a pump on the run context starts items while fewer than
 * max-concurrency are in flight; each completion posts its item back to
 * the pump, which starts the next.
 *
 * Items with a timeout or retries, or under a rate limit, go through the
 * same pump (on the loop thread for blocking items, at most max-workers
 * of them in flight), each as a task of its own that the runtime
 * dispatches, times, retries and throttles like any other; only its
 * result goes to its slot. */

typedef struct
{
  DvtJob  job;
  DvtMap *map;
} DvtMapRunner;

struct _DvtMap
{
  int             ref_count;
  DvtRuntime     *runtime;
  DvtTask        *batch;
  DvtMapFunc      func;
  gpointer        func_data;
  GDestroyNotify  func_data_destroy;
  DvtMailbox     *destroy_mailbox;
  guint           n_items;
  gboolean        return_errors;
  gboolean        async_items;
  gboolean        pumped;    /* items start from the pump */
  DvtPolicy      *item_policy;
  gboolean        item_tasks; /* each item is dispatched as a task */
  int             n_item_tasks; /* atomic: item tasks that may still call func */
  DvtProgress    *progress;  /* items ended, counted when watched */

  GArray         *results;   /* GValue slots */
  GDestroyNotify *destroys;  /* per slot, for pointer results; lazy */
  int             failed;    /* atomic */
  GError         *first_error;

  /* blocking items */
  int             next;      /* atomic cursor */
  guint           chunk;
  int             n_runners; /* atomic */
  DvtMapRunner   *runners;

  /* async items: only touched on the run context */
  guint           max_in_flight;
  guint           in_flight;
  guint           next_start;
  int             ended;     /* atomic: the pump calls func no more */
  DvtMailbox     *mailbox;
  DvtMail         start_mail;
};

static DvtMap *
map_ref (DvtMap *map)
{
  g_atomic_int_inc (&map->ref_count);
  return map;
}

static void
free_slots (GArray         *results,
            GDestroyNotify *destroys)
{
  if (results == NULL)
    return;

  if (destroys != NULL)
    for (guint i = 0; i < results->len; i++)
      {
        GValue *slot = &g_array_index (results, GValue, i);

        if (destroys[i] != NULL && G_VALUE_HOLDS_POINTER (slot) &&
            g_value_get_pointer (slot) != NULL)
          destroys[i] (g_value_get_pointer (slot));
      }

  g_array_unref (results);
}

static void
map_unref (DvtMap *map)
{
  if (!g_atomic_int_dec_and_test (&map->ref_count))
    return;

  DVT_APP_CALL (free_slots (map->results, map->destroys));
  g_free (map->destroys);
  g_clear_error (&map->first_error);
  if (map->func_data_destroy != NULL)
    {
      if (map->destroy_mailbox != NULL)
        dvt_core_destroy_on (dvt_runtime_get_core (map->runtime), map->destroy_mailbox,
                             map->func_data_destroy, map->func_data);
      else
        DVT_APP_CALL (map->func_data_destroy (map->func_data));
    }
  g_free (map->runners);
  g_clear_pointer (&map->item_policy, dvt_policy_unref);
  dvt_progress_unref (map->progress);
  g_clear_object (&map->batch);
  g_clear_object (&map->runtime);
  g_free (map);
}

static GArray *
new_results (guint n_items)
{
  GArray *results = g_array_sized_new (FALSE, TRUE, sizeof (GValue), n_items);

  g_array_set_size (results, n_items);
  g_array_set_clear_func (results, (GDestroyNotify) g_value_unset);

  return results;
}

/* ---- a map as its items' parent (see DvtTaskParentClass) ---------------- */

/* The items of a map share the map's cancellable. */
static GCancellable *
map_get_cancellable (gpointer parent)
{
  return dvt_task_get_cancellable (((DvtMap *) parent)->batch);
}

/* The task of the whole map. */
static DvtTask *
map_get_batch (gpointer parent)
{
  return ((DvtMap *) parent)->batch;
}

static DvtMailbox *
map_get_mailbox (gpointer parent)
{
  return ((DvtMap *) parent)->mailbox;
}

/* An item task of the map will not call the map's function again. */
static void
map_item_released (gpointer parent)
{
  g_atomic_int_add (&((DvtMap *) parent)->n_item_tasks, -1);
}

/* An item task of the map is being finalized. */
static void
map_item_finalized (gpointer  parent,
                    DvtTask  *item)
{
  if (item->kind != DVT_TASK_KIND_ITEM &&
      !dvt_task_has_flag (item, DVT_TASK_FLAG_ITEM_RELEASED))
    map_item_released (parent);
  map_unref (parent);
}

/* Cancelling an item cancels its map. */
static void
map_cancel (gpointer parent)
{
  dvt_task_cancel (((DvtMap *) parent)->batch);
}

static void map_item_done (gpointer   parent,
                           DvtTask   *item,
                           DvtResult *result);

static const DvtTaskParentClass map_parent_class = {
  .done = map_item_done,
  .released = map_item_released,
  .finalized = map_item_finalized,
  .get_cancellable = map_get_cancellable,
  .cancel = map_cancel,
  .get_mailbox = map_get_mailbox,
  .get_task = map_get_batch,
};

static gboolean
map_should_stop (DvtMap *map)
{
  return (!map->return_errors && g_atomic_int_get (&map->failed)) ||
         dvt_task_is_claimed (map->batch);
}

/* Ends the batch once no item runs any more. */
static void
map_complete (DvtMap *map)
{
  if (!map->return_errors && g_atomic_int_get (&map->failed))
    {
      dvt_task_fail (map->batch, g_steal_pointer (&map->first_error), FALSE);
      return;
    }

  if (dvt_task_is_claimed (map->batch))
    return;  /* cancelled: the slots are freed with the map */

  /* The caller takes the slots, and with them any pointer results. */
  g_clear_pointer (&map->destroys, g_free);
  dvt_task_return_pointer (map->batch, g_steal_pointer (&map->results),
                           (GDestroyNotify) g_array_unref);
}

static void map_pump (DvtMap *map);

static void
item_posted_back (DvtMail *mail)
{
  DvtTask *item = DVT_TASK_OF_MAIL (mail);
  DvtMap *map = map_ref (item->extra->parent);
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  map->in_flight--;
  dvt_task_unref_gated (item);
  map_pump (map);
  map_unref (map);
  dvt_fork_gate_leave (gate);
}

static void
map_item_done (gpointer   parent,
               DvtTask   *item,
               DvtResult *result)
{
  DvtMap *map = parent;
  guint index = item->extra->index;
  GValue *slot = &g_array_index (map->results, GValue, index);

  if (result->error != NULL)
    {
      if (map->return_errors)
        {
          g_value_init (slot, G_TYPE_ERROR);
          g_value_take_boxed (slot, g_steal_pointer (&result->error));
        }
      else if (g_atomic_int_compare_and_exchange (&map->failed, 0, 1))
        map->first_error = g_steal_pointer (&result->error);
      else
        g_clear_error (&result->error);
    }
  else
    {
      *slot = result->value;
      /* Bindings cannot convert an unset value: no value is a NULL pointer. */
      if (!G_IS_VALUE (slot))
        g_value_init (slot, G_TYPE_POINTER);
      if (result->destroy != NULL)
        {
          GDestroyNotify *destroys = g_atomic_pointer_get (&map->destroys);

          if (destroys == NULL)
            {
              GDestroyNotify *made = g_new0 (GDestroyNotify, map->n_items);

              if (g_atomic_pointer_compare_and_exchange (&map->destroys, NULL, made))
                destroys = made;
              else
                {
                  g_free (made);
                  destroys = g_atomic_pointer_get (&map->destroys);
                }
            }
          destroys[index] = result->destroy;
        }
    }
  memset (result, 0, sizeof *result);

  /* Only progress events read the count, and whether the batch records
   * events was settled when it was accepted (or when a scope asked for its
   * id): unwatched, the runners do not share a counter per item. */
  if (dvt_task_has_flag (map->batch, DVT_TASK_FLAG_WATCHED | DVT_TASK_FLAG_SCOPED) &&
      dvt_progress_add (map->progress))
    dvt_task_emit_progress (map->batch, map->progress);

  if (map->pumped)
    {
      /* The mail holds the item until the pump has counted it. */
      item->extra->mail.deliver = item_posted_back;
      dvt_mailbox_post (map->mailbox, &g_object_ref (item)->extra->mail);
    }
}

static DvtTask *
new_item (DvtMap *map)
{
  DvtTask *item = dvt_task_new (dvt_runtime_get_core (map->runtime), DVT_TASK_KIND_ITEM, NULL, NULL);

  dvt_task_set_parent (item, &map_parent_class, map_ref (map), 0);

  return item;
}

static void
run_items (DvtJob *job)
{
  DvtMap *map = ((DvtMapRunner *) job)->map;
  DvtTask *item = NULL;
  GCancellable *cancellable = map->batch->cancellable;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  gpointer context = dvt_context_enter (dvt_task_get_context (map->batch));

  while (!map_should_stop (map))
    {
      guint start = (guint) g_atomic_int_add (&map->next, (int) map->chunk);
      guint end;

      if (start >= map->n_items)
        break;
      end = MIN (start + map->chunk, map->n_items);

      for (guint i = start; i < end && !map_should_stop (map); i++)
        {
          GError *error = NULL;
          DvtTask *outer;

          if (item == NULL)
            item = new_item (map);
          item->extra->index = i;
          g_atomic_int_set (&item->completing, DVT_CLAIMED_NOT);

          outer = dvt_task_enter_work (item);
          DVT_APP_CALL (map->func (item, cancellable, map->func_data, &error));
          dvt_task_leave_work (outer);
          dvt_task_check_returned (item, error);

          /* Someone kept the item: leave it to them. */
          if (dvt_task_ref_count (item) > 1)
            g_clear_pointer (&item, dvt_task_unref_gated);
        }
    }

  g_clear_pointer (&item, dvt_task_unref_gated);
  dvt_context_leave (context);

  if (g_atomic_int_dec_and_test (&map->n_runners))
    map_complete (map);
  map_unref (map);
  dvt_fork_gate_leave (gate);
}

/* An item as a task of its own: cancelling the map cancels it, and its
 * own timeout cancels only its own cancellable. */
static void
start_item_task (DvtMap *map,
                 guint   index)
{
  DvtTask *item = dvt_task_new (dvt_runtime_get_core (map->runtime),
                                map->async_items ? DVT_TASK_KIND_ASYNC
                                                 : DVT_TASK_KIND_THREAD,
                                NULL, map->batch->cancellable);
  g_atomic_int_inc (&map->n_item_tasks);
  dvt_task_set_parent (item, &map_parent_class, map_ref (map), index);
  item->func = map->func;
  item->func_data = map->func_data;
  /* The start's reference; see dvt_task_check_returned(). */
  item->internal_refs = map->async_items ? 1 : 0;
  if (map->item_policy != NULL)
    dvt_task_set_policy (item, map->item_policy);
  /* The map's priority orders its items among queued work. */
  item->extra->priority = DVT_TASK_EXTRA (map->batch, priority, G_PRIORITY_DEFAULT);
  dvt_task_ensure_cancellable (item);
  dvt_task_hold_idle (item);

  dvt_task_dispatch (item);
  dvt_task_unref_gated (item);
}

static void
map_pump (DvtMap *map)
{
  GCancellable *cancellable = map->batch->cancellable;
  gpointer context = dvt_context_enter (dvt_task_get_context (map->batch));

  while (!map_should_stop (map) &&
         map->in_flight < map->max_in_flight &&
         map->next_start < map->n_items)
    {
      DvtTask *item, *outer;
      GError *error = NULL;

      map->in_flight++;
      if (map->item_tasks)
        {
          start_item_task (map, map->next_start++);
          continue;
        }

      item = new_item (map);
      item->extra->index = map->next_start++;
      item->func = map->func;
      item->internal_refs = 1;

      outer = dvt_task_enter_work (item);
      DVT_APP_CALL (map->func (item, cancellable, map->func_data, &error));
      dvt_task_leave_work (outer);
      dvt_task_check_returned (item, error);
      dvt_task_unref_gated (item);
    }
  dvt_context_leave (context);

  if (!map->ended && map->in_flight == 0 &&
      (map->next_start >= map->n_items || map_should_stop (map)))
    {
      g_atomic_int_set (&map->ended, TRUE);
      map_complete (map);
    }
}

static void
start_pump (DvtMail *mail)
{
  DvtMap *map = G_STRUCT_MEMBER_P (mail, -G_STRUCT_OFFSET (DvtMap, start_mail));
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  /* Not started at all: still new. */
  if (g_atomic_int_compare_and_exchange (&map->batch->state, DVT_TASK_NEW, DVT_TASK_RUNNING))
    dvt_task_mark_started (map->batch);
  map_pump (map);
  map_unref (map);
  dvt_fork_gate_leave (gate);
}

/* Frees the item function's data now if no item will call it again;
 * otherwise the map frees it when its last runner lets go. */
static void
map_release_func_data (DvtMap *map)
{
  GDestroyNotify destroy = map->func_data_destroy;
  gboolean done = map->pumped ? g_atomic_int_get (&map->ended) &&
                                 g_atomic_int_get (&map->n_item_tasks) == 0
                              : g_atomic_int_get (&map->n_runners) == 0;

  if (destroy == NULL || !done || map->destroy_mailbox != NULL)
    return;

  map->func_data_destroy = NULL;
  DVT_APP_CALL (destroy (map->func_data));
}

static guint
resolve_concurrency (DvtOptions *options,
                     guint       n_items)
{
  int n = options != NULL ? dvt_options_get_max_concurrency (options) : -1;

  if (n < 0)
    return n_items;
  return MAX (1, (guint) n);
}

/* How many runners share the items of a map that runs them in chunks: at
 * most max-concurrency, at most max-workers, at most one per item. */
static guint
count_runners (DvtRuntime *self,
               DvtOptions *options,
               guint       n_items)
{
  return MIN (MIN (resolve_concurrency (options, n_items), n_items),
              dvt_runtime_get_max_workers (self));
}

/* Starts a map; returns its batch task, already accepted, and if asked
 * the map itself, or NULL with @error set (the batch, if it has a callback,
 * has then ended with it). */
static DvtTask *
map_start (DvtRuntime          *self,
           guint                n_items,
           DvtMapFunc           func,
           gpointer             func_data,
           GDestroyNotify       func_data_destroy,
           DvtOptions          *options,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data,
           DvtMap             **out_map,
           GError             **error)
{
  DvtCore *core = dvt_runtime_get_core (self);
  DvtTask *batch;
  DvtMap *map;
  DvtPolicy *deadline;
  guint concurrency;
  GError *local_error = NULL;

  batch = dvt_task_new (dvt_runtime_get_core (self), DVT_TASK_KIND_BATCH, options, cancellable);
  batch->func = func;  /* its identity for events; items call map->func */
  dvt_task_set_callback (batch, callback, user_data, dvt_runtime_map_async);

  if (!dvt_task_accept (batch, &local_error))
    {
      if (func_data_destroy != NULL)
        DVT_APP_CALL (func_data_destroy (func_data));
      if (error != NULL)
        *error = g_error_copy (local_error);
      dvt_task_fail (batch, local_error, TRUE);
      g_object_unref (batch);
      return NULL;
    }

  map = g_new0 (DvtMap, 1);
  map->ref_count = 1;
  map->runtime = g_object_ref (self);
  map->batch = g_object_ref (batch);
  map->func = func;
  map->func_data = func_data;
  map->func_data_destroy = func_data_destroy;
  if (func_data_destroy != NULL && DVT_TASK_EXTRA (batch, callback_mailbox, NULL) != NULL)
    map->destroy_mailbox = dvt_core_acquire_mailbox (core, batch->extra->callback_mailbox->context);
  map->n_items = n_items;
  map->progress = dvt_progress_new (n_items);
  if (options != NULL)
    {
      map->return_errors = dvt_options_get_return_errors (options);
      map->async_items = dvt_options_get_async_items (options);
    }
  concurrency = resolve_concurrency (options, n_items);
  map->item_tasks = dvt_runtime_resolve_task_policy (self, options, &map->item_policy);
  map->pumped = map->async_items || map->item_tasks;

  /* The deadline is the whole map's; the timeout each item's. */
  deadline = dvt_policy_new_deadline (options != NULL ? dvt_options_get_deadline (options) : 0);
  if (deadline != NULL)
    {
      dvt_task_set_policy (batch, deadline);
      dvt_task_arm_timeout (batch, deadline->timeout);
      dvt_policy_unref (deadline);
    }

  /* Items share the batch's cancellable: make it before any item runs,
   * so that cancelling the map reaches the items already running. */
  dvt_task_ensure_cancellable (batch);
  dvt_task_connect_caller_cancellable (batch);

  /* No slots for a map that ended before it began (its cancellable was
   * cancelled already): no item will run. */
  if (!dvt_task_is_claimed (batch))
    map->results = new_results (n_items);

  if (out_map != NULL)
    *out_map = map_ref (map);

  if (n_items == 0)
    {
      map_complete (map);
      map_unref (map);
      return batch;
    }

  if (map->pumped)
    {
      if (map->async_items && options != NULL && dvt_options_get_use_caller_context (options))
        {
          GMainContext *context = g_main_context_ref_thread_default ();

          dvt_task_set_run_context (batch, context);
          g_main_context_unref (context);
          map->mailbox = batch->extra->run_mailbox;
        }
      else
        map->mailbox = core->loop_mailbox;

      map->max_in_flight = MIN (concurrency, n_items);
      /* A blocking item's timeout runs from its dispatch: dispatch no
       * more than can run. */
      if (!map->async_items)
        map->max_in_flight = MIN (map->max_in_flight, dvt_runtime_get_max_workers (self));
      map->start_mail.deliver = start_pump;
      dvt_mailbox_post (map->mailbox, &map_ref (map)->start_mail);
    }
  else
    {
      guint n_runners = count_runners (self, options, n_items);

      map->chunk = CLAMP (n_items / (n_runners * 16), 1, 4096);
      map->n_runners = (int) n_runners;
      map->runners = g_new0 (DvtMapRunner, n_runners);
      if (g_atomic_int_compare_and_exchange (&batch->state, DVT_TASK_NEW, DVT_TASK_RUNNING))
        dvt_task_mark_started (batch);
      for (guint i = 0; i < n_runners; i++)
        {
          map->runners[i].map = map_ref (map);
          map->runners[i].job.run = run_items;
          dvt_pool_push_priority (&core->pool, &map->runners[i].job,
                                  DVT_TASK_EXTRA (batch, priority, G_PRIORITY_DEFAULT));
        }
    }

  map_unref (map);

  return batch;
}

/* The memory this process may use for one map's results: half of the
 * machine's, or G_MAXSIZE where the system does not tell. */
static guint64
results_memory_limit (void)
{
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  long pages = sysconf (_SC_PHYS_PAGES);
  long page_size = sysconf (_SC_PAGESIZE);

  if (pages > 0 && page_size > 0)
    return (guint64) pages * (guint64) page_size / 2;
#endif
  return G_MAXSIZE;
}

static gboolean
check_map_args (guint       n_items,
                DvtOptions *options,
                GError    **error)
{
  guint64 bytes = (guint64) n_items * sizeof (GValue);

  if (n_items > G_MAXINT / 2)
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   _("A map can have at most %d items"), G_MAXINT / 2);
      return FALSE;
    }

  /* The results are allocated when the map starts, one slot per item:
   * refuse what cannot be allocated rather than abort. */
  if (bytes > results_memory_limit ())
    {
      g_autofree char *size = g_format_size (bytes);

      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   /* Translators: %u: items (many millions); %s: a size. */
                   _("A map of %u items needs %s for its results, more than "
                     "half of this machine’s memory; split it into smaller maps"),
                   n_items, size);
      return FALSE;
    }

  return TRUE;
}

/**
 * dvt_runtime_map_blocking:
 * @self: a runtime
 * @n_items: how many items: @func is called for each index below it
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   computes one item
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data once no item calls @func
 *   any more: before this call returns, unless the call was released early
 *   (cancelled) while items still run, in which case it is freed where the
 *   last of them returns
 * @options: (nullable): [property@Options:max-concurrency],
 *   [property@Options:return-errors], [property@Options:async-items] and
 *   [property@Options:use-caller-context] apply
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Runs @func for every index from 0 to @n_items - 1, in parallel, and
 * blocks until all are done. The results keep the order of the indexes,
 * whatever order the items finish in.
 *
 * At most [property@Options:max-concurrency] items run at once (0 means
 * 1; unset means all of them, within [property@Runtime:max-workers] for
 * blocking items).
 *
 * With [property@Options:return-errors], a failed item puts its #GError
 * (a %G_TYPE_ERROR value) in its slot and the map always succeeds.
 * Otherwise the first failure fails the map: items not yet started never
 * start, items already running finish, and the error is returned.
 *
 * An item's pointer result belongs to the caller once the map returns.
 *
 * ```c
 * static void
 * square (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
 * {
 *   guint i = dvt_task_get_index (task);
 *
 *   dvt_task_return_int (task, (gint64) i * i);
 * }
 *
 * g_autoptr(DvtOptions) options = dvt_options_new ();
 * g_autoptr(GArray) squares = NULL;
 *
 * dvt_options_set_max_concurrency (options, 4);
 * squares = dvt_runtime_map_blocking (runtime, 100, square, NULL, NULL,
 *                                     options, NULL, &error);
 * for (guint i = 0; squares != NULL && i < squares->len; i++)
 *   g_print ("%" G_GINT64_FORMAT "\n",
 *            g_value_get_int64 (&g_array_index (squares, GValue, i)));
 * ```
 *
 * Returns: (transfer full) (element-type GValue): the results, one
 *   #GValue per item (unset for an item that returned no value), or %NULL
 *   with @error set
 */
GArray *
dvt_runtime_map_blocking (DvtRuntime    *self,
                          guint          n_items,
                          DvtMapFunc     func,
                          gpointer       func_data,
                          GDestroyNotify func_data_destroy,
                          DvtOptions    *options,
                          GCancellable  *cancellable,
                          GError       **error)
{
  DvtTask *batch;
  DvtMap *map = NULL;
  GArray *results = NULL;
  DvtForkGate gate;

  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, NULL, error))
    return NULL;

  if (!check_map_args (n_items, options, error) ||
      !dvt_core_check_blocking (dvt_runtime_get_core (self), error))
    {
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return NULL;
    }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  batch = map_start (self, n_items, func, func_data, func_data_destroy, options,
                     cancellable, NULL, NULL, &map, error);
  if (batch == NULL)
    {
      dvt_fork_gate_leave (gate);
      return NULL;
    }

  dvt_fork_gate_set (DVT_FORK_GATE_OUT);
  if (dvt_task_wait_internal (batch, -1, error))
    results = dvt_task_propagate_pointer (batch, error);
  dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
  map_release_func_data (map);
  map_unref (map);
  g_object_unref (batch);
  dvt_fork_gate_leave (gate);

  return results;
}

/**
 * dvt_runtime_map_async:
 * @self: a runtime
 * @n_items: how many items
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   computes one item
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data once the map is done
 *   with it, on the same context as @callback
 * @options: (nullable): options, as for [method@Runtime.map_blocking]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the caller's
 *   thread-default context once the map has ended
 * @user_data: data for @callback
 *
 * Starts [method@Runtime.map_blocking] without blocking. @callback runs on
 * the caller's thread-default context; call [method@Runtime.map_finish]
 * there.
 *
 * From a language that runs only on its own thread (GJS), set
 * [property@Options:async-items] and [property@Options:use-caller-context]
 * so that @func runs on the caller's context.
 *
 * A GTK application follows the map with the runtime's
 * [signal@Runtime::progress] signal (delivered on the runtime's
 * [property@Runtime:event-context], its main context) and cancels it
 * with @cancellable:
 *
 * ```c
 * static void
 * on_progress (DvtRuntime *runtime, DvtTask *task, guint done, guint total, gpointer bar)
 * {
 *   gtk_progress_bar_set_fraction (bar, (double) done / total);
 * }
 *
 * static void
 * on_mapped (GObject *source, GAsyncResult *result, gpointer user_data)
 * {
 *   g_autoptr(GError) error = NULL;
 *   g_autoptr(GArray) sums = dvt_runtime_map_finish (DVT_RUNTIME (source), result, &error);
 *   // on the main thread: show sums, or error (G_IO_ERROR_CANCELLED after Cancel)
 * }
 *
 * g_signal_connect (runtime, "progress", G_CALLBACK (on_progress), progress_bar);
 * dvt_runtime_map_async (runtime, paths->len, checksum_item, paths, NULL,
 *                        options, cancellable, on_mapped, NULL);
 * ```
 *
 * `examples/gtk-checksum.c` is a complete application.
 */
void
dvt_runtime_map_async (DvtRuntime          *self,
                       guint                n_items,
                       DvtMapFunc           func,
                       gpointer             func_data,
                       GDestroyNotify       func_data_destroy,
                       DvtOptions          *options,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  DvtTask *batch;
  GError *error = NULL;
  DvtForkGate gate;

  if (!dvt_runtime_check_call (G_STRFUNC, self, func, options, cancellable, NULL, NULL))
    return;

  if (!check_map_args (n_items, options, &error))
    {
      batch = dvt_task_new (dvt_runtime_get_core (self), DVT_TASK_KIND_BATCH, options, NULL);
      dvt_task_set_callback (batch, callback, user_data, dvt_runtime_map_async);
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      dvt_task_fail (batch, error, TRUE);
      g_object_unref (batch);
      return;
    }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  batch = map_start (self, n_items, func, func_data, func_data_destroy,
                     options, cancellable, callback, user_data, NULL, NULL);
  g_clear_pointer (&batch, dvt_task_unref_gated);
  dvt_fork_gate_leave (gate);
}

/**
 * dvt_runtime_map_finish:
 * @self: a runtime
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Runtime.map_async].
 *
 * Returns: (transfer full) (element-type GValue): the results in index
 *   order, or %NULL with @error set
 */
GArray *
dvt_runtime_map_finish (DvtRuntime    *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  if (!dvt_runtime_check_finish (G_STRFUNC, self, result, dvt_runtime_map_async, NULL, error))
    return NULL;

  return dvt_task_propagate_pointer (DVT_TASK (result), error);
}

/**
 * dvt_runtime_get_map_runners:
 * @self: a runtime
 * @n_items: how many items the map has
 * @options: (nullable): the options the map will be started with
 *
 * Tells a binding among how many runner tasks it may share the items of a
 * map of @n_items items started now with @options, or that each item must
 * be a task of its own.
 *
 * A binding whose items are costly to enter one at a time (an interpreter
 * entered once per item) may start [method@Runtime.map_blocking] with as
 * many items as this returns instead, each a runner that computes runs of
 * the real items in a loop; each item keeps its meaning (its result in its
 * slot, its failure failing the map or filling its slot) as long as the
 * runners check for a failure or a cancellation between items.
 *
 * Each item must be a task of its own, and 0 is returned, when a policy
 * applies to each item (a timeout, retries, gates or the runtime's rate
 * limit: see [method@Runtime.has_task_policy]), when @options has
 * [property@Options:async-items] or [property@Options:use-caller-context]
 * set, or while a handler of [signal@Runtime::progress] is connected (it
 * would count runners rather than items). Otherwise the map's own items
 * would run on as many runners: @n_items, at most
 * [property@Runtime:max-workers] and at most
 * [property@Options:max-concurrency] (0 counting as 1).
 *
 * Returns: how many runners may share the items; 0 if each item must be
 *   a task of its own, or if @n_items is 0
 *
 * Since: 0.3
 */
guint
dvt_runtime_get_map_runners (DvtRuntime *self,
                             guint       n_items,
                             DvtOptions *options)
{
  guint progress;

  g_return_val_if_fail (DVT_IS_RUNTIME (self), 0);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), 0);

  if (n_items == 0 || dvt_runtime_resolve_task_policy (self, options, NULL))
    return 0;
  if (options != NULL &&
      (dvt_options_get_async_items (options) || dvt_options_get_use_caller_context (options)))
    return 0;
  progress = dvt_events_signal_id (DVT_EVENT_SIGNALS_RUNTIME, DVT_EVENT_PROGRESS);
  if (g_signal_has_handler_pending (self, progress, 0, FALSE))
    return 0;

  return count_runners (self, options, n_items);
}

/* ---- gather ------------------------------------------------------------ */

typedef struct
{
  int           ref_count;
  DvtLatch      done;
  int           remaining;  /* atomic */
  int           failed;     /* atomic */
  int           cancelled;  /* atomic */
  gboolean      return_errors;
  DvtTask      *first_failed;
  GMainContext *wake;       /* a context the waiter iterates, if any */
} DvtGather;

static void
gather_unref (DvtGather *gather)
{
  if (!g_atomic_int_dec_and_test (&gather->ref_count))
    return;

  dvt_latch_clear (&gather->done);
  g_clear_object (&gather->first_failed);
  g_clear_pointer (&gather->wake, g_main_context_unref);
  g_free (gather);
}

static void
gather_signal (DvtGather *gather)
{
  dvt_latch_set (&gather->done);
  if (gather->wake != NULL)
    g_main_context_wakeup (gather->wake);
}

static void
gather_task_done (DvtTask  *task,
                  gpointer  data)
{
  DvtGather *gather = data;

  if (task->result.error != NULL && !gather->return_errors &&
      g_atomic_int_compare_and_exchange (&gather->failed, 0, 1))
    {
      gather->first_failed = g_object_ref (task);
      gather_signal (gather);
    }

  if (g_atomic_int_dec_and_test (&gather->remaining))
    gather_signal (gather);

  gather_unref (gather);
}

/* Cancels the tasks of a gather that have not started (@waiting) or all
 * the others. The waiting ones go first: cancelling a running task frees
 * its worker, which must not pick up one of them meanwhile. */
static void
gather_cancel (DvtTask * const *tasks,
               guint            n_tasks,
               gboolean         waiting)
{
  for (guint i = 0; i < n_tasks; i++)
    {
      DvtTaskState state = dvt_task_get_state (tasks[i]);
      gboolean is_waiting = state == DVT_TASK_NEW || state == DVT_TASK_QUEUED ||
                            state == DVT_TASK_RETRYING;

      if (is_waiting == waiting)
        dvt_task_cancel (tasks[i]);
    }
}

/* The results of ended @tasks, in order: each value, or each error as a
 * G_TYPE_ERROR value. */
static GArray *
gather_results (DvtTask * const *tasks,
                guint            n_tasks)
{
  GArray *results = new_results (n_tasks);

  for (guint i = 0; i < n_tasks; i++)
    {
      GValue *slot = &g_array_index (results, GValue, i);
      GError *task_error = NULL;

      if (!dvt_task_propagate_value (tasks[i], slot, &task_error))
        {
          g_value_unset (slot);
          g_value_init (slot, G_TYPE_ERROR);
          g_value_take_boxed (slot, task_error);
        }
    }

  return results;
}

/* Waits until the gather is done or the monotonic time @until (-1: no
 * limit), iterating @iterate if given. Returns whether it is done. */
static gboolean
gather_wait (DvtGather    *gather,
             GMainContext *iterate,
             gint64        until)
{
  if (iterate == NULL)
    return dvt_latch_wait (&gather->done, until);

  return dvt_latch_wait_iterating (&gather->done, iterate, until);
}

static void
gather_cancelled (GCancellable *cancellable,
                  DvtGather    *gather)
{
  g_atomic_int_set (&gather->cancelled, 1);
  gather_signal (gather);
}

/**
 * dvt_runtime_gather_blocking:
 * @self: a runtime
 * @tasks: (array length=n_tasks): the tasks to wait for, from any runtime
 * @n_tasks: the number of tasks
 * @options: (nullable): [property@Options:return-errors] applies
 * @cancellable: (nullable): cancelling it cancels the tasks that have not
 *   ended and fails the call with %G_IO_ERROR_CANCELLED
 * @error: return location for a #GError
 *
 * Waits until all @tasks have ended and returns their results in the order
 * of @tasks.
 *
 * With [property@Options:return-errors], a failed task puts its #GError
 * (a %G_TYPE_ERROR value) in its slot. Otherwise the first failure is
 * reported as soon as it happens: tasks that have not started are
 * cancelled, and tasks already running go on.
 *
 * Pointer results move from the tasks to the returned array.
 *
 * ```c
 * DvtTask *tasks[2];
 * g_autoptr(GArray) results = NULL;
 *
 * tasks[0] = dvt_runtime_submit (runtime, fetch_user, NULL, NULL, NULL, NULL, &error);
 * tasks[1] = dvt_runtime_submit (runtime, fetch_settings, NULL, NULL, NULL, NULL, &error);
 * results = dvt_runtime_gather_blocking (runtime, tasks, 2, NULL, NULL, &error);
 * // results: tasks[0]'s value, then tasks[1]'s, whichever ended first
 * g_object_unref (tasks[0]);
 * g_object_unref (tasks[1]);
 * ```
 *
 * Returns: (transfer full) (element-type GValue): the results, or %NULL
 *   with @error set
 */
GArray *
dvt_runtime_gather_blocking (DvtRuntime      *self,
                             DvtTask * const *tasks,
                             guint            n_tasks,
                             DvtOptions      *options,
                             GCancellable    *cancellable,
                             GError         **error)
{
  DvtGather *gather;
  GArray *results = NULL;
  gulong handler = 0;
  GMainContext *iterate = NULL;
  gint64 start = g_get_monotonic_time ();
  gint64 item_end, deadline;
  gboolean expired;
  DvtForkGate gate;

  dvt_return_val_if_fail_error (DVT_IS_RUNTIME (self), NULL, error);
  dvt_return_val_if_fail_error (tasks != NULL || n_tasks == 0, NULL, error);
  dvt_return_val_if_fail_error (options == NULL || DVT_IS_OPTIONS (options), NULL, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  for (guint i = 0; i < n_tasks; i++)
    dvt_return_val_if_fail_error (DVT_IS_TASK (tasks[i]) &&
                          tasks[i]->kind != DVT_TASK_KIND_ITEM, NULL, error);

  if (n_tasks == 0)
    return new_results (0);

  if (!dvt_core_check_blocking (dvt_runtime_get_core (self), error))
    return NULL;
  for (guint i = 0; i < n_tasks; i++)
    if (!dvt_task_get_completed (tasks[i]) &&
        (!dvt_core_check_blocking (dvt_task_core (tasks[i]), error) ||
         !dvt_task_check_wait (tasks[i], error)))
      return NULL;

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  gather = g_new0 (DvtGather, 1);
  gather->ref_count = 1 + (int) n_tasks;
  gather->remaining = (int) n_tasks;
  gather->return_errors = options != NULL && dvt_options_get_return_errors (options);
  dvt_latch_init (&gather->done);

  /* Async work bound to a context this thread can run is driven from here. */
  for (guint i = 0; i < n_tasks && iterate == NULL; i++)
    {
      GMainContext *run_context = DVT_TASK_EXTRA (tasks[i], run_context, NULL);

      if (run_context != NULL && !dvt_task_get_completed (tasks[i]) &&
          g_main_context_acquire (run_context))
        iterate = run_context;
    }
  if (iterate != NULL)
    gather->wake = g_main_context_ref (iterate);

  for (guint i = 0; i < n_tasks; i++)
    dvt_task_add_done_hook (tasks[i], gather_task_done, gather);

  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (gather_cancelled),
                                     gather, NULL);

  /* The items' timeout runs from now; so does the whole call's deadline.
   * The runtime's default timeout applied to each task when it was
   * submitted, and never caps the gather. */
  item_end = options != NULL && dvt_options_get_timeout (options) > 0
             ? start + (gint64) (dvt_options_get_timeout (options) * G_USEC_PER_SEC) : -1;
  deadline = options != NULL && dvt_options_get_deadline (options) > 0
             ? start + (gint64) (dvt_options_get_deadline (options) * G_USEC_PER_SEC) : -1;

  dvt_fork_gate_set (DVT_FORK_GATE_OUT);
  if (item_end >= 0 && (deadline < 0 || item_end < deadline))
    {
      if (!gather_wait (gather, iterate, item_end))
        for (guint i = 0; i < n_tasks; i++)
          dvt_task_expire (tasks[i], item_end - start);
    }
  expired = !gather_wait (gather, iterate, deadline);

  if (iterate != NULL)
    g_main_context_release (iterate);

  /* Cancellations and copies of the results may call the application. */
  dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);

  if (expired)
    {
      double seconds = dvt_options_get_deadline (options);

      gather_cancel (tasks, n_tasks, TRUE);
      gather_cancel (tasks, n_tasks, FALSE);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   g_dngettext (GETTEXT_PACKAGE,
                                "The gather did not finish"
                                " within its deadline of %g second",
                                "The gather did not finish"
                                " within its deadline of %g seconds",
                                dvt_i18n_plural_count (seconds)),
                   seconds);
    }
  else if (g_atomic_int_get (&gather->cancelled) && g_atomic_int_get (&gather->remaining) > 0)
    {
      gather_cancel (tasks, n_tasks, TRUE);
      gather_cancel (tasks, n_tasks, FALSE);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("The gather was cancelled"));
    }
  else if (g_atomic_int_get (&gather->failed))
    {
      for (guint i = 0; i < n_tasks; i++)
        {
          DvtTask *task = tasks[i];

          DvtTaskState state = dvt_task_get_state (task);

          if (state == DVT_TASK_QUEUED || state == DVT_TASK_NEW ||
              state == DVT_TASK_RETRYING)
            dvt_task_cancel (task);
        }
      g_propagate_error (error, g_error_copy (gather->first_failed->result.error));
    }
  else
    results = gather_results (tasks, n_tasks);

  gather_unref (gather);
  dvt_fork_gate_leave (gate);

  return results;
}

/* ---- gather from a main loop ------------------------------------------------ */

/* One dvt_runtime_gather_async(). Whatever ends it first claims it: the
 * last task's end, a failure, the deadline, the cancellable. */
typedef struct
{
  int            ref_count;
  int            claimed;      /* atomic */
  int            remaining;    /* atomic */
  GTask         *gtask;        /* until claimed */
  DvtTask      **tasks;        /* held */
  guint          n_tasks;
  gboolean       return_errors;
  gint64         start;
  double         timeout;      /* each task's, from the start */
  double         deadline;     /* the whole call's */
  GMainContext  *timer_context;
  GSource       *item_timer;   /* under timer_lock */
  GSource       *deadline_timer;
  GMutex         timer_lock;
  GCancellable  *cancellable;
  gulong         handler;
} GatherOp;

static GatherOp *
gather_op_ref (GatherOp *op)
{
  g_atomic_int_inc (&op->ref_count);
  return op;
}

static void
gather_op_unref (gpointer data)
{
  GatherOp *op = data;

  if (!g_atomic_int_dec_and_test (&op->ref_count))
    return;

  g_assert (op->gtask == NULL && op->item_timer == NULL && op->deadline_timer == NULL);
  for (guint i = 0; i < op->n_tasks; i++)
    g_object_unref (op->tasks[i]);
  g_free (op->tasks);
  g_clear_pointer (&op->timer_context, g_main_context_unref);
  g_clear_object (&op->cancellable);
  g_mutex_clear (&op->timer_lock);
  g_free (op);
}

static void
gather_op_stop_timers (GatherOp *op)
{
  GSource *timers[2];

  g_mutex_lock (&op->timer_lock);
  timers[0] = g_steal_pointer (&op->item_timer);
  timers[1] = g_steal_pointer (&op->deadline_timer);
  g_mutex_unlock (&op->timer_lock);

  for (guint i = 0; i < G_N_ELEMENTS (timers); i++)
    if (timers[i] != NULL)
      {
        g_source_destroy (timers[i]);
        g_source_unref (timers[i]);
      }
}

/* Claims the gather: returns its GTask (the caller completes it) or NULL
 * if something else ended it. @in_handler: called from the cancellable's
 * handler, which must not disconnect itself. */
static GTask *
gather_op_claim (GatherOp *op,
                 gboolean  in_handler)
{
  GTask *gtask;
  gulong handler;

  if (!g_atomic_int_compare_and_exchange (&op->claimed, 0, 1))
    return NULL;

  gtask = g_steal_pointer (&op->gtask);
  gather_op_stop_timers (op);
  handler = op->handler;
  op->handler = 0;
  if (handler != 0 && !in_handler)
    g_cancellable_disconnect (op->cancellable, handler);

  return gtask;
}

/* Ends the gather with @error (owned), cancelling its unfinished tasks:
 * those not started first, as the blocking call does. */
static void
gather_op_fail (GatherOp *op,
                GError   *error,
                gboolean  in_handler,
                gboolean  cancel_running)
{
  g_autoptr(GTask) gtask = gather_op_claim (op, in_handler);

  if (gtask == NULL)
    {
      g_error_free (error);
      return;
    }

  gather_cancel (op->tasks, op->n_tasks, TRUE);
  if (cancel_running)
    gather_cancel (op->tasks, op->n_tasks, FALSE);
  g_task_return_error (gtask, error);
}

static void
gather_op_task_done (DvtTask  *task,
                     gpointer  data)
{
  GatherOp *op = data;

  if (task->result.error != NULL && !op->return_errors)
    gather_op_fail (op, g_error_copy (task->result.error), FALSE, FALSE);

  if (g_atomic_int_dec_and_test (&op->remaining))
    {
      g_autoptr(GTask) gtask = gather_op_claim (op, FALSE);

      if (gtask != NULL)
        g_task_return_pointer (gtask, gather_results (op->tasks, op->n_tasks),
                               (GDestroyNotify) g_array_unref);
    }

  gather_op_unref (op);
}

static void
gather_op_cancelled (GCancellable *cancellable,
                     GatherOp     *op)
{
  gather_op_fail (op, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           _("The gather was cancelled")),
                  TRUE, TRUE);
}

static gboolean
gather_op_deadline (gpointer data)
{
  GatherOp *op = data;

  gather_op_fail (op, g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                   g_dngettext (GETTEXT_PACKAGE,
                                                "The gather did not finish"
                                                " within its deadline of %g second",
                                                "The gather did not finish"
                                                " within its deadline of %g seconds",
                                                dvt_i18n_plural_count (op->deadline)),
                                   op->deadline),
                  FALSE, TRUE);

  return G_SOURCE_REMOVE;
}

/* Each task's timeout, counted from the gather's start: the tasks still
 * running time out (and, without return-errors, fail the gather). */
static gboolean
gather_op_item_timeout (gpointer data)
{
  GatherOp *op = data;
  gint64 timeout = (gint64) (op->timeout * G_USEC_PER_SEC);

  for (guint i = 0; i < op->n_tasks; i++)
    dvt_task_expire (op->tasks[i], timeout);

  return G_SOURCE_REMOVE;
}

static GSource *
gather_op_timer (GatherOp    *op,
                 double       seconds,
                 GSourceFunc  func)
{
  GSource *source = g_timeout_source_new ((guint) MIN (seconds * 1000 + 0.999, (double) G_MAXUINT));

  g_source_set_callback (source, func, gather_op_ref (op), gather_op_unref);
  g_source_set_static_name (source, "[dovetail] gather timer");
  g_source_attach (source, op->timer_context);

  return source;
}

/**
 * dvt_runtime_gather_async:
 * @self: a runtime
 * @tasks: (array length=n_tasks): the tasks to wait for, from any runtime
 * @n_tasks: the number of tasks
 * @options: (nullable): [property@Options:return-errors],
 *   [property@Options:timeout] and [property@Options:deadline] apply
 * @cancellable: (nullable): cancelling it cancels the tasks that have not
 *   ended and fails the call with %G_IO_ERROR_CANCELLED
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once the gather has
 *   ended
 * @user_data: data for @callback
 *
 * The main-loop twin of [method@Runtime.gather_blocking], with the same
 * results, errors and cancellations; call [method@Runtime.gather_finish]
 * in @callback.
 *
 * Since: 0.2
 */
void
dvt_runtime_gather_async (DvtRuntime          *self,
                          DvtTask * const     *tasks,
                          guint                n_tasks,
                          DvtOptions          *options,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GatherOp *op;
  GTask *gtask;
  DvtForkGate gate;

  g_return_if_fail (DVT_IS_RUNTIME (self));
  g_return_if_fail (tasks != NULL || n_tasks == 0);
  g_return_if_fail (options == NULL || DVT_IS_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  for (guint i = 0; i < n_tasks; i++)
    g_return_if_fail (DVT_IS_TASK (tasks[i]) && tasks[i]->kind != DVT_TASK_KIND_ITEM);

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, dvt_runtime_gather_async);
  g_task_set_name (gtask, "[dovetail] dvt_runtime_gather_async");
  g_task_set_check_cancellable (gtask, FALSE);
  if (n_tasks == 0)
    {
      g_task_return_pointer (gtask, new_results (0), (GDestroyNotify) g_array_unref);
      g_object_unref (gtask);
      return;
    }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  op = g_new0 (GatherOp, 1);
  op->ref_count = 1;
  op->gtask = gtask;
  op->remaining = (int) n_tasks;
  op->n_tasks = n_tasks;
  op->tasks = g_new (DvtTask *, n_tasks);
  for (guint i = 0; i < n_tasks; i++)
    op->tasks[i] = g_object_ref (tasks[i]);
  op->return_errors = options != NULL && dvt_options_get_return_errors (options);
  op->start = g_get_monotonic_time ();
  op->timeout = options != NULL ? dvt_options_get_timeout (options) : -1;
  op->deadline = options != NULL ? dvt_options_get_deadline (options) : -1;
  op->timer_context = g_main_context_ref (dvt_runtime_get_context (self));
  g_mutex_init (&op->timer_lock);

  /* The timers first: a task may end the gather as soon as it is hooked. */
  g_mutex_lock (&op->timer_lock);
  if (op->timeout > 0 && (op->deadline <= 0 || op->timeout < op->deadline))
    op->item_timer = gather_op_timer (op, op->timeout, gather_op_item_timeout);
  if (op->deadline > 0)
    op->deadline_timer = gather_op_timer (op, op->deadline, gather_op_deadline);
  g_mutex_unlock (&op->timer_lock);

  if (cancellable != NULL)
    {
      op->cancellable = g_object_ref (cancellable);
      /* Runs at once if it is cancelled already. */
      op->handler = g_cancellable_connect (cancellable, G_CALLBACK (gather_op_cancelled),
                                           gather_op_ref (op), gather_op_unref);
    }

  for (guint i = 0; i < n_tasks; i++)
    dvt_task_add_done_hook (op->tasks[i], gather_op_task_done, gather_op_ref (op));

  gather_op_unref (op);
  dvt_fork_gate_leave (gate);
}

/**
 * dvt_runtime_gather_finish:
 * @self: a runtime
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Runtime.gather_async].
 *
 * Returns: (transfer full) (element-type GValue): the results in the
 *   order of the tasks, or %NULL with @error set
 *
 * Since: 0.2
 */
GArray *
dvt_runtime_gather_finish (DvtRuntime    *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_RUNTIME (self), NULL, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, self), NULL, error);
  dvt_return_val_if_fail_error (g_task_get_source_tag (G_TASK (result)) ==
                                dvt_runtime_gather_async, NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
