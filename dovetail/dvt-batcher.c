/* dvt-batcher.c: items added from any thread, run in batches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <math.h>

#include <glib/gi18n-lib.h>

#include "dvt-batcher.h"
#include "dvt-error-private.h"
#include "dvt-options.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"

/**
 * DvtBatcher:
 *
 * Collects items added from any thread and hands them, in batches, to a
 * [callback@BatchFunc] run as a task of a runtime (async-utils'
 * "waterfall").
 *
 * A batch is dispatched when it holds [property@Batcher:max-items] items,
 * or when [property@Batcher:max-wait] seconds have passed since its first
 * item was added, whichever comes first (the timer runs on the runtime's
 * loop thread: no thread sleeps). [method@Batcher.flush] dispatches what
 * is pending at once.
 *
 * Each batch runs on a worker as a task of the runtime, with the options
 * given to [ctor@Batcher.new]: a timeout, retries (the function is called
 * again with the same items), a name; the runtime's signals and counters
 * see every batch. Batches may run at the same time, within the runtime's
 * [property@Runtime:max-workers]. The items reach the function as a
 * #GPtrArray of #GValue pointers, in the order they were added: bindings
 * see a list of values.
 *
 * [method@Batcher.close_blocking] (or [method@Batcher.close_async]) closes
 * the batcher: later adds fail with %DVT_ERROR_CLOSED, what is pending is
 * dispatched, and the call waits until every batch has ended. It reports
 * the first failure of any batch of the batcher. Close a batcher before
 * you drop it: items still pending when it is finalized are dropped.
 *
 * A shutdown of the runtime closes its batchers: the items pending are
 * dropped (close then reports %DVT_ERROR_CLOSED), and the batches running
 * end as the shutdown has them end.
 *
 * ```c
 * static void
 * store_rows (DvtTask *task, GPtrArray *items, GCancellable *cancellable,
 *             gpointer db, GError **error)
 * {
 *   for (guint i = 0; i < items->len; i++)
 *     insert_row (db, g_value_get_string (g_ptr_array_index (items, i)));
 *   commit (db, error);
 * }
 *
 * g_autoptr(DvtBatcher) batcher = dvt_batcher_new (runtime, store_rows, db, NULL,
 *                                                  100, 0.5, NULL, &error);
 * // any thread:
 * dvt_batcher_add (batcher, &row, &error);
 * // at the end:
 * dvt_batcher_close_blocking (batcher, 0, NULL, &error);
 * ```
 *
 * Since: 0.2
 */

struct _DvtBatcher
{
  GObject           parent_instance;

  DvtRuntime       *runtime;
  DvtBatchFunc      func;
  gpointer          func_data;
  GDestroyNotify    func_data_destroy;
  DvtOptions       *options;
  guint             max_items;
  double            max_wait;
  DvtShutdownWatch *watch;

  GMutex            lock;
  GCond             idle_cond;     /* n_running fell to 0 */
  GArray           *pending;       /* GValue, owned; NULL when empty */
  GSource          *timer;         /* while armed; holds the batcher */
  gint64            pending_since; /* when the pending batch's first item came */
  guint             n_running;     /* batches taken and not yet ended */
  int               closed;        /* atomic, set under lock */
  gboolean          shut_down;
  GError           *first_error;   /* of any batch */
  GSList           *close_waiters; /* GTask of close_async(), held */
};

enum
{
  PROP_0,
  PROP_MAX_ITEMS,
  PROP_MAX_WAIT,
  PROP_N_PENDING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtBatcher, dvt_batcher, G_TYPE_OBJECT)

static void
value_clear (gpointer data)
{
  g_value_unset (data);
}

