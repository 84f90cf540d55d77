/* dvt-options.c: per-call options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <math.h>

#include "dvt-options-private.h"

/**
 * DvtOptions:
 *
 * Options for one call into a [class@Runtime]. Every entry point takes a
 * nullable `DvtOptions`; %NULL means the defaults.
 *
 * The runtime reads the options when the call is made: changing them
 * afterwards does not affect work already submitted, and one object can
 * serve many calls.
 *
 * ```c
 * g_autoptr(DvtOptions) options = dvt_options_new ();
 *
 * dvt_options_set_name (options, "fetch");        // the detail of its event signals
 * dvt_options_set_timeout (options, 5.0);         // per task (per item of a map)
 * dvt_options_set_retries (options, 3);           // at most 4 attempts
 * dvt_options_set_retry_backoff (options, 0.2);   // 0.2 s, 0.4 s, 0.8 s
 * dvt_options_set_max_concurrency (options, 8);   // for maps
 * dvt_options_set_return_errors (options, TRUE);  // a failed item fills its slot
 * ```
 *
 * From Python: `Dvt.Options(max_concurrency=4, return_errors=True)`.
 */

struct _DvtOptions
{
  GObject   parent_instance;

  char     *name;
  int       max_concurrency;
  gboolean  return_errors;
  gboolean  async_items;
  gboolean  use_caller_context;

  double    timeout;
  double    deadline;
  int       retries;
  double    retry_backoff;
  double    retry_max_delay;
  double    retry_jitter;
  DvtRetryFilterClosure *retry_filter;
  gconstpointer function;
  GPtrArray *gates;           /* of DvtGate, held; NULL: none */

  /* When queued work starts: see "priority and timed starts" below. */
  int       priority;
  double    delay;
  gint64    not_before;
};

enum {
  PROP_0,
  PROP_NAME,
  PROP_MAX_CONCURRENCY,
  PROP_RETURN_ERRORS,
  PROP_ASYNC_ITEMS,
  PROP_USE_CALLER_CONTEXT,
  PROP_TIMEOUT,
  PROP_DEADLINE,
  PROP_RETRIES,
  PROP_RETRY_BACKOFF,
  PROP_RETRY_MAX_DELAY,
  PROP_RETRY_JITTER,
  PROP_PRIORITY,
  PROP_DELAY,
  PROP_NOT_BEFORE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtOptions, dvt_options, G_TYPE_OBJECT)

static void
dvt_options_finalize (GObject *object)
{
  DvtOptions *self = DVT_OPTIONS (object);

  g_free (self->name);
  g_clear_pointer (&self->retry_filter, dvt_retry_filter_closure_unref);
  g_clear_pointer (&self->gates, g_ptr_array_unref);

  G_OBJECT_CLASS (dvt_options_parent_class)->finalize (object);
}

static double *
double_field (DvtOptions *self,
              guint       prop_id)
{
  switch (prop_id)
    {
    case PROP_TIMEOUT:         return &self->timeout;
    case PROP_DEADLINE:        return &self->deadline;
    case PROP_RETRY_BACKOFF:   return &self->retry_backoff;
    case PROP_RETRY_MAX_DELAY: return &self->retry_max_delay;
    case PROP_RETRY_JITTER:    return &self->retry_jitter;
    default:                   g_assert_not_reached ();
    }
}

/* Sets a number of seconds (or the jitter fraction); -1 means "the
 * runtime's default" where the property allows it. */
static void
set_double (DvtOptions *self,
            guint       prop_id,
            double      value)
{
  GParamSpecDouble *pspec = G_PARAM_SPEC_DOUBLE (properties[prop_id]);
  double *field = double_field (self, prop_id);

  g_return_if_fail (!isnan (value));
  g_return_if_fail (value == -1 || (value >= 0 && value <= pspec->maximum));
  g_return_if_fail (value >= pspec->minimum);

  if (*field != value)
    {
      *field = value;
      g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
    }
}

