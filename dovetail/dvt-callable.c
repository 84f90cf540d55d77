/* dvt-callable.c: a function with its runtime and options, called many times
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-callable.h"
#include "dvt-error-private.h"

/**
 * DvtCallable:
 *
 * A function bound to a runtime and to the options of its calls (timeout,
 * retries, a name for its events...), to call many times from threads or
 * from main loops: the one-call bridge that Python's decorators give, for C,
 * Vala and GJS.
 *
 * Made with [ctor@Callable.new], the function runs on a worker, as
 * [method@Runtime.to_thread_async] runs one; made with
 * [ctor@Callable.new_async], it is async work on the runtime's loop thread
 * (or on the caller's main context with
 * [property@Options:use-caller-context]), as [method@Runtime.run_async]
 * runs it. Each call passes its arguments as a #GVariant, which the
 * function receives.
 *
 * - [method@Callable.call_blocking] waits for the result, from a thread;
 * - [method@Callable.call_async] and [method@Callable.call_finish] suit a
 *   main loop (`yield` in Vala, a promise in GJS);
 * - [method@Callable.submit] returns the call's task, a future.
 *
 * ```c
 * static void
 * fetch (DvtTask *task, GVariant *args, GCancellable *cancellable,
 *        gpointer user_data, GError **error)
 * {
 *   const char *uri = g_variant_get_string (args, NULL);
 *   ...
 *   dvt_task_return_value (task, &contents);
 * }
 *
 * g_autoptr(DvtOptions) options = dvt_options_new ();
 * dvt_options_set_timeout (options, 5);
 * dvt_options_set_retries (options, 2);
 * callable = dvt_callable_new (runtime, fetch, NULL, NULL, options);
 *
 * ok = dvt_callable_call_blocking (callable, g_variant_new_string (uri),
 *                                  NULL, &value, &error);
 * ```
 *
 * Events of the calls name the callable's function (unless its options
 * name another with [method@Options.set_function]), so that a
 * [class@EventScope] for that function sees every call.
 *
 * Since: 0.2
 */

struct _DvtCallable
{
  GObject          parent_instance;

  DvtRuntime      *runtime;
  DvtOptions      *options;
  gboolean         is_async;

  DvtCallableFunc  func;
  gpointer         user_data;
  GDestroyNotify   destroy;
};

enum
{
  PROP_0,
  PROP_RUNTIME,
  PROP_OPTIONS,
  PROP_IS_ASYNC,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtCallable, dvt_callable, G_TYPE_OBJECT)

static void
dvt_callable_finalize (GObject *object)
{
  DvtCallable *self = DVT_CALLABLE (object);

  if (self->destroy != NULL)
    self->destroy (self->user_data);
  g_clear_object (&self->options);
  g_clear_object (&self->runtime);

  G_OBJECT_CLASS (dvt_callable_parent_class)->finalize (object);
}