static void
dvt_batcher_finalize (GObject *object)
{
  DvtBatcher *self = DVT_BATCHER (object);

  /* Running batches and an armed timer hold the batcher. */
  g_assert (self->timer == NULL && self->close_waiters == NULL);

  if (self->runtime != NULL)
    dvt_runtime_unwatch_shutdown (self->runtime, self->watch);
  g_clear_pointer (&self->pending, g_array_unref);
  if (self->func_data_destroy != NULL)
    self->func_data_destroy (self->func_data);
  g_clear_object (&self->options);
  g_clear_object (&self->runtime);
  g_clear_error (&self->first_error);
  g_cond_clear (&self->idle_cond);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (dvt_batcher_parent_class)->finalize (object);
}

static void
dvt_batcher_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  DvtBatcher *self = DVT_BATCHER (object);

  switch (prop_id)
    {
    case PROP_MAX_ITEMS:
      g_value_set_uint (value, self->max_items);
      break;
    case PROP_MAX_WAIT:
      g_value_set_double (value, self->max_wait);
      break;
    case PROP_N_PENDING:
      g_value_set_uint (value, dvt_batcher_get_n_pending (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_batcher_class_init (DvtBatcherClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dvt_batcher_finalize;
  object_class->get_property = dvt_batcher_get_property;

  /**
   * DvtBatcher:max-items:
   *
   * The most items in a batch: a batch is dispatched as soon as it has
   * that many.
   *
   * Since: 0.2
   */
  properties[PROP_MAX_ITEMS] =
    g_param_spec_uint ("max-items", NULL, NULL,
                       0, G_MAXINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * DvtBatcher:max-wait:
   *
   * The most seconds a batch waits after its first item before it is
   * dispatched; 0: no limit (a batch waits until it is full, flushed or
   * the batcher is closed).
   *
   * Since: 0.2
   */
  properties[PROP_MAX_WAIT] =
    g_param_spec_double ("max-wait", NULL, NULL,
                         0, G_MAXDOUBLE, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * DvtBatcher:n-pending:
   *
   * How many items wait for their batch to be dispatched. Never
   * notified: read it when you need it.
   *
   * Since: 0.2
   */
  properties[PROP_N_PENDING] =
    g_param_spec_uint ("n-pending", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_batcher_init (DvtBatcher *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->idle_cond);
}

/* ---- batches -------------------------------------------------------------------- */

typedef struct
{
  DvtBatcher *batcher;
  GArray     *values;   /* the items' storage */
  GPtrArray  *items;    /* pointers into it, for the function */
} Batch;

static void
batch_free (gpointer data)
{
  Batch *batch = data;

  g_ptr_array_unref (batch->items);
  g_array_unref (batch->values);
  g_object_unref (batch->batcher);
  g_free (batch);
}

static void
run_batch (DvtTask       *task,
           GCancellable  *cancellable,
           gpointer       data,
           GError       **error)
{
  Batch *batch = data;
  DvtBatcher *self = batch->batcher;
  GError *local = NULL;

  self->func (task, batch->items, cancellable, self->func_data, &local);

  if (local != NULL)
    g_propagate_error (error, local);
  else if (!dvt_task_get_completed (task))
    dvt_task_return_boolean (task, TRUE);
}

/* With the lock held: takes the pending batch (NULL if none), which
 * counts as running from here. With @timer, also the timer, which the
 * caller destroys once it has released the lock. */
static GArray *
take_pending_locked (DvtBatcher  *self,
                     GSource    **timer)
{
  GArray *items = g_steal_pointer (&self->pending);

  if (timer != NULL)
    *timer = g_steal_pointer (&self->timer);
  if (items != NULL)
    self->n_running++;

  return items;
}

static void
destroy_timer (GSource *timer)
{
  if (timer != NULL)
    {
      g_source_destroy (timer);
      g_source_unref (timer);
    }
}

static void complete_waiters (GSList *waiters, const GError *error);

/* A batch has ended (or could not start), with @error (taken) or none. */
static void
batch_ended (DvtBatcher *self,
             GError     *error)
{
  GSList *waiters = NULL;
  GError *first = NULL;

  g_mutex_lock (&self->lock);
  if (error != NULL && self->first_error == NULL)
    self->first_error = g_steal_pointer (&error);
  if (--self->n_running == 0)
    {
      g_cond_broadcast (&self->idle_cond);
      if (self->closed)
        {
          waiters = g_steal_pointer (&self->close_waiters);
          if (self->first_error != NULL)
            first = g_error_copy (self->first_error);
        }
    }
  g_mutex_unlock (&self->lock);

  g_clear_error (&error);
  complete_waiters (waiters, first);
  g_clear_error (&first);
}

static void
on_batch_done (DvtTask  *task,
               gpointer  data)
{
  DvtBatcher *self = data;
  g_auto(GValue) value = G_VALUE_INIT;
  GError *error = NULL;

  if (dvt_task_had_error (task))
    dvt_task_propagate_value (task, &value, &error);
  batch_ended (self, error);
  g_object_unref (self);
}

/* Runs @values (taken, counted as running) as a task; returns the task. */
static DvtTask *
dispatch (DvtBatcher *self,
          GArray     *values)
{
  GError *error = NULL;
  Batch *batch;
  DvtTask *task;

  batch = g_new0 (Batch, 1);
  batch->batcher = g_object_ref (self);
  batch->values = values;
  batch->items = g_ptr_array_sized_new (values->len);
  for (guint i = 0; i < values->len; i++)
    g_ptr_array_add (batch->items, &g_array_index (values, GValue, i));

  task = dvt_runtime_submit (self->runtime, run_batch, batch, batch_free,
                             self->options, NULL, &error);
  if (task == NULL)
    {
      batch_ended (self, error);
      return NULL;
    }

  dvt_task_add_done_hook (task, on_batch_done, g_object_ref (self));
  return task;
}

/* The timer: armed by the first item of a batch when none is armed, it
 * fires when the oldest pending batch is due, dispatches it if it still
 * waits, and re-arms itself for the batch pending then, if any. A batch
 * dispatched because it was full leaves the timer alone: with batches that
 * fill up quickly the timer fires once per max-wait, not once per batch. */

static gint64
wait_usec (DvtBatcher *self)
{
  return (gint64) (self->max_wait * G_USEC_PER_SEC + 0.999);
}

static gboolean
timer_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     data)
{
  return callback (data);
}

static GSourceFuncs timer_funcs = { NULL, NULL, timer_dispatch, NULL, NULL, NULL };

static gboolean
on_timer (gpointer data)
{
  DvtBatcher *self = data;
  GArray *items = NULL;
  GSource *timer = NULL;
  gboolean keep = FALSE;

  g_mutex_lock (&self->lock);
  if (self->timer != NULL)   /* else destroyed meanwhile */
    {
      if (self->pending != NULL &&
          g_get_monotonic_time () >= self->pending_since + wait_usec (self))
        items = take_pending_locked (self, NULL);
      if (self->pending != NULL)
        {
          g_source_set_ready_time (self->timer, self->pending_since + wait_usec (self));
          keep = TRUE;
        }
      else
        timer = g_steal_pointer (&self->timer);
    }
  g_mutex_unlock (&self->lock);

  /* Returning FALSE destroys it. */
  g_clear_pointer (&timer, g_source_unref);
  if (items != NULL)
    {
      DvtTask *task = dispatch (self, items);

      g_clear_object (&task);
    }

  return keep;
}

/* With the lock held: a batch has its first item. */
static void
arm_timer_locked (DvtBatcher *self)
{
  if (self->timer != NULL || self->max_wait <= 0 || self->max_wait >= G_MAXINT64 / 4 / G_USEC_PER_SEC)
    return;

  self->timer = g_source_new (&timer_funcs, sizeof (GSource));
  g_source_set_static_name (self->timer, "[dovetail] batcher max-wait");
  g_source_set_callback (self->timer, on_timer, g_object_ref (self), g_object_unref);
  g_source_set_ready_time (self->timer, self->pending_since + wait_usec (self));
  g_source_attach (self->timer, dvt_runtime_get_context (self->runtime));
}

static void
on_runtime_shutdown (GObject *object)
{
  DvtBatcher *self = DVT_BATCHER (object);
  GArray *items;
  GSource *timer = NULL;

  g_mutex_lock (&self->lock);
  g_atomic_int_set (&self->closed, TRUE);
  self->shut_down = TRUE;
  items = take_pending_locked (self, &timer);
  if (items != NULL)
    self->n_running--;   /* never runs */
  if (items != NULL && self->first_error == NULL)
    self->first_error = g_error_new (DVT_ERROR, DVT_ERROR_CLOSED,
                                     g_dngettext (GETTEXT_PACKAGE,
                                                  "The runtime was shut down before %u item was run",
                                                  "The runtime was shut down before %u items were run",
                                                  items->len),
                                     items->len);
  g_mutex_unlock (&self->lock);

  destroy_timer (timer);
  g_clear_pointer (&items, g_array_unref);
}

/* ---- construction --------------------------------------------------------------- */

/**
 * dvt_batcher_new:
 * @runtime: the runtime whose tasks run the batches
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   handles one batch
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data once the batcher is
 *   finalized
 * @max_items: the most items in a batch, at least 1
 * @max_wait: the most seconds a batch waits after its first item, 0 for
 *   no limit
 * @options: (nullable): options of every batch's task (a timeout,
 *   retries, a name)
 * @error: return location for a #GError
 *
 * Creates a batcher. See [class@Batcher].
 *
 * Returns: (transfer full) (nullable): the batcher, or %NULL with
 *   %DVT_ERROR_INVALID_ARGUMENT if @max_items is less than 1 or @max_wait
 *   is negative or NaN, or %DVT_ERROR_CLOSED if the runtime was shut down
 *
 * Since: 0.2
 */
DvtBatcher *
dvt_batcher_new (DvtRuntime      *runtime,
                 DvtBatchFunc     func,
                 gpointer         func_data,
                 GDestroyNotify   func_data_destroy,
                 int              max_items,
                 double           max_wait,
                 DvtOptions      *options,
                 GError         **error)
{
  DvtBatcher *self;

  if (!dvt_runtime_check_call (G_STRFUNC, runtime, func, options, NULL, NULL, error))
    return NULL;

  if (max_items < 1 || !(max_wait >= 0))
    {
      if (max_items < 1)
        g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                     _("A batch must hold at least 1 item, not %d"), max_items);
      else
        g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                     _("The longest wait of a batch must be 0 or more seconds, not %g"),
                     max_wait);
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return NULL;
    }

  self = g_object_new (DVT_TYPE_BATCHER, NULL);
  self->runtime = g_object_ref (runtime);
  self->func = func;
  self->func_data = func_data;
  self->func_data_destroy = func_data_destroy;
  self->options = options != NULL ? dvt_options_copy (options) : NULL;
  self->max_items = (guint) max_items;
  self->max_wait = isinf (max_wait) ? 0 : max_wait;
  self->watch = dvt_runtime_watch_shutdown (runtime, G_OBJECT (self), on_runtime_shutdown);
  if (self->watch == NULL)
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The runtime has been shut down and accepts no "
                             "more work"));
      g_object_unref (self);
      return NULL;
    }

  return self;
}