static void
dvt_options_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  DvtOptions *self = DVT_OPTIONS (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_MAX_CONCURRENCY:
      g_value_set_int (value, self->max_concurrency);
      break;
    case PROP_RETURN_ERRORS:
      g_value_set_boolean (value, self->return_errors);
      break;
    case PROP_ASYNC_ITEMS:
      g_value_set_boolean (value, self->async_items);
      break;
    case PROP_USE_CALLER_CONTEXT:
      g_value_set_boolean (value, self->use_caller_context);
      break;
    case PROP_RETRIES:
      g_value_set_int (value, self->retries);
      break;
    case PROP_TIMEOUT:
    case PROP_DEADLINE:
    case PROP_RETRY_BACKOFF:
    case PROP_RETRY_MAX_DELAY:
    case PROP_RETRY_JITTER:
      g_value_set_double (value, *double_field (self, prop_id));
      break;
    case PROP_PRIORITY:
      g_value_set_int (value, self->priority);
      break;
    case PROP_DELAY:
      g_value_set_double (value, self->delay);
      break;
    case PROP_NOT_BEFORE:
      g_value_set_int64 (value, self->not_before);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_options_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  DvtOptions *self = DVT_OPTIONS (object);

  switch (prop_id)
    {
    case PROP_NAME:
      dvt_options_set_name (self, g_value_get_string (value));
      break;
    case PROP_MAX_CONCURRENCY:
      dvt_options_set_max_concurrency (self, g_value_get_int (value));
      break;
    case PROP_RETURN_ERRORS:
      dvt_options_set_return_errors (self, g_value_get_boolean (value));
      break;
    case PROP_ASYNC_ITEMS:
      dvt_options_set_async_items (self, g_value_get_boolean (value));
      break;
    case PROP_USE_CALLER_CONTEXT:
      dvt_options_set_use_caller_context (self, g_value_get_boolean (value));
      break;
    case PROP_RETRIES:
      dvt_options_set_retries (self, g_value_get_int (value));
      break;
    case PROP_TIMEOUT:
    case PROP_DEADLINE:
    case PROP_RETRY_BACKOFF:
    case PROP_RETRY_MAX_DELAY:
    case PROP_RETRY_JITTER:
      set_double (self, prop_id, g_value_get_double (value));
      break;
    case PROP_PRIORITY:
      dvt_options_set_priority (self, g_value_get_int (value));
      break;
    case PROP_DELAY:
      dvt_options_set_delay (self, g_value_get_double (value));
      break;
    case PROP_NOT_BEFORE:
      dvt_options_set_not_before (self, g_value_get_int64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_options_class_init (DvtOptionsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dvt_options_finalize;
  object_class->get_property = dvt_options_get_property;
  object_class->set_property = dvt_options_set_property;

  /**
   * DvtOptions:name:
   *
   * The target name given to the tasks of the call (see
   * [method@Task.get_name]).
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:max-concurrency:
   *
   * For maps: the largest number of items in flight at once. 0 means 1;
   * -1, the default, means no limit but the runtime's
   * [property@Runtime:max-workers] for blocking items.
   */
  properties[PROP_MAX_CONCURRENCY] =
    g_param_spec_int ("max-concurrency", NULL, NULL, -1, G_MAXINT, -1,
                      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                      G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:return-errors:
   *
   * For maps and gathers: put each failure in its result slot, as a
   * %G_TYPE_ERROR value, instead of failing the whole call.
   */
  properties[PROP_RETURN_ERRORS] =
    g_param_spec_boolean ("return-errors", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                          G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:async-items:
   *
   * For maps: call the item function as a [callback@AsyncFunc], on the
   * runtime's loop thread (or the caller's context with
   * [property@Options:use-caller-context]), rather than as a blocking
   * function on the workers.
   */
  properties[PROP_ASYNC_ITEMS] =
    g_param_spec_boolean ("async-items", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                          G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:use-caller-context:
   *
   * Start async work on the thread-default main context of the calling
   * thread instead of the runtime's loop thread. A GTK application wants
   * this for async work that touches widgets, and GJS needs it, as it
   * runs JavaScript on its own thread only. A blocking call with this
   * option iterates that context while it waits.
   */
  properties[PROP_USE_CALLER_CONTEXT] =
    g_param_spec_boolean ("use-caller-context", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                          G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:timeout:
   *
   * The longest time, in seconds, that each task of the call may take,
   * from when it is accepted to its end, retries and back-off included.
   * A task that runs out fails with %G_IO_ERROR_TIMED_OUT and its
   * cancellable is cancelled. For maps it applies to each item, never to
   * the whole map (see [property@Options:deadline]).
   *
   * -1, the default, means the runtime's [property@Runtime:timeout]; 0
   * means no timeout for this call, whatever the runtime's default.
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_double ("timeout", NULL, NULL, -1, G_MAXINT32, -1,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:deadline:
   *
   * For maps and gathers: the longest time, in seconds, that the whole
   * call may take. When it passes, the call fails with
   * %G_IO_ERROR_TIMED_OUT and its unfinished items are cancelled. 0, the
   * default, means none; the runtime's [property@Runtime:timeout] never
   * applies to a whole batch.
   */
  properties[PROP_DEADLINE] =
    g_param_spec_double ("deadline", NULL, NULL, 0, G_MAXINT32, 0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:retries:
   *
   * How many times a failed task is tried again (so at most retries + 1
   * attempts). -1, the default, means the runtime's
   * [property@Runtime:retries]; 0 means no retry for this call. For maps
   * it applies to each item.
   */
  properties[PROP_RETRIES] =
    g_param_spec_int ("retries", NULL, NULL, -1, G_MAXUINT16 - 1, -1,
                      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                      G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:retry-backoff:
   *
   * The delay before the first retry, in seconds; the delay before retry
   * n is this times 2^(n-1), at most [property@Options:retry-max-delay].
   * -1, the default, means the runtime's [property@Runtime:retry-backoff].
   */
  properties[PROP_RETRY_BACKOFF] =
    g_param_spec_double ("retry-backoff", NULL, NULL, -1, G_MAXINT32, -1,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:retry-max-delay:
   *
   * The longest delay before a retry, in seconds. -1, the default, means
   * the runtime's [property@Runtime:retry-max-delay].
   */
  properties[PROP_RETRY_MAX_DELAY] =
    g_param_spec_double ("retry-max-delay", NULL, NULL, -1, G_MAXINT32, -1,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:retry-jitter:
   *
   * Spreads retry delays at random: with jitter j, each delay is
   * multiplied by a random factor between 1 - j and 1 + j (then capped).
   * From 0 to 1; -1, the default, means the runtime's
   * [property@Runtime:retry-jitter].
   */
  properties[PROP_RETRY_JITTER] =
    g_param_spec_double ("retry-jitter", NULL, NULL, -1, 1, -1,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:priority:
   *
   * The priority of the call's blocking work while it waits for a worker,
   * on GLib's scale (%G_PRIORITY_HIGH, %G_PRIORITY_DEFAULT,
   * %G_PRIORITY_LOW...): queued work with a lower value starts first, and
   * work of equal priority starts in the order it was queued, as with
   * g_task_set_priority(). Work already running is never interrupted.
   *
   * It orders blocking functions ([method@Runtime.to_thread_blocking],
   * [method@Runtime.to_thread_async], [method@Runtime.submit], and the
   * items of a map that the map has queued for the workers); async
   * functions start on their main context in the order they come.
   *
   * Since: 0.2
   */
  properties[PROP_PRIORITY] =
    g_param_spec_int ("priority", NULL, NULL, G_MININT, G_MAXINT, G_PRIORITY_DEFAULT,
                      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                      G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:delay:
   *
   * How long, in seconds, the task waits after the call before it
   * starts: a timer on the runtime's loop thread, which holds no worker
   * meanwhile. The returned task is the handle: [method@Task.cancel]
   * ends it at once, counted as cancelled (the `cancelled` signal and
   * `cancelled` of [struct@Stats]), and its work never starts. The task is
   * queued (and counted so) from the call; its
   * [property@Options:timeout] counts from the end of the delay, and its
   * retries are not delayed again.
   *
   * With [property@Options:not-before] too, the task starts once both
   * have passed. It applies to calls that start one task (to_thread,
   * run, submit, schedule); maps and gathers ignore it.
   *
   * On [method@Runtime.shutdown], with `cancel_pending` a delayed task is
   * cancelled like other queued work; without it, the task still starts
   * at its time and a waiting shutdown waits for its end.
   *
   * 0, the default, starts at once. Negative or NaN values are refused
   * (a critical warning).
   *
   * Since: 0.2
   */
  properties[PROP_DELAY] =
    g_param_spec_double ("delay", NULL, NULL, 0, G_MAXINT32, 0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * DvtOptions:not-before:
   *
   * The monotonic time (g_get_monotonic_time(), in microseconds) before
   * which the task does not start, as with [property@Options:delay]; a
   * time already passed starts it at once. 0, the default, means none.
   *
   * Since: 0.2
   */
  properties[PROP_NOT_BEFORE] =
    g_param_spec_int64 ("not-before", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                        G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_options_init (DvtOptions *self)
{
  self->max_concurrency = -1;
  self->timeout = -1;
  self->retries = -1;
  self->retry_backoff = -1;
  self->retry_max_delay = -1;
  self->retry_jitter = -1;
}

/**
 * dvt_options_new:
 *
 * Creates options with every default.
 *
 * Returns: (transfer full): new options
 */
DvtOptions *
dvt_options_new (void)
{
  return g_object_new (DVT_TYPE_OPTIONS, NULL);
}

/**
 * dvt_options_copy:
 * @self: options
 *
 * Copies @self.
 *
 * Returns: (transfer full): a copy
 */
DvtOptions *
dvt_options_copy (DvtOptions *self)
{
  DvtOptions *copy;

  g_return_val_if_fail (DVT_IS_OPTIONS (self), NULL);

  copy = dvt_options_new ();
  copy->name = g_strdup (self->name);
  copy->max_concurrency = self->max_concurrency;
  copy->return_errors = self->return_errors;
  copy->async_items = self->async_items;
  copy->use_caller_context = self->use_caller_context;
  copy->timeout = self->timeout;
  copy->deadline = self->deadline;
  copy->retries = self->retries;
  copy->retry_backoff = self->retry_backoff;
  copy->retry_max_delay = self->retry_max_delay;
  copy->retry_jitter = self->retry_jitter;
  if (self->retry_filter != NULL)
    copy->retry_filter = dvt_retry_filter_closure_ref (self->retry_filter);
  copy->function = self->function;
  for (guint i = 0; self->gates != NULL && i < self->gates->len; i++)
    dvt_options_add_gate (copy, g_ptr_array_index (self->gates, i));
  copy->priority = self->priority;
  copy->delay = self->delay;
  copy->not_before = self->not_before;

  return copy;
}

/**
 * dvt_options_get_function:
 * @self: options
 *
 * Gets the function identity set with [method@Options.set_function].
 *
 * Returns: (nullable): the identity, or %NULL
 */
gconstpointer
dvt_options_get_function (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), NULL);

  return self->function;
}

/**
 * dvt_options_set_function:
 * @self: options
 * @function: (nullable): an identity for the work, or %NULL
 *
 * Sets the identity that [property@EventScope:function] matches for the
 * calls made with these options, instead of the address of the work
 * function.
 *
 * This is for language bindings: their calls all go through the same few
 * C functions, so they give each call the identity of their own function
 * (any pointer unique to it while the scope lives: Python's override gives
 * the address of the Python function object and keeps it alive with the
 * scope). C code need not call it.
 */
void
dvt_options_set_function (DvtOptions    *self,
                          gconstpointer  function)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));

  self->function = function;
}

/**
 * dvt_options_get_name:
 * @self: options
 *
 * Gets [property@Options:name].
 *
 * Returns: (nullable): the name
 */
const char *
dvt_options_get_name (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), NULL);

  return self->name;
}

/**
 * dvt_options_set_name:
 * @self: options
 * @name: (nullable): the target name
 *
 * Sets [property@Options:name].
 */
void
dvt_options_set_name (DvtOptions *self,
                      const char *name)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));

  if (g_strcmp0 (self->name, name) == 0)
    return;

  g_free (self->name);
  self->name = g_strdup (name);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NAME]);
}

/**
 * dvt_options_get_max_concurrency:
 * @self: options
 *
 * Gets [property@Options:max-concurrency].
 *
 * Returns: the limit, or -1 for none
 */
int
dvt_options_get_max_concurrency (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), -1);

  return self->max_concurrency;
}

/**
 * dvt_options_set_max_concurrency:
 * @self: options
 * @max_concurrency: the limit; 0 means 1, -1 means none
 *
 * Sets [property@Options:max-concurrency].
 */
void
dvt_options_set_max_concurrency (DvtOptions *self,
                                 int         max_concurrency)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));
  g_return_if_fail (max_concurrency >= -1);

  if (self->max_concurrency != max_concurrency)
    {
      self->max_concurrency = max_concurrency;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_CONCURRENCY]);
    }
}