static void
dvt_callable_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  DvtCallable *self = DVT_CALLABLE (object);

  switch (prop_id)
    {
    case PROP_RUNTIME:
      g_value_set_object (value, self->runtime);
      break;
    case PROP_OPTIONS:
      g_value_take_object (value, dvt_callable_dup_options (self));
      break;
    case PROP_IS_ASYNC:
      g_value_set_boolean (value, self->is_async);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_callable_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  DvtCallable *self = DVT_CALLABLE (object);
  DvtOptions *options;

  switch (prop_id)
    {
    case PROP_RUNTIME:
      self->runtime = g_value_dup_object (value);
      break;
    case PROP_OPTIONS:
      /* A copy: changing the caller's options later changes no call. */
      options = g_value_get_object (value);
      self->options = options != NULL ? dvt_options_copy (options) : dvt_options_new ();
      break;
    case PROP_IS_ASYNC:
      self->is_async = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_callable_class_init (DvtCallableClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dvt_callable_finalize;
  object_class->get_property = dvt_callable_get_property;
  object_class->set_property = dvt_callable_set_property;

  /**
   * DvtCallable:runtime:
   *
   * The runtime that runs the calls.
   *
   * Since: 0.2
   */
  properties[PROP_RUNTIME] =
    g_param_spec_object ("runtime", NULL, NULL, DVT_TYPE_RUNTIME,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCallable:options:
   *
   * The options of every call: a copy of those given when it was made.
   * Reading it gives another copy.
   *
   * Since: 0.2
   */
  properties[PROP_OPTIONS] =
    g_param_spec_object ("options", NULL, NULL, DVT_TYPE_OPTIONS,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtCallable:is-async:
   *
   * Whether the function is async work on a main context rather than a
   * thread function on a worker.
   *
   * Since: 0.2
   */
  properties[PROP_IS_ASYNC] =
    g_param_spec_boolean ("is-async", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_callable_init (DvtCallable *self)
{
}

static DvtCallable *
callable_new (DvtRuntime      *runtime,
              gboolean         is_async,
              DvtCallableFunc  func,
              gpointer         user_data,
              GDestroyNotify   destroy,
              DvtOptions      *options)
{
  DvtCallable *self = g_object_new (DVT_TYPE_CALLABLE,
                                    "runtime", runtime,
                                    "options", options,
                                    "is-async", is_async,
                                    NULL);

  self->func = func;
  self->user_data = user_data;
  self->destroy = destroy;
  /* The calls are this function's to events and scopes, not the
   * trampoline's that every callable shares. */
  if (dvt_options_get_function (self->options) == NULL)
    dvt_options_set_function (self->options, func);

  return self;
}

/**
 * dvt_callable_new:
 * @runtime: the runtime that runs the calls
 * @func: (scope notified) (closure user_data) (destroy destroy): the
 *   function, run on a worker for each call
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data when the callable is finalized
 * @options: (nullable): the options of every call (copied), or %NULL
 *
 * Binds a blocking function to @runtime and @options.
 *
 * Returns: (transfer full): a new callable
 *
 * Since: 0.2
 */
DvtCallable *
dvt_callable_new (DvtRuntime      *runtime,
                  DvtCallableFunc  func,
                  gpointer         user_data,
                  GDestroyNotify   destroy,
                  DvtOptions      *options)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (runtime), NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), NULL);

  return callable_new (runtime, FALSE, func, user_data, destroy, options);
}

/**
 * dvt_callable_new_async:
 * @runtime: the runtime that runs the calls
 * @func: (scope notified) (closure user_data) (destroy destroy): the
 *   function, started on the runtime's loop thread (or the caller's main
 *   context with [property@Options:use-caller-context]) for each call;
 *   it may complete its task later
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data when the callable is finalized
 * @options: (nullable): the options of every call (copied), or %NULL
 *
 * Binds async work to @runtime and @options.
 *
 * Returns: (transfer full): a new callable
 *
 * Since: 0.2
 */
DvtCallable *
dvt_callable_new_async (DvtRuntime      *runtime,
                        DvtCallableFunc  func,
                        gpointer         user_data,
                        GDestroyNotify   destroy,
                        DvtOptions      *options)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (runtime), NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (options == NULL || DVT_IS_OPTIONS (options), NULL);

  return callable_new (runtime, TRUE, func, user_data, destroy, options);
}

/**
 * dvt_callable_get_runtime:
 * @self: a callable
 *
 * Gets the runtime that runs the calls.
 *
 * Returns: (transfer none): the runtime
 *
 * Since: 0.2
 */
DvtRuntime *
dvt_callable_get_runtime (DvtCallable *self)
{
  g_return_val_if_fail (DVT_IS_CALLABLE (self), NULL);

  return self->runtime;
}

/**
 * dvt_callable_dup_options:
 * @self: a callable
 *
 * Copies the options of the calls.
 *
 * Returns: (transfer full): a copy of the options
 *
 * Since: 0.2
 */
DvtOptions *
dvt_callable_dup_options (DvtCallable *self)
{
  g_return_val_if_fail (DVT_IS_CALLABLE (self), NULL);

  return self->options != NULL ? dvt_options_copy (self->options) : NULL;
}

/**
 * dvt_callable_get_is_async:
 * @self: a callable
 *
 * Gets [property@Callable:is-async].
 *
 * Returns: whether the function is async work on a main context
 *
 * Since: 0.2
 */
gboolean
dvt_callable_get_is_async (DvtCallable *self)
{
  g_return_val_if_fail (DVT_IS_CALLABLE (self), FALSE);

  return self->is_async;
}

/* ---- one call ------------------------------------------------------------ */

typedef struct
{
  DvtCallable *callable;
  GVariant    *args;
} Call;

static Call *
call_new (DvtCallable *self,
          GVariant    *args)
{
  Call *call = g_new (Call, 1);

  call->callable = g_object_ref (self);
  call->args = args != NULL ? g_variant_ref_sink (args) : NULL;

  return call;
}

static void
call_free (gpointer data)
{
  Call *call = data;

  g_clear_pointer (&call->args, g_variant_unref);
  g_object_unref (call->callable);
  g_free (call);
}

/* Serves as DvtThreadFunc and DvtAsyncFunc, which have the same shape. */
static void
run_call (DvtTask       *task,
          GCancellable  *cancellable,
          gpointer       data,
          GError       **error)
{
  Call *call = data;
  DvtCallable *self = call->callable;

  self->func (task, call->args, cancellable, self->user_data, error);
}

/* What every call checks. A floating @args is sunk, and dropped, even
 * when the call is refused. */
static gboolean
check_call (DvtCallable   *self,
            GVariant      *args,
            GCancellable  *cancellable,
            GError       **error)
{
  if (args != NULL)
    g_variant_ref_sink (args);

  if (G_LIKELY (DVT_IS_CALLABLE (self) && self->func != NULL &&
                (cancellable == NULL || G_IS_CANCELLABLE (cancellable))))
    return TRUE;

  g_clear_pointer (&args, g_variant_unref);
  dvt_return_val_if_fail_error (DVT_IS_CALLABLE (self), FALSE, error);
  dvt_return_val_if_fail_error (self->func != NULL, FALSE, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable),
                                FALSE, error);
  return FALSE;
}

/**
 * dvt_callable_call_blocking:
 * @self: a callable
 * @args: (nullable): the arguments of this call (a floating reference is
 *   taken), or %NULL
 * @cancellable: (nullable): cancels this call, or %NULL
 * @value: (out caller-allocates) (optional): an unset #GValue for the
 *   result
 * @error: return location for a #GError
 *
 * Calls the function with @args and waits for its result, as
 * [method@Runtime.to_thread_blocking] (or, for async work,
 * [method@Runtime.run_blocking]) does, with the callable's options.
 *
 * Returns: (skip): %TRUE on success, %FALSE if the call failed, timed out
 *   or was cancelled
 *
 * Since: 0.2
 */
gboolean
dvt_callable_call_blocking (DvtCallable   *self,
                            GVariant      *args,
                            GCancellable  *cancellable,
                            GValue        *value,
                            GError       **error)
{
  gboolean ok;

  if (!check_call (self, args, cancellable, error))
    return FALSE;

  if (self->is_async)
    ok = dvt_runtime_run_blocking (self->runtime, run_call, call_new (self, args), call_free,
                                   self->options, cancellable, value, error);
  else
    ok = dvt_runtime_to_thread_blocking (self->runtime, run_call, call_new (self, args),
                                         call_free, self->options, cancellable, value, error);
  g_clear_pointer (&args, g_variant_unref);

  return ok;
}

/**
 * dvt_callable_submit:
 * @self: a callable
 * @args: (nullable): the arguments of this call (a floating reference is
 *   taken), or %NULL
 * @cancellable: (nullable): cancels this call, or %NULL
 * @error: return location for a #GError
 *
 * Starts a call and returns its task, as [method@Runtime.submit] (or, for
 * async work, [method@Runtime.schedule]) does.
 *
 * Returns: (transfer full): the call's task, or %NULL if the runtime
 *   refused it
 *
 * Since: 0.2
 */
DvtTask *
dvt_callable_submit (DvtCallable   *self,
                     GVariant      *args,
                     GCancellable  *cancellable,
                     GError       **error)
{
  DvtTask *task;

  if (!check_call (self, args, cancellable, error))
    return NULL;

  if (self->is_async)
    task = dvt_runtime_schedule (self->runtime, run_call, call_new (self, args), call_free,
                                 self->options, cancellable, error);
  else
    task = dvt_runtime_submit (self->runtime, run_call, call_new (self, args), call_free,
                               self->options, cancellable, error);
  g_clear_pointer (&args, g_variant_unref);

  return task;
}

static void
free_value (gpointer data)
{
  g_value_unset (data);
  g_free (data);
}

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) outer = user_data;
  DvtCallable *self = g_task_get_source_object (outer);
  GValue *value = g_new0 (GValue, 1);
  GError *error = NULL;
  gboolean ok;

  if (self->is_async)
    ok = dvt_runtime_run_finish (self->runtime, result, value, &error);
  else
    ok = dvt_runtime_to_thread_finish (self->runtime, result, value, &error);

  if (ok)
    g_task_return_pointer (outer, value, free_value);
  else
    {
      free_value (value);
      g_task_return_error (outer, error);
    }
}