/**
 * dvt_batcher_get_max_items:
 * @batcher: a batcher
 *
 * Gets the most items of a batch of @batcher.
 *
 * Returns: the most items in a batch
 *
 * Since: 0.2
 */
guint
dvt_batcher_get_max_items (DvtBatcher *batcher)
{
  g_return_val_if_fail (DVT_IS_BATCHER (batcher), 0);

  return batcher->max_items;
}

/**
 * dvt_batcher_get_max_wait:
 * @batcher: a batcher
 *
 * Gets the most seconds a batch of @batcher waits after its first item.
 *
 * Returns: the longest wait, 0 for none
 *
 * Since: 0.2
 */
double
dvt_batcher_get_max_wait (DvtBatcher *batcher)
{
  g_return_val_if_fail (DVT_IS_BATCHER (batcher), 0);

  return batcher->max_wait;
}

/**
 * dvt_batcher_get_n_pending:
 * @batcher: a batcher
 *
 * Gets how many items of @batcher wait for their batch to be dispatched.
 *
 * Returns: the number of pending items
 *
 * Since: 0.2
 */
guint
dvt_batcher_get_n_pending (DvtBatcher *batcher)
{
  guint n;

  g_return_val_if_fail (DVT_IS_BATCHER (batcher), 0);

  g_mutex_lock (&batcher->lock);
  n = batcher->pending != NULL ? batcher->pending->len : 0;
  g_mutex_unlock (&batcher->lock);

  return n;
}

