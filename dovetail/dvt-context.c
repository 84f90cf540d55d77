/* dvt-context.c: a request context that follows the work
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-context.h"
#include "dvt-context-private.h"
#include "dvt-thread-private.h"

/**
 * DvtContext:
 *
 * A request context: named values (a request id, a user, a locale...)
 * that follow the work wherever it runs, as Python's `contextvars` do for
 * `asyncio.to_thread()`.
 *
 * A context is immutable: [method@Context.with] makes a new one with one
 * more value. Each thread has a current context, which
 * [method@Context.push] and [method@Context.pop] change. When a runtime
 * accepts a task, it captures the current context of the thread that
 * submits it, and makes it current wherever the task's work runs (a
 * worker, the loop thread, another thread's main context), for every
 * attempt; work submitted by that work captures it in turn, so a whole
 * chain of calls sees the values of the request that started it. A map's
 * items and a gather's tasks see the context of their call.
 *
 * For a thread the application starts itself, [func@Context.capture] the
 * context where the thread is made and [method@Context.run] in it.
 *
 * ```c
 * g_autoptr(DvtContext) base = dvt_context_new ();
 * g_autoptr(DvtContext) request = dvt_context_with_string (base, "request-id", id);
 *
 * dvt_context_push (request);
 * dvt_runtime_to_thread_async (runtime, handle, NULL, NULL, NULL, NULL, done, NULL);
 * dvt_context_pop (request);
 *
 * // in handle (), on a worker:
 * const char *id = dvt_context_get_string (dvt_context_get_current (), "request-id");
 * ```
 *
 * Since: 0.2
 */

typedef struct
{
  const char *key;     /* interned */
  GValue      value;
} Entry;

struct _DvtContext
{
  int    ref_count;
  guint  n_entries;
  Entry  entries[];    /* no two under the same key */
};

G_DEFINE_BOXED_TYPE (DvtContext, dvt_context, dvt_context_ref, dvt_context_unref)

static DvtContext *
context_alloc (guint n_entries)
{
  DvtContext *context = g_malloc0 (sizeof (DvtContext) + n_entries * sizeof (Entry));

  context->ref_count = 1;
  context->n_entries = n_entries;

  return context;
}

/**
 * dvt_context_new:
 *
 * Makes an empty context.
 *
 * Returns: (transfer full): a new context
 *
 * Since: 0.2
 */
DvtContext *
dvt_context_new (void)
{
  return context_alloc (0);
}

/**
 * dvt_context_ref:
 * @context: a context
 *
 * Takes a reference to @context, from any thread.
 *
 * Returns: (transfer full): @context
 *
 * Since: 0.2
 */
DvtContext *
dvt_context_ref (DvtContext *context)
{
  g_return_val_if_fail (context != NULL, NULL);

  g_atomic_int_inc (&context->ref_count);
  return context;
}

/**
 * dvt_context_unref:
 * @context: (transfer full): a context
 *
 * Drops a reference to @context, from any thread.
 *
 * Since: 0.2
 */
void
dvt_context_unref (DvtContext *context)
{
  g_return_if_fail (context != NULL);

  if (!g_atomic_int_dec_and_test (&context->ref_count))
    return;

  for (guint i = 0; i < context->n_entries; i++)
    g_value_unset (&context->entries[i].value);
  g_free (context);
}

static const Entry *
find_entry (DvtContext *context,
            const char *key)
{
  const char *interned = g_intern_string (key);

  for (guint i = 0; i < context->n_entries; i++)
    if (context->entries[i].key == interned)
      return &context->entries[i];

  return NULL;
}

/**
 * dvt_context_with:
 * @context: a context
 * @key: the value's name
 * @value: the value, copied
 *
 * Makes a new context with the values of @context and @value under @key,
 * which replaces a value of that name. @context itself does not change.
 *
 * Returns: (transfer full): the new context
 *
 * Since: 0.2
 */
