/* dvt-channel.c: a producer on a worker streaming values to a consumer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <glib/gi18n-lib.h>

#include "dvt-channel.h"
#include "dvt-error-private.h"
#include "dvt-options.h"
#include "dvt-queue.h"
#include "dvt-runtime-private.h"
#include "dvt-task-private.h"

/**
 * DvtChannel:
 *
 * A stream of values from a producer running on a worker of a runtime to
 * a consumer on another thread or on a main loop, with back-pressure.
 *
 * [method@Runtime.produce] starts the producer, a [callback@ProduceFunc],
 * as a task of the runtime (its options apply: a timeout, a name, events)
 * and returns the channel. The producer sends values with
 * [method@Channel.send], which waits while [property@Channel:capacity]
 * values are buffered: the producer is never more than that many values
 * ahead of the consumer.
 *
 * The consumer takes them with [method@Channel.receive_blocking] from a
 * thread, [method@Channel.receive_async] from a main loop, or
 * [method@Channel.try_receive], in the order they were sent. When the
 * producer returns, the consumer receives the values left and then the
 * end of the stream: **a receive that returns %FALSE without an error is
 * the end of the stream**. When the producer fails (or its task is
 * cancelled or times out), the consumer receives every value sent before,
 * then that error, once; receives after it report the end of the stream.
 *
 * A consumer that wants no more calls [method@Channel.close]: the values
 * buffered are freed, the producer's next send fails with
 * %DVT_ERROR_CLOSED so that it can stop cleanly (its task then ends in
 * success), and receives fail with %DVT_ERROR_CLOSED. A shutdown of the
 * runtime does the same, with its own message: a producer blocked in a
 * send never holds a shutdown up. Close a channel you stop reading before
 * you drop it: its producer holds it, and would otherwise wait in its
 * next send until the runtime is shut down.
 *
 * The buffer is a [class@Queue], so the waits behave as the queue's do: a
 * receive cancelled at the instant a value is handed to it either returns
 * that value or leaves it for the next receive, never loses it.
 *
 * ```c
 * static gboolean
 * count (DvtChannel *channel, GCancellable *cancellable, gpointer data, GError **error)
 * {
 *   for (int i = 0; i < 1000; i++)
 *     {
 *       g_auto(GValue) value = G_VALUE_INIT;
 *
 *       g_value_init (&value, G_TYPE_INT);
 *       g_value_set_int (&value, i);
 *       if (!dvt_channel_send (channel, &value, cancellable, error))
 *         return FALSE;                 // closed by the consumer, or cancelled
 *     }
 *   return TRUE;
 * }
 *
 * g_autoptr(DvtChannel) channel = dvt_runtime_produce (runtime, count, NULL, NULL,
 *                                                      16, NULL, NULL, &error);
 * g_auto(GValue) value = G_VALUE_INIT;
 *
 * while (dvt_channel_receive_blocking (channel, 0, NULL, &value, &error))
 *   {
 *     use (g_value_get_int (&value));
 *     g_value_unset (&value);
 *   }
 * if (error != NULL)
 *   g_printerr ("the producer failed: %s\n", error->message);
 * ```
 *
 * Since: 0.2
 */

typedef enum
{
  CHANNEL_OPEN,
  CHANNEL_ENDED,     /* the producer's task ended: drain, then the end */
  CHANNEL_CLOSED,    /* by the consumer: the values are dropped */
  CHANNEL_SHUTDOWN,  /* the runtime was shut down: likewise */
} ChannelState;

struct _DvtChannel
{
  GObject           parent_instance;

  DvtRuntime       *runtime;
  DvtQueue         *queue;       /* the buffer */
  guint             capacity;
  DvtShutdownWatch *watch;
  DvtProduceFunc    func;
  gpointer          func_data;
  GDestroyNotify    func_data_destroy;