/**
 * dvt_batcher_get_n_running:
 * @batcher: a batcher
 *
 * Gets how many batches of @batcher have been dispatched and not yet
 * ended.
 *
 * Returns: the number of running batches
 *
 * Since: 0.2
 */
guint
dvt_batcher_get_n_running (DvtBatcher *batcher)
{
  guint n;

  g_return_val_if_fail (DVT_IS_BATCHER (batcher), 0);

  g_mutex_lock (&batcher->lock);
  n = batcher->n_running;
  g_mutex_unlock (&batcher->lock);

  return n;
}

/**
 * dvt_batcher_is_closed:
 * @batcher: a batcher
 *
 * Tells whether @batcher was closed, or its runtime shut down.
 *
 * Returns: %TRUE if adds fail
 *
 * Since: 0.2
 */
gboolean
dvt_batcher_is_closed (DvtBatcher *batcher)
{
  g_return_val_if_fail (DVT_IS_BATCHER (batcher), TRUE);

  return g_atomic_int_get (&batcher->closed);
}

#define check_batcher(batcher, cancellable, error)                                  \
  G_STMT_START {                                                                    \
    dvt_return_val_if_fail_error (DVT_IS_BATCHER (batcher) && batcher->runtime != NULL, \
                                  FALSE, error);                                    \
    dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), \
                                  FALSE, error);                                    \
    g_return_val_if_fail (error == NULL || *error == NULL, FALSE);                 \
  } G_STMT_END