/**
 * dvt_options_get_return_errors:
 * @self: options
 *
 * Gets [property@Options:return-errors].
 *
 * Returns: whether failures go into result slots
 */
gboolean
dvt_options_get_return_errors (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), FALSE);

  return self->return_errors;
}

/**
 * dvt_options_set_return_errors:
 * @self: options
 * @return_errors: whether failures go into result slots
 *
 * Sets [property@Options:return-errors].
 */
void
dvt_options_set_return_errors (DvtOptions *self,
                               gboolean    return_errors)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));

  return_errors = !!return_errors;
  if (self->return_errors != return_errors)
    {
      self->return_errors = return_errors;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RETURN_ERRORS]);
    }
}

/**
 * dvt_options_get_async_items:
 * @self: options
 *
 * Gets [property@Options:async-items].
 *
 * Returns: whether map items are async functions
 */
gboolean
dvt_options_get_async_items (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), FALSE);

  return self->async_items;
}

/**
 * dvt_options_set_async_items:
 * @self: options
 * @async_items: whether map items are async functions
 *
 * Sets [property@Options:async-items].
 */
void
dvt_options_set_async_items (DvtOptions *self,
                             gboolean    async_items)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));

  async_items = !!async_items;
  if (self->async_items != async_items)
    {
      self->async_items = async_items;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ASYNC_ITEMS]);
    }
}