DvtContext *
dvt_context_with (DvtContext   *context,
                  const char   *key,
                  const GValue *value)
{
  const char *interned;
  DvtContext *made;
  guint n = 0;

  g_return_val_if_fail (context != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (G_IS_VALUE (value), NULL);

  interned = g_intern_string (key);
  made = context_alloc (context->n_entries + (find_entry (context, key) == NULL ? 1 : 0));
  for (guint i = 0; i < context->n_entries; i++)
    {
      if (context->entries[i].key == interned)
        continue;
      made->entries[n].key = context->entries[i].key;
      g_value_init (&made->entries[n].value, G_VALUE_TYPE (&context->entries[i].value));
      g_value_copy (&context->entries[i].value, &made->entries[n].value);
      n++;
    }
  made->entries[n].key = interned;
  g_value_init (&made->entries[n].value, G_VALUE_TYPE (value));
  g_value_copy (value, &made->entries[n].value);

  return made;
}

/**
 * dvt_context_with_string:
 * @context: a context
 * @key: the value's name
 * @value: a string, copied
 *
 * [method@Context.with] for a string.
 *
 * Returns: (transfer full): the new context
 *
 * Since: 0.2
 */
DvtContext *
dvt_context_with_string (DvtContext *context,
                         const char *key,
                         const char *value)
{
  g_auto(GValue) v = G_VALUE_INIT;

  g_return_val_if_fail (context != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, value);

  return dvt_context_with (context, key, &v);
}

/**
 * dvt_context_lookup:
 * @context: (nullable): a context, or %NULL for none
 * @key: the value's name
 * @value: (out caller-allocates) (optional): an unset #GValue to receive a
 *   copy of the value
 *
 * Looks a value up.
 *
 * Returns: %TRUE if @context has a value under @key
 *
 * Since: 0.2
 */
gboolean
dvt_context_lookup (DvtContext   *context,
                    const char   *key,
                    GValue       *value)
{
  const Entry *entry;

  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (value == NULL || !G_IS_VALUE (value), FALSE);

  entry = context != NULL ? find_entry (context, key) : NULL;
  if (entry == NULL)
    {
      /* Bindings convert the out value even when there is none. */
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  if (value != NULL)
    {
      g_value_init (value, G_VALUE_TYPE (&entry->value));
      g_value_copy (&entry->value, value);
    }

  return TRUE;
}

/**
 * dvt_context_get_string:
 * @context: (nullable): a context, or %NULL for none
 * @key: the value's name
 *
 * Gets a string value.
 *
 * Returns: (nullable): the string under @key, valid as long as @context,
 *   or %NULL if there is none or it is not a string
 *
 * Since: 0.2
 */
const char *
dvt_context_get_string (DvtContext *context,
                        const char *key)
{
  const Entry *entry;

  g_return_val_if_fail (key != NULL, NULL);

  entry = context != NULL ? find_entry (context, key) : NULL;
  if (entry == NULL || !G_VALUE_HOLDS_STRING (&entry->value))
    return NULL;

  return g_value_get_string (&entry->value);
}

/**
 * dvt_context_get_keys:
 * @context: (nullable): a context, or %NULL for none
 *
 * Lists the names of the values of @context.
 *
 * Returns: (transfer full): a %NULL-terminated array of names
 *
 * Since: 0.2
 */
char **
dvt_context_get_keys (DvtContext *context)
{
  GStrvBuilder *builder = g_strv_builder_new ();
  char **keys;

  for (guint i = 0; context != NULL && i < context->n_entries; i++)
    g_strv_builder_add (builder, context->entries[i].key);
  keys = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);

  return keys;
}

/* ---- the current context ---------------------------------------------------- */

static void
unref_nullable (gpointer context)
{
  if (context != NULL)
    dvt_context_unref (context);
}

/**
 * dvt_context_get_current:
 *
 * Gets the context current on this thread: the one last pushed, or, in a
 * runtime's work, the one of the task's submitter.
 *
 * Returns: (transfer none) (nullable): the context, or %NULL if none is
 *   current
 *
 * Since: 0.2
 */
DvtContext *
dvt_context_get_current (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  return state != NULL ? state->context : NULL;
}

/**
 * dvt_context_push:
 * @context: a context
 *
 * Makes @context current on this thread until [method@Context.pop]. Pushes
 * nest: each pop makes the context before it current again.
 *
 * Since: 0.2
 */
void
dvt_context_push (DvtContext *context)
{
  DvtThreadState *state;

  g_return_if_fail (context != NULL);

  state = dvt_thread_state ();
  state->context_unref = unref_nullable;
  state->context_stack = g_slist_prepend (state->context_stack, state->context);
  state->context = dvt_context_ref (context);
}

/**
 * dvt_context_pop:
 * @context: the context pushed last
 *
 * Undoes the last [method@Context.push] of this thread, which must have
 * pushed @context.
 *
 * Since: 0.2
 */
void
dvt_context_pop (DvtContext *context)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  g_return_if_fail (context != NULL);
  g_return_if_fail (state != NULL && state->context == context);

  state->context = state->context_stack->data;
  state->context_stack = g_slist_delete_link (state->context_stack, state->context_stack);
  dvt_context_unref (context);
}

/**
 * dvt_context_capture:
 *
 * Takes the context current on this thread, to run code in it on another
 * thread with [method@Context.run].
 *
 * Returns: (transfer full) (nullable): the current context, or %NULL if
 *   none is current
 *
 * Since: 0.2
 */
DvtContext *
dvt_context_capture (void)
{
  DvtContext *current = dvt_context_get_current ();

  return current != NULL ? dvt_context_ref (current) : NULL;
}

/**
 * dvt_context_run:
 * @context: (nullable): a context, or %NULL to run with none current
 * @func: (scope call) (closure user_data): the code to run
 * @user_data: data for @func
 *
 * Runs @func with @context current on this thread, then makes the
 * previous context current again.
 *
 * Since: 0.2
 */
void
dvt_context_run (DvtContext     *context,
                 DvtContextFunc  func,
                 gpointer        user_data)
{
  gpointer saved;

  g_return_if_fail (func != NULL);

  saved = dvt_context_enter (context);
  func (user_data);
  dvt_context_leave (saved);
}

/* For the layers below the public face: makes @context (which may be
 * NULL) current, returns what to give dvt_context_leave(). Costs nothing
 * on a thread that has no context and is given none. */
gpointer
dvt_context_enter (DvtContext *context)
{
  DvtThreadState *state;
  DvtContext *previous;

  if (context == NULL)
    {
      state = dvt_thread_state_peek ();
      if (state == NULL || state->context == NULL)
        return NULL;
    }
  else
    state = dvt_thread_state ();

  previous = state->context;
  state->context = context != NULL ? dvt_context_ref (context) : NULL;

  /* The previous one's reference moves to the caller. */
  return previous != NULL ? previous : DVT_CONTEXT_NONE;
}

void
dvt_context_leave (gpointer saved)
{
  DvtThreadState *state;

  if (saved == NULL)
    return;

  state = dvt_thread_state ();
  g_clear_pointer ((DvtContext **) &state->context, dvt_context_unref);
  state->context = saved != DVT_CONTEXT_NONE ? saved : NULL;
}