/**
 * dvt_callable_call_async:
 * @self: a callable
 * @args: (nullable): the arguments of this call (a floating reference is
 *   taken), or %NULL
 * @cancellable: (nullable): cancels this call, or %NULL
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the caller when the call has ended
 * @user_data: data for @callback
 *
 * Starts a call; @callback gets its result with
 * [method@Callable.call_finish].
 *
 * Since: 0.2
 */
void
dvt_callable_call_async (DvtCallable         *self,
                         GVariant            *args,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  GError *error = NULL;
  GTask *outer;

  if (!check_call (self, args, cancellable, &error))
    {
      g_task_report_error (DVT_IS_CALLABLE (self) ? self : NULL, callback, user_data,
                           dvt_callable_call_async, error);
      return;
    }

  outer = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (outer, dvt_callable_call_async);
  /* The outcome is the inner call's, cancelled or not. */
  g_task_set_check_cancellable (outer, FALSE);

  if (self->is_async)
    dvt_runtime_run_async (self->runtime, run_call, call_new (self, args), call_free,
                           self->options, cancellable, call_done, outer);
  else
    dvt_runtime_to_thread_async (self->runtime, run_call, call_new (self, args), call_free,
                                 self->options, cancellable, call_done, outer);
  g_clear_pointer (&args, g_variant_unref);
}

/**
 * dvt_callable_call_finish:
 * @self: a callable
 * @result: the result given to the callback of
 *   [method@Callable.call_async]
 * @value: (out caller-allocates) (optional): an unset #GValue for the
 *   result
 * @error: return location for a #GError
 *
 * Gets the result of a call started with [method@Callable.call_async].
 *
 * Returns: (skip): %TRUE on success, %FALSE if the call failed, timed out
 *   or was cancelled
 *
 * Since: 0.2
 */
gboolean
dvt_callable_call_finish (DvtCallable   *self,
                          GAsyncResult  *result,
                          GValue        *value,
                          GError       **error)
{
  GValue *got;

  dvt_return_val_if_fail_error (DVT_IS_CALLABLE (self), FALSE, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, self), FALSE, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);

  got = g_task_propagate_pointer (G_TASK (result), error);
  if (got == NULL)
    {
      /* As the runtime's calls: no value is a NULL pointer, which
       * bindings can convert. */
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  if (value != NULL)
    {
      *value = *got;
      g_free (got);
    }
  else
    free_value (got);

  return TRUE;
}
