/* dvt-async-op-private.h: the result of one _async call, delivered
 * through its caller's mailbox
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "dvt-mailbox-private.h"

G_BEGIN_DECLS

/* A DvtAsyncOp is what a GTask is to an _async call that completes from
 * any thread, without a GTask's cost: a small GObject implementing
 * GAsyncResult, made (or reused) when the call starts, and handed to the
 * callback on the thread-default context of the thread that made the
 * call. It is delivered as mail, through a mailbox of that context from
 * a table of its source object's: no GSource per call, and callbacks that
 * complete one another's calls at once are delivered by one dispatch.
 *
 * A subclass adds what its call carries (a waiter, an item) and how it
 * ends; the outcome is in its fields, written before
 * dvt_async_op_complete() and read by its finish function. Once the
 * callback has returned, an op that nobody else holds is cleared and kept
 * as its source object's spare, for the next call: a steady stream of
 * calls allocates nothing.
 *
 * The promises of GTask hold: the callback runs on the caller's
 * thread-default context, never before the _async call has returned
 * (delivery happens only when that context is iterated), and a result
 * kept beyond the callback stays valid (it is then not reused). */

#define DVT_TYPE_ASYNC_OP            (dvt_async_op_get_type ())
#define DVT_ASYNC_OP(obj)            (G_TYPE_CHECK_INSTANCE_CAST ((obj), DVT_TYPE_ASYNC_OP, DvtAsyncOp))
#define DVT_ASYNC_OP_GET_CLASS(obj)  (G_TYPE_INSTANCE_GET_CLASS ((obj), DVT_TYPE_ASYNC_OP, DvtAsyncOpClass))

typedef struct _DvtAsyncOp      DvtAsyncOp;
typedef struct _DvtAsyncOpClass DvtAsyncOpClass;

struct _DvtAsyncOp
{
  GObject              parent_instance;

  /* Read by subclasses; written by dvt-async-op.c. */
  GObject             *source_object;  /* held until finalized or reused */
  gpointer             source_tag;

  /* dvt-async-op.c's own. */
  GAsyncReadyCallback  callback;
  gpointer             user_data;
  DvtMailboxTable     *table;
  DvtMailbox          *mailbox;        /* one user of it until delivered */
  DvtAsyncOp         **spare;          /* where the op waits to be reused */
  GCancellable        *cancellable;    /* held while its handler may run */
  gulong               handler;        /* atomic */
  gboolean             finished;       /* a finish function took the outcome */
  DvtMail              mail;
};

struct _DvtAsyncOpClass
{
  GObjectClass parent_class;

  /* From the cancellable's handler, on whichever thread cancelled it,
   * while the op has not been delivered. */
  void (*cancelled) (DvtAsyncOp *op);
  /* Frees what the subclass holds (as its finalize would), and leaves
   * its fields as a new op has them: the op is about to be reused. */
  void (*reset)     (DvtAsyncOp *op);
};

GType       dvt_async_op_get_type  (void) G_GNUC_CONST;

gpointer    dvt_async_op_new       (GType                type,
                                    gpointer             source_object,
                                    DvtMailboxTable     *table,
                                    DvtAsyncOp         **spare,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data,
                                    gpointer             source_tag);
void        dvt_async_op_connect   (DvtAsyncOp          *op,
                                    GCancellable        *cancellable);
void        dvt_async_op_complete  (DvtAsyncOp          *op);
gpointer    dvt_async_op_finish    (GAsyncResult        *result,
                                    GType                type,
                                    gpointer             source_object,
                                    gpointer             source_tag);

G_END_DECLS