static void
set_closed_error_locked (DvtBatcher  *self,
                         GError     **error)
{
  if (self->shut_down)
    g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                         _("The runtime was shut down"));
  else
    g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                         _("The batcher is closed"));
}

/**
 * dvt_batcher_add:
 * @batcher: a batcher
 * @value: the item: a copy of it is added
 * @error: return location for a #GError
 *
 * Adds a copy of @value to the pending batch, which is dispatched at once
 * if it is now full. Never blocks; safe from any thread.
 *
 * Returns: %TRUE once the item is added; %FALSE with %DVT_ERROR_CLOSED
 *   once the batcher is closed or its runtime shut down
 *
 * Since: 0.2
 */
gboolean
dvt_batcher_add (DvtBatcher    *batcher,
                 const GValue  *value,
                 GError       **error)
{
  GArray *items = NULL;
  GValue copy = G_VALUE_INIT;

  check_batcher (batcher, NULL, error);
  dvt_return_val_if_fail_error (value != NULL && G_IS_VALUE (value), FALSE, error);

  /* Copied outside the lock: a copy may run the application's code (a
   * binding's boxed copy takes its interpreter lock). Then moved in. */
  g_value_init (&copy, G_VALUE_TYPE (value));
  g_value_copy (value, &copy);

  g_mutex_lock (&batcher->lock);
  if (batcher->closed)
    {
      set_closed_error_locked (batcher, error);
      g_mutex_unlock (&batcher->lock);
      g_value_unset (&copy);
      return FALSE;
    }
  if (batcher->pending == NULL)
    {
      batcher->pending = g_array_sized_new (FALSE, FALSE, sizeof (GValue),
                                            MIN (batcher->max_items, 1024));
      g_array_set_clear_func (batcher->pending, value_clear);
      g_array_append_val (batcher->pending, copy);
      batcher->pending_since = g_get_monotonic_time ();
      if (batcher->max_items > 1)
        arm_timer_locked (batcher);
    }
  else
    g_array_append_val (batcher->pending, copy);
  if (batcher->pending->len >= batcher->max_items)
    items = take_pending_locked (batcher, NULL);
  g_mutex_unlock (&batcher->lock);

  if (items != NULL)
    {
      DvtTask *task = dispatch (batcher, items);

      g_clear_object (&task);
    }

  return TRUE;
}