/**
 * dvt_options_get_use_caller_context:
 * @self: options
 *
 * Gets [property@Options:use-caller-context].
 *
 * Returns: whether async work runs on the caller's context
 */
gboolean
dvt_options_get_use_caller_context (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), FALSE);

  return self->use_caller_context;
}

/**
 * dvt_options_set_use_caller_context:
 * @self: options
 * @use_caller_context: whether async work runs on the caller's context
 *
 * Sets [property@Options:use-caller-context].
 */
void
dvt_options_set_use_caller_context (DvtOptions *self,
                                    gboolean    use_caller_context)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));

  use_caller_context = !!use_caller_context;
  if (self->use_caller_context != use_caller_context)
    {
      self->use_caller_context = use_caller_context;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_USE_CALLER_CONTEXT]);
    }
}

#define DOUBLE_ACCESSORS(field, PROP)                                           \
  double                                                                  \
  dvt_options_get_##field (DvtOptions *self)                              \
  {                                                                       \
    g_return_val_if_fail (DVT_IS_OPTIONS (self), -1);                     \
    return self->field;                                                   \
  }                                                                       \
  void                                                                    \
  dvt_options_set_##field (DvtOptions *self,                              \
                           double      field)                             \
  {                                                                       \
    g_return_if_fail (DVT_IS_OPTIONS (self));                             \
    set_double (self, PROP, field);                                       \
  }