  GMutex            lock;
  int               state;       /* ChannelState; atomic, changed under lock */
  GError           *end_error;   /* ENDED: the producer's, until received */
  char             *reason;      /* CLOSED: the consumer's reason, or NULL */
};

enum
{
  PROP_0,
  PROP_CAPACITY,
  PROP_N_ITEMS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtChannel, dvt_channel, G_TYPE_OBJECT)

static void
dvt_channel_finalize (GObject *object)
{
  DvtChannel *self = DVT_CHANNEL (object);

  if (self->runtime != NULL)
    dvt_runtime_unwatch_shutdown (self->runtime, self->watch);
  if (self->func_data_destroy != NULL)
    self->func_data_destroy (self->func_data);
  g_clear_object (&self->queue);
  g_clear_object (&self->runtime);
  g_clear_error (&self->end_error);
  g_free (self->reason);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (dvt_channel_parent_class)->finalize (object);
}

static void
dvt_channel_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  DvtChannel *self = DVT_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_CAPACITY:
      g_value_set_uint (value, self->capacity);
      break;
    case PROP_N_ITEMS:
      g_value_set_uint (value, dvt_channel_get_n_items (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_channel_class_init (DvtChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dvt_channel_finalize;
  object_class->get_property = dvt_channel_get_property;

  /**
   * DvtChannel:capacity:
   *
   * The most values buffered between the producer and the consumer: a
   * send waits while that many are.
   *
   * Since: 0.2
   */
  properties[PROP_CAPACITY] =
    g_param_spec_uint ("capacity", NULL, NULL,
                       0, G_MAXINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * DvtChannel:n-items:
   *
   * How many values are buffered. It changes with every send and receive
   * and is never notified: read it when you need it.
   *
   * Since: 0.2
   */
  properties[PROP_N_ITEMS] =
    g_param_spec_uint ("n-items", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_channel_init (DvtChannel *self)
{
  g_mutex_init (&self->lock);
}

/* ---- ending ------------------------------------------------------------------- */

static inline ChannelState
channel_state (DvtChannel *self)
{
  return (ChannelState) g_atomic_int_get (&self->state);
}

/* Moves the channel to @state (ENDED only from OPEN; CLOSED and SHUTDOWN
 * from OPEN or ENDED), closes the buffer, and frees the values left unless
 * the consumer is still to receive them. Takes @end_error. */
static void
channel_end (DvtChannel   *self,
             ChannelState  state,
             GError       *end_error,
             const char   *reason)
{
  ChannelState old;
  GValue value = G_VALUE_INIT;

  g_mutex_lock (&self->lock);
  old = channel_state (self);
  if (old == CHANNEL_CLOSED || old == CHANNEL_SHUTDOWN ||
      (old == CHANNEL_ENDED && state == CHANNEL_ENDED))
    {
      g_mutex_unlock (&self->lock);
      g_clear_error (&end_error);
      return;
    }
  if (state == CHANNEL_ENDED)
    self->end_error = g_steal_pointer (&end_error);
  else
    {
      g_clear_error (&self->end_error);
      self->reason = g_strdup (reason);
    }
  /* Set before the buffer is closed: whoever finds it closed reads why. */
  g_atomic_int_set (&self->state, state);
  g_mutex_unlock (&self->lock);

  dvt_queue_close (self->queue);

  if (state != CHANNEL_ENDED)
    while (dvt_queue_try_pop (self->queue, &value, NULL))
      g_value_unset (&value);
}

static void
on_runtime_shutdown (GObject *object)
{
  channel_end (DVT_CHANNEL (object), CHANNEL_SHUTDOWN, NULL, NULL);
}

/* The error of a send that found the buffer closed. */
static void
set_send_closed_error (DvtChannel  *self,
                       GError     **error)
{
  switch (channel_state (self))
    {
    case CHANNEL_CLOSED:
      g_mutex_lock (&self->lock);
      if (self->reason != NULL)
        g_set_error (error, DVT_ERROR, DVT_ERROR_CLOSED,
                     _("The consumer closed the channel: %s"), self->reason);
      else
        g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                             _("The consumer closed the channel"));
      g_mutex_unlock (&self->lock);
      break;
    case CHANNEL_SHUTDOWN:
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The runtime was shut down"));
      break;
    case CHANNEL_OPEN:
    case CHANNEL_ENDED:
    default:
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The producer’s task has ended"));
      break;
    }
}

/* Turns @error, from a receive on the buffer, into the channel's outcome:
 * a closed buffer is the end of the stream (no error), the producer's
 * error (once), or the consumer's close or the shutdown. Other errors
 * (cancelled, timed out, empty) pass. Takes @error. */
static void
propagate_receive_error (DvtChannel  *self,
                         GError      *error,
                         GError     **out)
{
  GError *end_error = NULL;

  if (!g_error_matches (error, DVT_ERROR, DVT_ERROR_CLOSED))
    {
      g_propagate_error (out, error);
      return;
    }
  g_error_free (error);

  switch (channel_state (self))
    {
    case CHANNEL_ENDED:
      g_mutex_lock (&self->lock);
      end_error = g_steal_pointer (&self->end_error);
      g_mutex_unlock (&self->lock);
      if (end_error != NULL)
        g_propagate_error (out, end_error);
      break;
    case CHANNEL_SHUTDOWN:
      g_set_error_literal (out, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The runtime was shut down"));
      break;
    case CHANNEL_OPEN:
    case CHANNEL_CLOSED:
    default:
      g_set_error_literal (out, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The channel is closed"));
      break;
    }
}

/* ---- the producer ------------------------------------------------------------- */

static void
run_producer (DvtTask       *task,
              GCancellable  *cancellable,
              gpointer       data,
              GError       **error)
{
  DvtChannel *self = data;
  GError *local = NULL;

  if (!self->func (self, cancellable, self->func_data, &local) && local == NULL)
    local = g_error_new_literal (DVT_ERROR, DVT_ERROR_NOT_COMPLETED,
                                 _("The producer returned FALSE without an error, "
                                   "or a language binding refused to call it on a "
                                   "worker thread"));

  /* A producer told to stop by the consumer (or a shutdown) stops
   * cleanly, whether or not it passes the send's error on. */
  if (local != NULL && g_error_matches (local, DVT_ERROR, DVT_ERROR_CLOSED) &&
      channel_state (self) >= CHANNEL_CLOSED)
    g_clear_error (&local);

  if (local != NULL)
    g_propagate_error (error, local);
  else
    dvt_task_return_boolean (task, TRUE);
}

static void
on_producer_done (DvtTask  *task,
                  gpointer  data)
{
  DvtChannel *self = data;
  GError *error = NULL;

  if (!dvt_task_propagate_boolean (task, &error) && error == NULL)
    error = g_error_new_literal (DVT_ERROR, DVT_ERROR_FAILED, _("The producer failed"));
  channel_end (self, CHANNEL_ENDED, error, NULL);
  g_object_unref (self);
}

/**
 * dvt_runtime_produce:
 * @runtime: a runtime
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   the producer
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the channel is
 *   finalized
 * @capacity: the most values buffered, at least 1: the producer is never
 *   more than that many values ahead of the consumer
 * @options: (nullable): options for the producer's task (a timeout, a name;
 *   retries call @func again, and the values sent by the failed attempt
 *   stay sent)
 * @cancellable: (nullable): cancels the producer's task
 * @error: return location for a #GError
 *
 * Starts @func on a worker of @runtime, as a task of it, and returns the
 * channel it sends its values to. See [class@Channel].
 *
 * This function lives in `dvt-channel.c`, with the channel it makes.
 *
 * Returns: (transfer full) (nullable): the channel, or %NULL with
 *   %DVT_ERROR_INVALID_ARGUMENT if @capacity is less than 1, or
 *   %DVT_ERROR_CLOSED if the runtime was shut down
 *
 * Since: 0.2
 */
DvtChannel *
dvt_runtime_produce (DvtRuntime      *runtime,
                     DvtProduceFunc   func,
                     gpointer         func_data,
                     GDestroyNotify   func_data_destroy,
                     int              capacity,
                     DvtOptions      *options,
                     GCancellable    *cancellable,
                     GError         **error)
{
  g_autoptr(DvtChannel) self = NULL;
  g_autoptr(DvtTask) task = NULL;

  if (!dvt_runtime_check_call (G_STRFUNC, runtime, func, options, cancellable, NULL, error))
    return NULL;

  if (capacity < 1)
    {
      g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                   _("The capacity of a channel must be at least 1, not %d"), capacity);
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return NULL;
    }

  self = g_object_new (DVT_TYPE_CHANNEL, NULL);
  self->runtime = g_object_ref (runtime);
  self->capacity = (guint) capacity;
  self->queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, (guint) capacity);
  self->watch = dvt_runtime_watch_shutdown (runtime, G_OBJECT (self), on_runtime_shutdown);
  if (self->watch == NULL)
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The runtime has been shut down and accepts no "
                             "more work"));
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return NULL;
    }

  /* The channel keeps the producer's data and frees it when it is
   * finalized, normally where the consumer drops it: a language binding
   * (GJS) can free its closures only on its own thread, and the task
   * would free its data on the worker. */
  self->func = func;
  self->func_data = func_data;
  self->func_data_destroy = func_data_destroy;

  task = dvt_runtime_submit (runtime, run_producer, g_object_ref (self), g_object_unref,
                             options, cancellable, error);
  if (task == NULL)
    return NULL;

  dvt_task_add_done_hook (task, on_producer_done, g_object_ref (self));

  return g_steal_pointer (&self);
}

/* ---- the public face ---------------------------------------------------------- */

/**
 * dvt_channel_get_capacity:
 * @channel: a channel
 *
 * Gets the most values @channel buffers.
 *
 * Returns: the capacity
 *
 * Since: 0.2
 */
guint
dvt_channel_get_capacity (DvtChannel *channel)
{
  g_return_val_if_fail (DVT_IS_CHANNEL (channel), 0);

  return channel->capacity;
}

/**
 * dvt_channel_get_n_items:
 * @channel: a channel
 *
 * Gets how many values @channel buffers. Other threads may change it at
 * once.
 *
 * Returns: the number of buffered values
 *
 * Since: 0.2
 */
guint
dvt_channel_get_n_items (DvtChannel *channel)
{
  g_return_val_if_fail (DVT_IS_CHANNEL (channel), 0);

  return channel->queue != NULL ? dvt_queue_get_n_items (channel->queue) : 0;
}

/**
 * dvt_channel_is_closed:
 * @channel: a channel
 *
 * Tells whether the stream can bring no more values than those buffered:
 * the producer has ended, the consumer closed the channel, or the runtime
 * was shut down.
 *
 * Returns: %TRUE if the channel is closed to sends
 *
 * Since: 0.2
 */
gboolean
dvt_channel_is_closed (DvtChannel *channel)
{
  g_return_val_if_fail (DVT_IS_CHANNEL (channel), TRUE);

  return channel_state (channel) != CHANNEL_OPEN;
}

/**
 * dvt_channel_close:
 * @channel: a channel
 * @reason: (nullable): why, for the message of the error the producer's
 *   next send fails with
 *
 * Closes @channel from the consumer's side: the values buffered are
 * freed, waiting receives and later ones fail with %DVT_ERROR_CLOSED, and
 * the producer's next send (or the one it waits in) fails with
 * %DVT_ERROR_CLOSED, so that it stops; its task then ends in success.
 * The producer's error, if it had already ended with one, is dropped.
 *
 * Closing a closed channel does nothing. Any thread may close a channel.
 *
 * Since: 0.2
 */
void
dvt_channel_close (DvtChannel *channel,
                   const char *reason)
{
  g_return_if_fail (DVT_IS_CHANNEL (channel));

  if (channel->queue != NULL)
    channel_end (channel, CHANNEL_CLOSED, NULL, reason);
}

#define check_channel(channel, cancellable, error)                                  \
  G_STMT_START {                                                                    \
    dvt_return_val_if_fail_error (DVT_IS_CHANNEL (channel) && channel->queue != NULL, \
                                  FALSE, error);                                    \
    dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), \
                                  FALSE, error);                                    \
    g_return_val_if_fail (error == NULL || *error == NULL, FALSE);                 \
  } G_STMT_END

