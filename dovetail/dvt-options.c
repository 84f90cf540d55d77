/* dvt-options.c: per-call options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-options.h"

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
};

enum {
  PROP_0,
  PROP_NAME,
  PROP_MAX_CONCURRENCY,
  PROP_RETURN_ERRORS,
  PROP_ASYNC_ITEMS,
  PROP_USE_CALLER_CONTEXT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtOptions, dvt_options, G_TYPE_OBJECT)

static void
dvt_options_finalize (GObject *object)
{
  DvtOptions *self = DVT_OPTIONS (object);

  g_free (self->name);

  G_OBJECT_CLASS (dvt_options_parent_class)->finalize (object);
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

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_options_init (DvtOptions *self)
{
  self->max_concurrency = -1;
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

  return copy;
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