/**
 * dvt_options_get_timeout:
 * @self: options
 *
 * Gets [property@Options:timeout].
 *
 * Returns: seconds; -1 for the runtime's default, 0 for none
 */
/**
 * dvt_options_set_timeout:
 * @self: options
 * @timeout: seconds; -1 for the runtime's default, 0 for none
 *
 * Sets [property@Options:timeout].
 */
DOUBLE_ACCESSORS (timeout, PROP_TIMEOUT)

/**
 * dvt_options_get_deadline:
 * @self: options
 *
 * Gets [property@Options:deadline].
 *
 * Returns: seconds; 0 for none
 */
/**
 * dvt_options_set_deadline:
 * @self: options
 * @deadline: seconds; 0 for none
 *
 * Sets [property@Options:deadline].
 */
DOUBLE_ACCESSORS (deadline, PROP_DEADLINE)

/**
 * dvt_options_get_retry_backoff:
 * @self: options
 *
 * Gets [property@Options:retry-backoff].
 *
 * Returns: seconds; -1 for the runtime's default
 */
/**
 * dvt_options_set_retry_backoff:
 * @self: options
 * @retry_backoff: seconds; -1 for the runtime's default
 *
 * Sets [property@Options:retry-backoff].
 */
DOUBLE_ACCESSORS (retry_backoff, PROP_RETRY_BACKOFF)

/**
 * dvt_options_get_retry_max_delay:
 * @self: options
 *
 * Gets [property@Options:retry-max-delay].
 *
 * Returns: seconds; -1 for the runtime's default
 */
/**
 * dvt_options_set_retry_max_delay:
 * @self: options
 * @retry_max_delay: seconds; -1 for the runtime's default
 *
 * Sets [property@Options:retry-max-delay].
 */