/**
 * dvt_channel_send:
 * @channel: a channel
 * @value: the value: a copy of it is sent
 * @cancellable: (nullable): a #GCancellable, normally the one the producer
 *   was given
 * @error: return location for a #GError
 *
 * Sends a copy of @value to the consumer, waiting while the channel holds
 * [property@Channel:capacity] values. Called by the producer, on its
 * worker; other threads may send too.
 *
 * Returns: %TRUE once the value is buffered (or handed to a waiting
 *   receive); %FALSE with %DVT_ERROR_CLOSED once the consumer has closed
 *   the channel, the runtime was shut down or the producer's task has
 *   ended, or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_channel_send (DvtChannel    *channel,
                  const GValue  *value,
                  GCancellable  *cancellable,
                  GError       **error)
{
  GError *local = NULL;

  check_channel (channel, cancellable, error);
  dvt_return_val_if_fail_error (value != NULL && G_IS_VALUE (value), FALSE, error);

  if (G_LIKELY (dvt_queue_push_blocking (channel->queue, value, 0, 0, cancellable, &local)))
    return TRUE;

  if (g_error_matches (local, DVT_ERROR, DVT_ERROR_CLOSED))
    {
      g_error_free (local);
      set_send_closed_error (channel, error);
    }
  else
    g_propagate_error (error, local);
  return FALSE;
}

/**
 * dvt_channel_send_many:
 * @channel: a channel
 * @values: (array length=n_values): the values, in order: copies of them
 *   are sent
 * @n_values: the number of @values
 * @n_sent: (out) (optional): return location for the number of values
 *   sent, all of them on success, fewer on failure
 * @cancellable: (nullable): a #GCancellable, normally the one the producer
 *   was given
 * @error: return location for a #GError
 *
 * Sends copies of @values to the consumer, in order, as many calls of
 * [method@Channel.send] would: each waits while the channel holds
 * [property@Channel:capacity] values, so @n_values may exceed the
 * capacity. It saves a language binding a call per value; a producer
 * should still send each value as soon as it has it rather than hold
 * values back to fill a batch.
 *
 * When a send fails, the values after it are not sent: @n_sent tells how
 * many were.
 *
 * Returns: %TRUE once every value is buffered (or handed to a waiting
 *   receive); %FALSE with an error as [method@Channel.send]
 *
 * Since: 0.3
 */