/**
 * dvt_batcher_flush:
 * @batcher: a batcher
 *
 * Dispatches the pending items now, as a batch, without waiting for it to
 * be full or for its time. Safe from any thread.
 *
 * Returns: (transfer full) (nullable): the task of the batch, or %NULL if
 *   no item was pending (or the runtime refused the batch)
 *
 * Since: 0.2
 */
DvtTask *
dvt_batcher_flush (DvtBatcher *batcher)
{
  GArray *items;

  g_return_val_if_fail (DVT_IS_BATCHER (batcher) && batcher->runtime != NULL, NULL);

  g_mutex_lock (&batcher->lock);
  items = take_pending_locked (batcher, NULL);
  g_mutex_unlock (&batcher->lock);

  return items != NULL ? dispatch (batcher, items) : NULL;
}

/* Closes @self and dispatches what is pending. */
static void
close_and_flush (DvtBatcher *self)
{
  GArray *items;
  GSource *timer = NULL;

  g_mutex_lock (&self->lock);
  g_atomic_int_set (&self->closed, TRUE);
  items = take_pending_locked (self, &timer);
  g_mutex_unlock (&self->lock);

  destroy_timer (timer);
  if (items != NULL)
    {
      DvtTask *task = dispatch (self, items);

      g_clear_object (&task);
    }
}

static void
wake_closer (GCancellable *cancellable,
             gpointer      data)
{
  DvtBatcher *self = data;

  g_mutex_lock (&self->lock);
  g_cond_broadcast (&self->idle_cond);
  g_mutex_unlock (&self->lock);
}

/**
 * dvt_batcher_close_blocking:
 * @batcher: a batcher
 * @timeout: the longest time to wait, in seconds; 0 or less waits as long
 *   as it takes
 * @cancellable: (nullable): cancels the wait (not the batches)
 * @error: return location for a #GError
 *
 * Closes @batcher: later adds fail with %DVT_ERROR_CLOSED, the pending
 * items are dispatched as a last batch, and the call waits until every
 * batch has ended. Calling it again waits again. Not on the runtime's
 * loop thread (there it fails at once with %DVT_ERROR_WOULD_DEADLOCK,
 * after closing): a main loop uses [method@Batcher.close_async].
 *
 * Returns: %TRUE once every batch has ended in success; %FALSE with the
 *   first error a batch of the batcher failed with (%DVT_ERROR_CLOSED if
 *   a shutdown of the runtime dropped items), %G_IO_ERROR_TIMED_OUT if
 *   @timeout passes, or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_batcher_close_blocking (DvtBatcher    *batcher,
                            double         timeout,
                            GCancellable  *cancellable,
                            GError       **error)
{
  gint64 deadline = -1;
  gulong handler = 0;
  gboolean idle, cancelled = FALSE, failed = FALSE;
  DvtPool *pool;

  check_batcher (batcher, cancellable, error);

  close_and_flush (batcher);

  if (!dvt_core_check_blocking (dvt_runtime_get_core (batcher->runtime), error))
    return FALSE;

  if (timeout > 0 && timeout < (double) (G_MAXINT64 / 4) / G_USEC_PER_SEC)
    deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);
  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (wake_closer), batcher, NULL);

  pool = dvt_pool_enter_blocking ();
  g_mutex_lock (&batcher->lock);
  while (batcher->n_running > 0)
    {
      if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
        {
          cancelled = TRUE;
          break;
        }
      if (deadline < 0)
        g_cond_wait (&batcher->idle_cond, &batcher->lock);
      else if (!g_cond_wait_until (&batcher->idle_cond, &batcher->lock, deadline))
        break;
    }
  idle = batcher->n_running == 0;
  if (idle && batcher->first_error != NULL)
    {
      failed = TRUE;
      g_propagate_error (error, g_error_copy (batcher->first_error));
    }
  g_mutex_unlock (&batcher->lock);
  dvt_pool_leave_blocking (pool);

  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);

  if (!idle)
    {
      if (cancelled)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             _("The wait for the batcher was cancelled"));
      else
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                             _("Timed out waiting for the batcher’s batches"));
      return FALSE;
    }

  return !failed;
}

static void
complete_waiters (GSList       *waiters,
                  const GError *error)
{
  for (GSList *l = waiters; l != NULL; l = l->next)
    {
      GTask *task = l->data;
      GSource *cancel = g_task_get_task_data (task);

      if (cancel != NULL)
        g_source_destroy (cancel);
      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
  g_slist_free (waiters);
}

static gboolean
on_close_cancelled (GCancellable *cancellable,
                    gpointer      data)
{
  GTask *task = data;
  DvtBatcher *self = g_task_get_source_object (task);
  GSList *link;

  g_mutex_lock (&self->lock);
  link = g_slist_find (self->close_waiters, task);
  if (link != NULL)
    self->close_waiters = g_slist_delete_link (self->close_waiters, link);
  g_mutex_unlock (&self->lock);

  if (link != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s",
                               _("The wait for the batcher was cancelled"));
      g_object_unref (task);
    }

  return G_SOURCE_REMOVE;
}

static void
source_destroy_unref (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

/**
 * dvt_batcher_close_async:
 * @batcher: a batcher
 * @cancellable: (nullable): cancels the wait (not the batches)
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once every batch
 *   has ended, or the wait was cancelled
 * @user_data: data for @callback
 *
 * The main-loop twin of [method@Batcher.close_blocking]: closes @batcher
 * at once, dispatches the pending items, and calls @callback once every
 * batch has ended. Call [method@Batcher.close_finish] there.
 *
 * Since: 0.2
 */