DOUBLE_ACCESSORS (retry_max_delay, PROP_RETRY_MAX_DELAY)

/**
 * dvt_options_get_retry_jitter:
 * @self: options
 *
 * Gets [property@Options:retry-jitter].
 *
 * Returns: the fraction, from 0 to 1; -1 for the runtime's default
 */
/**
 * dvt_options_set_retry_jitter:
 * @self: options
 * @retry_jitter: the fraction, from 0 to 1; -1 for the runtime's default
 *
 * Sets [property@Options:retry-jitter].
 */
DOUBLE_ACCESSORS (retry_jitter, PROP_RETRY_JITTER)

/**
 * dvt_options_get_retries:
 * @self: options
 *
 * Gets [property@Options:retries].
 *
 * Returns: the number of retries; -1 for the runtime's default
 */
int
dvt_options_get_retries (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), -1);

  return self->retries;
}

/**
 * dvt_options_set_retries:
 * @self: options
 * @retries: the number of retries; -1 for the runtime's default, 0 for
 *   none
 *
 * Sets [property@Options:retries].
 */
void
dvt_options_set_retries (DvtOptions *self,
                         int         retries)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));
  g_return_if_fail (retries >= -1 && retries < G_MAXUINT16);

  if (self->retries != retries)
    {
      self->retries = retries;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RETRIES]);
    }
}

/**
 * dvt_options_set_retry_filter:
 * @self: options
 * @filter: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   decides which errors are retried, or %NULL for the default
 * @user_data: data for @filter
 * @destroy: (nullable): frees @user_data once no task needs @filter
 *
 * Chooses which failures are tried again. By default every error is,
 * except %G_IO_ERROR_CANCELLED, %G_IO_ERROR_TIMED_OUT and
 * %DVT_ERROR_CLOSED. A filter is asked about every failure of a task with
 * retries left, on the thread where the failure happened, and sees the
 * task (its attempt so far) and the error.
 *
 * A task's own cancellation, its timeout and the runtime's shutdown are
 * never retried, whatever the filter says.
 *
 * @filter is called on the thread where the attempt failed (a worker for
 * blocking work), and @destroy runs where the last task using it lets go,
 * which may be a worker too: a language that runs its code on one thread
 * only (GJS) can set a filter only for work it runs with
 * [property@Options:use-caller-context].
 */
void
dvt_options_set_retry_filter (DvtOptions     *self,
                              DvtRetryFilter  filter,
                              gpointer        user_data,
                              GDestroyNotify  destroy)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));

  g_clear_pointer (&self->retry_filter, dvt_retry_filter_closure_unref);
  if (filter != NULL)
    {
      self->retry_filter = g_new0 (DvtRetryFilterClosure, 1);
      self->retry_filter->ref_count = 1;
      self->retry_filter->func = filter;
      self->retry_filter->data = user_data;
      self->retry_filter->destroy = destroy;
    }
  else if (destroy != NULL)
    destroy (user_data);
}

DvtRetryFilterClosure *
dvt_options_get_retry_filter_closure (DvtOptions *self)
{
  return self->retry_filter;
}

DvtRetryFilterClosure *
dvt_retry_filter_closure_ref (DvtRetryFilterClosure *closure)
{
  g_atomic_int_inc (&closure->ref_count);
  return closure;
}

void
dvt_retry_filter_closure_unref (DvtRetryFilterClosure *closure)
{
  if (!g_atomic_int_dec_and_test (&closure->ref_count))
    return;
  if (closure->destroy != NULL)
    closure->destroy (closure->data);
  g_free (closure);
}

/**
 * dvt_options_add_gate:
 * @self: options
 * @gate: a gate: a [class@Semaphore], a [class@RateLimiter], a
 *   [class@Lockout] or any [iface@Gate]
 *
 * Makes every attempt of the tasks started with these options enter
 * @gate before its work starts, and leave it when the attempt ends: when
 * its work function has returned and the attempt has ended (its task
 * completed, or the attempt failed and will be retried). A retry enters
 * again. Gates added to one options object are entered in the order they
 * were added, and left in the reverse order. The items of a map each
 * enter on their own.
 *
 * A task that must wait for a gate waits on the runtime's loop thread
 * (through [method@Gate.enter_async]), holding no worker; the wait counts
 * in [struct@Stats].throttled and emits [signal@Runtime::throttled] with a
 * wait of 0 (its length is not known in advance). The task's timeout
 * counts the wait. A task that ends while it waits (cancelled, timed out,
 * or cancelled by [method@Runtime.shutdown]) stops waiting and leaves the
 * gates it had entered.
 *
 * A blocking function that ignores its cancellable keeps its gates until
 * it returns, even after its task ended by a timeout: the gate counts
 * work that really runs.
 */