gboolean
dvt_channel_send_many (DvtChannel    *channel,
                       const GValue  *values,
                       guint          n_values,
                       guint         *n_sent,
                       GCancellable  *cancellable,
                       GError       **error)
{
  guint i;

  if (n_sent != NULL)
    *n_sent = 0;
  check_channel (channel, cancellable, error);
  dvt_return_val_if_fail_error (values != NULL || n_values == 0, FALSE, error);
  for (i = 0; i < n_values; i++)
    dvt_return_val_if_fail_error (G_IS_VALUE (&values[i]), FALSE, error);

  for (i = 0; i < n_values; i++)
    {
      if (!dvt_channel_send (channel, &values[i], cancellable, error))
        return FALSE;
      if (n_sent != NULL)
        *n_sent = i + 1;
    }
  return TRUE;
}

/**
 * dvt_channel_receive_blocking:
 * @channel: a channel
 * @timeout: the longest time to wait for a value, in seconds; 0 or less
 *   waits as long as it takes
 * @cancellable: (nullable): a #GCancellable
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the value; otherwise, a %NULL %G_TYPE_POINTER value
 * @error: return location for a #GError
 *
 * Takes the next value, waiting while none is buffered. Called from any
 * thread but the runtime's loop thread (there it fails at once with
 * %DVT_ERROR_WOULD_DEADLOCK); a main loop uses
 * [method@Channel.receive_async].
 *
 * Returns: %TRUE with a value. %FALSE **without an error at the end of
 *   the stream**; %FALSE with the producer's error (once, after the last
 *   value), %DVT_ERROR_CLOSED once the channel was closed or the runtime
 *   shut down, %G_IO_ERROR_TIMED_OUT if @timeout passes, or
 *   %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_channel_receive_blocking (DvtChannel    *channel,
                              double         timeout,
                              GCancellable  *cancellable,
                              GValue        *value,
                              GError       **error)
{
  GError *local = NULL;

  check_channel (channel, cancellable, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);

  if (!dvt_core_check_blocking (dvt_runtime_get_core (channel->runtime), &local))
    {
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      g_propagate_error (error, local);
      return FALSE;
    }

  if (G_LIKELY (dvt_queue_pop_blocking (channel->queue, timeout, cancellable, value, &local)))
    return TRUE;

  propagate_receive_error (channel, local, error);
  return FALSE;
}

/**
 * dvt_channel_try_receive:
 * @channel: a channel
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the value; otherwise, a %NULL %G_TYPE_POINTER value
 * @error: return location for a #GError
 *
 * Takes the next value if one is buffered, without waiting. Safe from any
 * thread, a main loop's included.
 *
 * Returns: %TRUE with a value; %FALSE with %DVT_ERROR_EMPTY if none is
 *   buffered yet; otherwise as [method@Channel.receive_blocking] (%FALSE
 *   without an error at the end of the stream)
 *
 * Since: 0.2
 */
