/* dvt-async-op.c: the result of one _async call, delivered through its
 * caller's mailbox
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-async-op-private.h"
#include "dvt-fault-private.h"
#include "dvt-thread-private.h"

static void dvt_async_op_async_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (DvtAsyncOp, dvt_async_op, G_TYPE_OBJECT,
                                  G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                         dvt_async_op_async_result_iface_init))

static GObject *
dvt_async_op_get_source_object (GAsyncResult *result)
{
  DvtAsyncOp *op = DVT_ASYNC_OP (result);

  return op->source_object != NULL ? g_object_ref (op->source_object) : NULL;
}

static gpointer
dvt_async_op_get_user_data (GAsyncResult *result)
{
  return DVT_ASYNC_OP (result)->user_data;
}

static gboolean
dvt_async_op_is_tagged (GAsyncResult *result,
                        gpointer      source_tag)
{
  return DVT_ASYNC_OP (result)->source_tag == source_tag;
}

static void
dvt_async_op_async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_source_object = dvt_async_op_get_source_object;
  iface->get_user_data = dvt_async_op_get_user_data;
  iface->is_tagged = dvt_async_op_is_tagged;
}

/* Every op is delivered before it can be finalized (the delivery holds
 * it), and a spare was delivered before it became one: its handler is
 * disconnected and its mailbox released. */
static void
dvt_async_op_finalize (GObject *object)
{
  DvtAsyncOp *op = DVT_ASYNC_OP (object);

  g_assert (op->mailbox == NULL && op->handler == 0);
  g_clear_object (&op->cancellable);
  g_clear_object (&op->source_object);

  G_OBJECT_CLASS (dvt_async_op_parent_class)->finalize (object);
}

static void
dvt_async_op_class_init (DvtAsyncOpClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dvt_async_op_finalize;
}

static void
dvt_async_op_init (DvtAsyncOp *op)
{
}

/* Makes an op of @type (a subclass), or takes @spare's, for a call on
 * @source_object from this thread: its callback is delivered through the
 * mailbox, from @table, of this thread's thread-default context. A call
 * made from the callback of an op delivered through that same mailbox
 * (the next call of a chain) takes over that op's hold on it: the
 * mailbox stays, and the table's lock is not taken. Inside a section of
 * the fork gate. */
gpointer
dvt_async_op_new (GType                type,
                  gpointer             source_object,
                  DvtMailboxTable     *table,
                  DvtAsyncOp         **spare,
                  GAsyncReadyCallback  callback,
                  gpointer             user_data,
                  gpointer             source_tag)
{
  DvtAsyncOp *op = spare != NULL ? __atomic_exchange_n (spare, NULL, __ATOMIC_ACQUIRE) : NULL;
  DvtAsyncOp *delivering = dvt_thread_state ()->delivering_op;
  GMainContext *context = g_main_context_get_thread_default ();

  if (context == NULL)
    context = g_main_context_default ();
  if (op == NULL)
    op = g_object_new (type, NULL);
  g_assert (G_TYPE_FROM_INSTANCE (op) == type);

  op->source_object = g_object_ref (source_object);
  op->source_tag = source_tag;
  op->callback = callback;
  op->user_data = user_data;
  op->table = table;
  op->spare = spare;
  if (delivering != NULL && delivering->table == table && delivering->mailbox != NULL &&
      delivering->mailbox->context == context)
    op->mailbox = g_steal_pointer (&delivering->mailbox);
  else
    op->mailbox = dvt_mailbox_table_acquire (table, context);

  return op;
}

static void
on_cancelled (GCancellable *cancellable,
              gpointer      data)
{
  DvtAsyncOp *op = data;

  DVT_ASYNC_OP_GET_CLASS (op)->cancelled (op);
}

/* Connects @cancellable (not cancelled when the caller looked), whose
 * handler calls the class's cancelled(): at once, on this thread, if it
 * is cancelled by now; else on whichever thread cancels it. The handler
 * holds the op until it is disconnected, when the op is delivered. The
 * op may be completed and even delivered (by a thread that iterates the
 * caller's context) as soon as this is called: the caller holds a
 * reference of its own while it still touches the op. */