void
dvt_options_add_gate (DvtOptions *self,
                      DvtGate    *gate)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));
  g_return_if_fail (DVT_IS_GATE (gate));

  if (self->gates == NULL)
    self->gates = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (self->gates, g_object_ref (gate));
}

/**
 * dvt_options_get_gates:
 * @self: options
 *
 * Gets the gates added with [method@Options.add_gate], in order.
 *
 * Returns: (transfer none) (nullable) (element-type DvtGate): the gates,
 *   or %NULL if there are none
 */
GPtrArray *
dvt_options_get_gates (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), NULL);

  return self->gates;
}

/* ---- priority and timed starts ------------------------------------------ */

/**
 * dvt_options_get_priority:
 * @self: options
 *
 * Gets [property@Options:priority].
 *
 * Returns: the priority
 *
 * Since: 0.2
 */
int
dvt_options_get_priority (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), G_PRIORITY_DEFAULT);

  return self->priority;
}

/**
 * dvt_options_set_priority:
 * @self: options
 * @priority: the priority, on GLib's scale (lower first)
 *
 * Sets [property@Options:priority].
 *
 * Since: 0.2
 */
void
dvt_options_set_priority (DvtOptions *self,
                          int         priority)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));

  if (self->priority != priority)
    {
      self->priority = priority;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PRIORITY]);
    }
}

/**
 * dvt_options_get_delay:
 * @self: options
 *
 * Gets [property@Options:delay].
 *
 * Returns: seconds; 0 for none
 *
 * Since: 0.2
 */
double
dvt_options_get_delay (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), 0);

  return self->delay;
}

/**
 * dvt_options_set_delay:
 * @self: options
 * @delay: seconds, at least 0; 0 for none
 *
 * Sets [property@Options:delay].
 *
 * Since: 0.2
 */
void
dvt_options_set_delay (DvtOptions *self,
                       double      delay)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));
  g_return_if_fail (!isnan (delay));
  g_return_if_fail (delay >= 0 && delay <= G_MAXINT32);

  if (self->delay != delay)
    {
      self->delay = delay;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DELAY]);
    }
}

/**
 * dvt_options_get_not_before:
 * @self: options
 *
 * Gets [property@Options:not-before].
 *
 * Returns: a monotonic time in microseconds; 0 for none
 *
 * Since: 0.2
 */
gint64
dvt_options_get_not_before (DvtOptions *self)
{
  g_return_val_if_fail (DVT_IS_OPTIONS (self), 0);

  return self->not_before;
}

/**
 * dvt_options_set_not_before:
 * @self: options
 * @not_before: a monotonic time in microseconds, as g_get_monotonic_time()
 *   gives; 0 for none
 *
 * Sets [property@Options:not-before].
 *
 * Since: 0.2
 */
void
dvt_options_set_not_before (DvtOptions *self,
                            gint64      not_before)
{
  g_return_if_fail (DVT_IS_OPTIONS (self));
  g_return_if_fail (not_before >= 0);

  if (self->not_before != not_before)
    {
      self->not_before = not_before;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NOT_BEFORE]);
    }
}

/* The call's priority and the monotonic time (µs) before which its task
 * does not start (0: none), resolved when the call is made. Returns FALSE,
 * without reading the clock, when both are the defaults. */
gboolean
dvt_options_get_schedule (DvtOptions *self,
                          int        *priority,
                          gint64     *start_at)
{
  gint64 at = 0;

  if (G_LIKELY (self == NULL ||
                (self->priority == G_PRIORITY_DEFAULT && self->delay == 0 &&
                 self->not_before == 0)))
    return FALSE;

  if (self->delay > 0)
    at = g_get_monotonic_time () + MAX (1, (gint64) (self->delay * G_USEC_PER_SEC));
  at = MAX (at, self->not_before);

  *priority = self->priority;
  *start_at = at;

  return TRUE;
}