gboolean
dvt_channel_try_receive (DvtChannel  *channel,
                         GValue      *value,
                         GError     **error)
{
  GError *local = NULL;

  check_channel (channel, NULL, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);

  if (dvt_queue_try_pop (channel->queue, value, &local))
    return TRUE;

  propagate_receive_error (channel, local, error);
  return FALSE;
}

/**
 * dvt_channel_try_receive_many:
 * @channel: a channel
 * @max_values: the most values to take; 0 takes every value buffered
 * @values: (out) (transfer full) (element-type GValue) (optional)
 *   (nullable): return location for the values taken, in order: a
 *   #GArray of #GValue, at least one, which frees them with itself; %NULL
 *   when the call returns %FALSE
 * @error: return location for a #GError
 *
 * Takes the values buffered, up to @max_values, without waiting: what
 * [method@Channel.try_receive] does for one value, with one call for all
 * of them. Safe from any thread, a main loop's included. Values the
 * producer sends meanwhile may or may not be among them; the end of the
 * stream or the producer's error comes from the next receive, after the
 * last value.
 *
 * A consumer can wait for the first value with
 * [method@Channel.receive_async] or [method@Channel.receive_blocking],
 * then take the rest at once with this function.
 *
 * Returns: %TRUE with at least one value; %FALSE with %DVT_ERROR_EMPTY if
 *   none is buffered yet; otherwise as [method@Channel.receive_blocking]
 *   (%FALSE without an error at the end of the stream)
 *
 * Since: 0.3
 */