void
dvt_batcher_close_async (DvtBatcher          *batcher,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  GTask *task;
  GError *first = NULL;
  gboolean idle;

  g_return_if_fail (DVT_IS_BATCHER (batcher) && batcher->runtime != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (batcher, cancellable, callback, user_data);
  g_task_set_source_tag (task, dvt_batcher_close_async);

  close_and_flush (batcher);

  if (cancellable != NULL)
    {
      GSource *cancel = g_cancellable_source_new (cancellable);

      g_task_set_task_data (task, g_source_ref (cancel), source_destroy_unref);
      g_task_attach_source (task, cancel, (GSourceFunc) (void (*) (void)) on_close_cancelled);
      g_source_unref (cancel);
    }

  g_mutex_lock (&batcher->lock);
  idle = batcher->n_running == 0;
  if (idle)
    {
      if (batcher->first_error != NULL)
        first = g_error_copy (batcher->first_error);
    }
  else
    batcher->close_waiters = g_slist_prepend (batcher->close_waiters, g_object_ref (task));
  g_mutex_unlock (&batcher->lock);

  if (idle)
    complete_waiters (g_slist_prepend (NULL, g_object_ref (task)), first);
  g_clear_error (&first);
  g_object_unref (task);
}

/**
 * dvt_batcher_close_finish:
 * @batcher: a batcher
 * @result: the result given to the callback of
 *   [method@Batcher.close_async]
 * @error: return location for a #GError
 *
 * Finishes [method@Batcher.close_async].
 *
 * Returns: %TRUE once every batch has ended in success; %FALSE with the
 *   first error a batch failed with, or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_batcher_close_finish (DvtBatcher    *batcher,
                          GAsyncResult  *result,
                          GError       **error)
{
  check_batcher (batcher, NULL, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, batcher) &&
                                g_task_get_source_tag (G_TASK (result)) ==
                                dvt_batcher_close_async, FALSE, error);

  return g_task_propagate_boolean (G_TASK (result), error);
}