void
dvt_async_op_connect (DvtAsyncOp   *op,
                      GCancellable *cancellable)
{
  gulong handler;

  op->cancellable = g_object_ref (cancellable);
  handler = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled),
                                   g_object_ref (op), g_object_unref);
  __atomic_store_n (&op->handler, handler, __ATOMIC_RELEASE);
}

/* Never from inside the handler, where g_cancellable_disconnect() would
 * wait for itself: an op is delivered only by its mailbox's dispatch. A
 * handler running on another thread (the one that completed the op) is
 * waited for. */
static void
op_disconnect (DvtAsyncOp *op)
{
  gulong handler = __atomic_exchange_n (&op->handler, 0, __ATOMIC_ACQ_REL);

  if (handler != 0)
    DVT_CALLOUT (g_cancellable_disconnect (op->cancellable, handler));
  if (op->cancellable != NULL)
    DVT_CALLOUT (g_clear_object (&op->cancellable));
}

/* After the callback, in a section of the fork gate: drops the
 * delivery's reference. An op that nobody else can tell apart from a new
 * one (no other reference, no data or weak reference, which live in its
 * qdata) is cleared and becomes its source object's spare instead, unless
 * that has one already. The source object goes last, in a CALLOUT
 * stretch (its finalization frees the spare, and may call the
 * application); lowering the section costs nothing, raising it again
 * would. */
static void
op_release (DvtAsyncOp *op)
{
  DvtAsyncOp **spare = op->spare;
  GObject *source_object;

  if (spare == NULL ||
      g_atomic_int_get (&G_OBJECT (op)->ref_count) != 1 ||
      g_atomic_pointer_get (&G_OBJECT (op)->qdata) != NULL ||
      g_atomic_pointer_get (spare) != NULL)
    {
      dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
      g_object_unref (op);
      return;
    }

  source_object = g_steal_pointer (&op->source_object);
  op->source_tag = NULL;
  op->callback = NULL;
  op->user_data = NULL;
  op->table = NULL;
  op->spare = NULL;
  op->finished = FALSE;
  op->mail.deliver = NULL;
  DVT_ASYNC_OP_GET_CLASS (op)->reset (op);

  if (!g_atomic_pointer_compare_and_exchange (spare, NULL, op))
    g_object_unref (op);
  dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);
  g_object_unref (source_object);
}

/* On the caller's context: the callback (outside the fork gate), then the
 * op's reuse or release. The mailbox is released after the callback,
 * unless a call the callback made on the same context took it over. */
static void
op_deliver (DvtMail *mail)
{
  DvtAsyncOp *op = G_STRUCT_MEMBER_P (mail, -G_STRUCT_OFFSET (DvtAsyncOp, mail));
  DvtThreadState *state = dvt_thread_state ();
  gpointer outer = state->delivering_op;
  DvtForkGate gate;

  if (op->cancellable != NULL)
    {
      gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
      op_disconnect (op);
      dvt_fork_gate_leave (gate);
    }

  state->delivering_op = op;
  if (op->callback != NULL)
    DVT_APP_CALL (op->callback (op->source_object, (GAsyncResult *) op, op->user_data));
  state->delivering_op = outer;

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  if (op->mailbox != NULL)
    dvt_mailbox_table_release (op->table, g_steal_pointer (&op->mailbox));
  op_release (op);
  dvt_fork_gate_leave (gate);
}

/* The op's outcome is in place: its callback is delivered on the
 * caller's context. From any thread, once; the op is not to be touched
 * after this, unless the caller holds a reference of its own. */
void
dvt_async_op_complete (DvtAsyncOp *op)
{
  op->mail.deliver = op_deliver;
  dvt_mailbox_post (op->mailbox, &op->mail);
}

/* The op of @result if it is an op of @type that @source_object made
 * with @source_tag, and was not finished before; else NULL (a
 * programmer's mistake, for the caller to report). Marks it finished. */
gpointer
dvt_async_op_finish (GAsyncResult *result,
                     GType         type,
                     gpointer      source_object,
                     gpointer      source_tag)
{
  DvtAsyncOp *op;

  if (!G_TYPE_CHECK_INSTANCE_TYPE (result, type))
    return NULL;

  op = (DvtAsyncOp *) result;
  if (op->source_object != source_object || op->source_tag != source_tag || op->finished)
    return NULL;

  op->finished = TRUE;
  return op;
}