gboolean
dvt_channel_try_receive_many (DvtChannel  *channel,
                              guint        max_values,
                              GArray     **values,
                              GError     **error)
{
  GValue value = G_VALUE_INIT;
  GError *local = NULL;
  GArray *array;

  if (values != NULL)
    *values = NULL;
  check_channel (channel, NULL, error);

  if (!dvt_queue_try_pop (channel->queue, &value, &local))
    {
      propagate_receive_error (channel, local, error);
      return FALSE;
    }

  array = g_array_sized_new (FALSE, TRUE, sizeof (GValue),
                             MAX (1, MIN (dvt_queue_get_n_items (channel->queue) + 1,
                                          max_values > 0 ? max_values : G_MAXUINT)));
  g_array_set_clear_func (array, (GDestroyNotify) g_value_unset);
  do
    {
      /* The GValue moves into the array: no copy, no unset. */
      g_array_append_val (array, value);
      memset (&value, 0, sizeof value);
    }
  while ((max_values == 0 || array->len < max_values) &&
         dvt_queue_try_pop (channel->queue, &value, NULL));

  if (values != NULL)
    *values = array;
  else
    g_array_unref (array);
  return TRUE;
}

static void
value_free (gpointer data)
{
  GValue *value = data;

  g_value_unset (value);
  g_free (value);
}

static void
on_popped (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  GTask *task = data;
  DvtChannel *self = g_task_get_source_object (task);
  GValue *value = g_new0 (GValue, 1);
  GError *local = NULL;
  GError *error = NULL;

  if (dvt_queue_pop_finish (DVT_QUEUE (source), result, value, &local))
    g_task_return_pointer (task, value, value_free);
  else
    {
      value_free (value);
      propagate_receive_error (self, local, &error);
      if (error != NULL)
        g_task_return_error (task, error);
      else
        g_task_return_pointer (task, NULL, NULL);   /* the end of the stream */
    }
  g_object_unref (task);
}

/**
 * dvt_channel_receive_async:
 * @channel: a channel
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once a value was
 *   taken, the stream has ended, or the receive failed
 * @user_data: data for @callback
 *
 * Takes the next value without blocking: the main-loop twin of
 * [method@Channel.receive_blocking]. @callback always runs after this call
 * has returned; call [method@Channel.receive_finish] there.
 *
 * Since: 0.2
 */
void
dvt_channel_receive_async (DvtChannel          *channel,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (DVT_IS_CHANNEL (channel) && channel->queue != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (channel, cancellable, callback, user_data);
  g_task_set_source_tag (task, dvt_channel_receive_async);
  /* The buffer decides whether a cancellation ends the receive: a value
   * handed to it is returned even if @cancellable fires meanwhile. */
  g_task_set_check_cancellable (task, FALSE);

  dvt_queue_pop_async (channel->queue, cancellable, on_popped, task);
}

/**
 * dvt_channel_receive_finish:
 * @channel: a channel
 * @result: the result given to the callback of
 *   [method@Channel.receive_async]
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the value; otherwise, a %NULL %G_TYPE_POINTER value
 * @error: return location for a #GError
 *
 * Finishes [method@Channel.receive_async].
 *
 * Returns: %TRUE with a value; %FALSE **without an error at the end of
 *   the stream**; otherwise %FALSE with an error, as
 *   [method@Channel.receive_blocking]
 *
 * Since: 0.2
 */
gboolean
dvt_channel_receive_finish (DvtChannel    *channel,
                            GAsyncResult  *result,
                            GValue        *value,
                            GError       **error)
{
  GValue *received;

  check_channel (channel, NULL, error);
  dvt_return_val_if_fail_error (g_task_is_valid (result, channel) &&
                                g_task_get_source_tag (G_TASK (result)) ==
                                dvt_channel_receive_async, FALSE, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);

  received = g_task_propagate_pointer (G_TASK (result), error);
  if (received == NULL)
    {
      if (value != NULL)
        g_value_init (value, G_TYPE_POINTER);
      return FALSE;
    }

  if (value != NULL)
    {
      *value = *received;
      memset (received, 0, sizeof *received);
    }
  value_free (received);
  return TRUE;
}
