/* dvt-task-group.c: an open group of tasks, waited for together
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-error-private.h"
#include "dvt-fault-private.h"
#include "dvt-i18n-private.h"
#include "dvt-runtime-private.h"
#include "dvt-task-group.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"
#include "dvt-latch-private.h"

/**
 * DvtTaskGroup:
 *
 * An open group of tasks of one [class@Runtime], waited for together.
 *
 * Tasks join a group over time: the group starts them itself
 * ([method@TaskGroup.submit], [method@TaskGroup.schedule], the twins of
 * [method@Runtime.submit] and [method@Runtime.schedule]), or a task
 * started elsewhere is added to it ([method@TaskGroup.add]). Each is
 * called a member of the group; [method@TaskGroup.get_tasks] lists them
 * in the order they joined.
 *
 * - **All.** [method@TaskGroup.wait_blocking] (and, from a main loop,
 *   [method@TaskGroup.wait_async]) waits until every member has ended,
 *   members that join meanwhile included. A failing member does not cancel
 *   the others unless [property@TaskGroup:cancel-on-failure] is set; the
 *   wait then reports the first failure (an error other than
 *   %G_IO_ERROR_CANCELLED if there is one; a cancellation that the group
 *   itself asked for is no failure), or, with
 *   [property@TaskGroup:return-errors], succeeds and leaves every member's
 *   outcome to be read from the member itself. The wait's timeout is an
 *   exit deadline: once it passes, the members that have not ended are
 *   cancelled, and the wait fails with %G_IO_ERROR_TIMED_OUT once they
 *   have.
 * - **As they end.** [method@TaskGroup.next_blocking] and
 *   [method@TaskGroup.next_async] hand out the members in the order they
 *   end, each once; a member that ended before anyone asked is kept until
 *   someone does. When every member has been handed out and none is left
 *   running they return %NULL without an error: the end of the stream.
 * - **Any.** [method@TaskGroup.first_blocking] and
 *   [method@TaskGroup.first_async] return the first member to succeed,
 *   optionally cancelling the rest.
 *
 * [property@TaskGroup:max-concurrency] bounds how many of the members the
 * group starts itself may run at once; the others wait in the group,
 * queued, holding no worker, and start in the order they were submitted
 * as places free up. Members added with [method@TaskGroup.add] are only
 * watched: they run as their own calls said.
 *
 * [method@TaskGroup.close] stops the group from taking members; so does
 * the shutdown of its runtime (later calls fail with %DVT_ERROR_CLOSED).
 * Closing changes nothing for the members already in the group.
 *
 * ```c
 * g_autoptr(DvtTaskGroup) group = dvt_task_group_new (runtime);
 *
 * dvt_task_group_set_max_concurrency (group, 4);
 * for (guint i = 0; i < n_urls; i++)
 *   {
 *     g_autoptr(DvtTask) task = dvt_task_group_submit (group, fetch, urls[i], NULL,
 *                                                      NULL, NULL, &error);
 *     if (task == NULL)
 *       break;                                  // closed, or shut down
 *   }
 * if (!dvt_task_group_wait_blocking (group, 30, NULL, &error))
 *   g_printerr ("%s\n", error->message);   // the first failure, or the timeout
 * ```
 *
 * Since: 0.2
 */

/* ---- members ---------------------------------------------------------------- */

typedef enum
{
  MEMBER_FOREIGN,   /* added: only watched */
  MEMBER_HELD,      /* submitted, waiting in the group for a place */
  MEMBER_RUNNING,   /* submitted and dispatched: holds a place */
  MEMBER_ENDED,
} MemberState;

typedef struct
{
  GList         link;     /* in held, then in ended (under the lock) */
  DvtTask      *task;     /* held */
  DvtTaskGroup *group;    /* held until the member has ended */
  MemberState   state;    /* under the lock */
  gboolean      cancelled_by_group;  /* under the lock */
  struct _Work *work;     /* a blocking member's, set as it joins */
} Member;

/* Where a blocking member's function stands (Work.state, atomic). */
enum
{
  WORK_IDLE,          /* not running: not started, or between attempts */
  WORK_RUNNING,
  WORK_ENDED_RUNNING, /* the member ended while its function ran */
  WORK_RELEASED,      /* the member ended; its place and the group let go */
};

/* The data of a blocking member's function: the group runs it through
 * run_member(), so that a member ended by a cancellation or a timeout
 * while its function runs on keeps its place until the function returns.
 * One atomic state, no lock, decides who gives the place back: the
 * member's end if the function is not running, else the function's
 * return, which then also drops a reference to the group that the end
 * took for it. The work holds no reference of its own (the group holds
 * the task, which holds this): while it may run, the member, or that
 * reference, keeps the group. */
typedef struct _Work
{
  DvtThreadFunc  func;
  gpointer       data;
  GDestroyNotify destroy;
  DvtTaskGroup  *group;
  int            state;    /* atomic */
} Work;

/* One blocking call waiting in the group: woken (and unlinked) on every
 * change, it looks again at what it waits for under the lock. The waking
 * side sets the latch under the lock, so a waiter that has taken the lock
 * after waking knows that nobody touches its latch any more. */
typedef struct
{
  GList         link;
  DvtTaskGroup *group;
  DvtLatch      woken;
  GMainContext *iterate;  /* acquired by the waiter, or NULL */
} Waiter;

typedef enum
{
  OP_WAIT,
  OP_NEXT,
  OP_FIRST,
} OpKind;

/* One _async() call: the GTask's task data. Linked in the group's list
 * while it waits; whoever unlinks it (a change that satisfies it, or its
 * cancellable) completes it, once. */
typedef struct
{
  GList         link;
  OpKind        kind;
  gboolean      linked;      /* under the lock */
  gboolean      cancel_rest; /* OP_FIRST */
  gboolean      timed_out;   /* OP_WAIT: its exit timeout passed */
  double        timeout;     /* OP_WAIT: that timeout, in seconds */
  GTask        *gtask;       /* held while linked */
  DvtTask      *result;      /* OP_NEXT, OP_FIRST: the member, held */
  GError       *error;
  GCancellable *cancellable;
  gulong        handler;
  GSource      *timer;       /* OP_WAIT with a timeout */
} AsyncOp;

struct _DvtTaskGroup
{
  GObject       parent_instance;

  DvtRuntime   *runtime;

  GMutex        lock;
  guint         max_concurrency;   /* 0: no limit */
  gboolean      cancel_on_failure;
  gboolean      return_errors;
  gboolean      closed;
  gboolean      failure_cancelled; /* cancel-on-failure has cancelled */

  GPtrArray    *members;           /* Member, in the order they joined */
  GHashTable   *index;             /* DvtTask → Member */
  guint         n_unfinished;
  guint         n_running;         /* MEMBER_RUNNING */
  GQueue        held;              /* MEMBER_HELD, in order */
  GQueue        ended;             /* ended, not yet handed out by next */
  DvtTask      *first_success;     /* the first member to succeed */
  DvtTask      *first_failure;     /* the first to fail, not cancelled */
  DvtTask      *first_cancelled;   /* the first to end cancelled */
  GMainContext *run_context;       /* of a member's async work, if any */

  GQueue        waiters;           /* Waiter */
  GQueue        ops;               /* AsyncOp */
};

enum
{
  PROP_0,
  PROP_RUNTIME,
  PROP_MAX_CONCURRENCY,
  PROP_CANCEL_ON_FAILURE,
  PROP_RETURN_ERRORS,
  PROP_CLOSED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtTaskGroup, dvt_task_group, G_TYPE_OBJECT)

#define MEMBER_OF_LINK(l) ((Member *) G_STRUCT_MEMBER_P ((l), -G_STRUCT_OFFSET (Member, link)))
#define WAITER_OF_LINK(l) ((Waiter *) G_STRUCT_MEMBER_P ((l), -G_STRUCT_OFFSET (Waiter, link)))
#define OP_OF_LINK(l)     ((AsyncOp *) G_STRUCT_MEMBER_P ((l), -G_STRUCT_OFFSET (AsyncOp, link)))

static void
member_free (gpointer data)
{
  Member *member = data;

  g_object_unref (member->task);
  g_free (member);
}

static gboolean
is_cancellation (DvtTask *task)
{
  return g_error_matches (task->result.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* ---- what a call waits for (under the lock) --------------------------------- */

/* The failure the group reports: the first that was not a cancellation,
 * or else the first cancellation. */
static DvtTask *
reported_failure_locked (DvtTaskGroup *self)
{
  return self->first_failure != NULL ? self->first_failure : self->first_cancelled;
}

/* How a wait that is over ends: %FALSE with @error, or %TRUE. */
static gboolean
wait_outcome_locked (DvtTaskGroup  *self,
                     gboolean       timed_out,
                     double         timeout,
                     GError       **error)
{
  DvtTask *failed;

  if (timed_out)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   g_dngettext (GETTEXT_PACKAGE,
                                "The tasks of the group did not end within %g second: "
                                "those left were cancelled",
                                "The tasks of the group did not end within %g seconds: "
                                "those left were cancelled",
                                dvt_i18n_plural_count (timeout)),
                   timeout);
      return FALSE;
    }

  failed = reported_failure_locked (self);
  if (failed != NULL && !self->return_errors)
    {
      g_propagate_error (error, g_error_copy (failed->result.error));
      return FALSE;
    }

  return TRUE;
}

/* How a first() that is over ends: the member that succeeded (held), or
 * %NULL with @error. Over once a member succeeded or none is left. */
static DvtTask *
first_outcome_locked (DvtTaskGroup  *self,
                      GError       **error)
{
  DvtTask *failed;

  if (self->first_success != NULL)
    return g_object_ref (self->first_success);

  failed = reported_failure_locked (self);
  if (failed != NULL)
    g_propagate_error (error, g_error_copy (failed->result.error));
  else
    g_set_error_literal (error, DVT_ERROR, DVT_ERROR_EMPTY,
                         _("The task group has no task to wait for"));
  return NULL;
}

static gboolean
first_is_over_locked (DvtTaskGroup *self)
{
  return self->first_success != NULL || self->n_unfinished == 0;
}

/* next(): the next member handed out (held), or %NULL at the end. Over
 * when a member is waiting to be handed out, or none is left running. */
static gboolean
next_is_over_locked (DvtTaskGroup *self)
{
  return self->ended.head != NULL || self->n_unfinished == 0;
}

static DvtTask *
next_take_locked (DvtTaskGroup *self)
{
  GList *link = g_queue_pop_head_link (&self->ended);

  return link != NULL ? g_object_ref (MEMBER_OF_LINK (link)->task) : NULL;
}

/* Wakes every blocking waiter (each looks again), and moves the async
 * calls that are over to @done, with their outcome. Sets *@cancel_rest if
 * a first() that asked for it got its member. */
static void
serve_locked (DvtTaskGroup *self,
              GQueue       *done,
              gboolean     *cancel_rest)
{
  GList *link;

  while ((link = g_queue_pop_head_link (&self->waiters)) != NULL)
    {
      Waiter *waiter = WAITER_OF_LINK (link);

      dvt_latch_set (&waiter->woken);
      if (waiter->iterate != NULL)
        g_main_context_wakeup (waiter->iterate);
    }

  link = self->ops.head;
  while (link != NULL)
    {
      AsyncOp *op = OP_OF_LINK (link);
      gboolean over = FALSE;

      link = link->next;
      switch (op->kind)
        {
        case OP_WAIT:
          if ((over = self->n_unfinished == 0))
            wait_outcome_locked (self, op->timed_out, op->timeout, &op->error);
          break;
        case OP_NEXT:
          if ((over = next_is_over_locked (self)))
            op->result = next_take_locked (self);
          break;
        case OP_FIRST:
          if ((over = first_is_over_locked (self)))
            {
              op->result = first_outcome_locked (self, &op->error);
              if (op->result != NULL && op->cancel_rest)
                *cancel_rest = TRUE;
            }
          break;
        default:
          g_assert_not_reached ();
        }

      if (over)
        {
          g_queue_unlink (&self->ops, &op->link);
          op->linked = FALSE;
          g_queue_push_tail_link (done, &op->link);
        }
    }
}

/* ---- async calls -------------------------------------------------------------- */

static void
op_free (gpointer data)
{
  AsyncOp *op = data;

  g_assert (!op->linked);
  g_clear_object (&op->result);
  g_clear_error (&op->error);
  if (op->timer != NULL)
    {
      g_source_destroy (op->timer);
      g_source_unref (op->timer);
    }
  g_clear_object (&op->cancellable);
  g_free (op);
}

/* The cancellable's handler holds the GTask until it is disconnected: by
 * the _finish() call, or by the cancellable's own finalization. Never from
 * inside the handler, nor where a member's end completes the call (the
 * same cancellable may be ending that member right now, on this thread),
 * where g_cancellable_disconnect() would deadlock. */
static void
op_disconnect (AsyncOp *op)
{
  gulong handler = op->handler;

  op->handler = 0;
  if (handler != 0)
    g_cancellable_disconnect (op->cancellable, handler);
}

/* Completes the calls that serve_locked() moved to @done; the lock is
 * released. */
static void
complete_ops (DvtTaskGroup *self,
              GQueue       *done)
{
  GList *link;

  while ((link = g_queue_pop_head_link (done)) != NULL)
    {
      AsyncOp *op = OP_OF_LINK (link);
      GTask *gtask = op->gtask;

      op->gtask = NULL;
      if (op->timer != NULL)
        g_source_destroy (op->timer);

      switch (op->kind)
        {
        case OP_WAIT:
          if (op->error != NULL)
            DVT_CALLOUT (g_task_return_error (gtask, g_steal_pointer (&op->error)));
          else
            DVT_CALLOUT (g_task_return_boolean (gtask, TRUE));
          break;
        case OP_NEXT:
        case OP_FIRST:
          if (op->error != NULL)
            DVT_CALLOUT (g_task_return_error (gtask, g_steal_pointer (&op->error)));
          else
            DVT_CALLOUT (g_task_return_pointer (gtask, g_steal_pointer (&op->result),
                                                g_object_unref));
          break;
        default:
          g_assert_not_reached ();
        }
      DVT_CALLOUT (g_object_unref (gtask));
    }
}

/* From the op's cancellable: the call ends, the members go on. */
static void
on_op_cancelled (GCancellable *cancellable,
                 gpointer      data)
{
  GTask *gtask = data;
  AsyncOp *op = g_task_get_task_data (gtask);
  DvtTaskGroup *self = g_task_get_source_object (gtask);
  gboolean was_linked;

  g_mutex_lock (&self->lock);
  was_linked = op->linked;
  if (was_linked)
    {
      g_queue_unlink (&self->ops, &op->link);
      op->linked = FALSE;
    }
  g_mutex_unlock (&self->lock);

  if (!was_linked)
    return;

  if (op->timer != NULL)
    g_source_destroy (op->timer);
  op->gtask = NULL;
  /* The cancellable is cancelled: GTask calls back from a later
   * iteration, never from here. */
  g_task_return_new_error (gtask, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s",
                           _("The wait for the task group was cancelled"));
  g_object_unref (gtask);
}

/* ---- members' ends ------------------------------------------------------------ */

/* The members that have not ended, held, for the group to cancel: those
 * it holds back first (so that cancelling the running ones does not start
 * them). A cancellation the group asked for is not a failure of the
 * group (see member_done()). */
static GPtrArray *
unfinished_locked (DvtTaskGroup *self)
{
  GPtrArray *tasks = g_ptr_array_new_with_free_func (g_object_unref);

  for (GList *l = self->held.head; l != NULL; l = l->next)
    {
      MEMBER_OF_LINK (l)->cancelled_by_group = TRUE;
      g_ptr_array_add (tasks, g_object_ref (MEMBER_OF_LINK (l)->task));
    }
  for (guint i = 0; i < self->members->len; i++)
    {
      Member *member = g_ptr_array_index (self->members, i);

      if (member->state != MEMBER_ENDED && member->state != MEMBER_HELD)
        {
          member->cancelled_by_group = TRUE;
          g_ptr_array_add (tasks, g_object_ref (member->task));
        }
    }

  return tasks;
}

/* Cancels @tasks (the lock is released) and frees the array. */
static guint
cancel_tasks (GPtrArray *tasks)
{
  guint n;

  if (tasks == NULL)
    return 0;

  n = tasks->len;
  DVT_CALLOUT (for (guint i = 0; i < n; i++)
                 dvt_task_cancel (g_ptr_array_index (tasks, i));
               g_ptr_array_unref (tasks));

  return n;
}

/* Gives the free places to the members held back, in order: returns
 * their tasks, held, to dispatch once the lock is released. */
static GPtrArray *
take_places_locked (DvtTaskGroup *self)
{
  GPtrArray *start = NULL;

  while (self->held.head != NULL &&
         (self->max_concurrency == 0 || self->n_running < self->max_concurrency))
    {
      Member *member = MEMBER_OF_LINK (g_queue_pop_head_link (&self->held));

      member->state = MEMBER_RUNNING;
      self->n_running++;
      if (start == NULL)
        start = g_ptr_array_new_with_free_func (g_object_unref);
      g_ptr_array_add (start, g_object_ref (member->task));
    }

  return start;
}

static void
dispatch_tasks (GPtrArray *start)
{
  if (start == NULL)
    return;

  /* A member cancelled meanwhile is not dispatched: it has ended. */
  for (guint i = 0; i < start->len; i++)
    dvt_task_dispatch (g_ptr_array_index (start, i));
  DVT_CALLOUT (g_ptr_array_unref (start));
}

/* The member's end, under the group's lock: TRUE if its function is not
 * running (the place is free now, and the work released), FALSE if the
 * function's return will give the place back. Always TRUE for a member
 * whose function the group does not wrap. */
static gboolean
work_end (Work *work)
{
  if (work == NULL)
    return TRUE;

  for (;;)
    {
      if (g_atomic_int_compare_and_exchange (&work->state, WORK_IDLE, WORK_RELEASED))
        return TRUE;
      if (g_atomic_int_compare_and_exchange (&work->state, WORK_RUNNING, WORK_ENDED_RUNNING))
        return FALSE;
      /* The function returned in between: look again. */
    }
}

/* A member's end, on whichever thread ends it (at once, from
 * dvt_task_add_done_hook(), if it had ended when it joined). */
static void
member_done (DvtTask  *task,
             gpointer  data)
{
  Member *member = data;
  DvtTaskGroup *self = member->group;
  GQueue done = G_QUEUE_INIT;
  GPtrArray *start, *cancel = NULL;
  gboolean cancel_rest = FALSE;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  dvt_fault_point ();
  g_mutex_lock (&self->lock);
  if (member->state == MEMBER_HELD)
    g_queue_unlink (&self->held, &member->link);
  else if (member->state == MEMBER_RUNNING && !work_end (member->work))
    g_object_ref (self);   /* for run_member(), which gives the place back */
  else if (member->state == MEMBER_RUNNING)
    self->n_running--;
  member->state = MEMBER_ENDED;
  self->n_unfinished--;

  if (task->result.error == NULL)
    {
      if (self->first_success == NULL)
        self->first_success = task;
    }
  else if (is_cancellation (task))
    {
      /* Cancelled by the group itself (cancel-on-failure, cancel_rest, the
       * exit timeout, dvt_task_group_cancel()): not a failure. */
      if (self->first_cancelled == NULL && !member->cancelled_by_group)
        self->first_cancelled = task;
    }
  else
    {
      if (self->first_failure == NULL)
        self->first_failure = task;
      if (self->cancel_on_failure && !self->failure_cancelled)
        {
          self->failure_cancelled = TRUE;
          cancel = unfinished_locked (self);
        }
    }

  /* After the cancellations were listed: those held back stay so. */
  start = cancel == NULL ? take_places_locked (self) : NULL;
  g_queue_push_tail_link (&self->ended, &member->link);
  serve_locked (self, &done, &cancel_rest);
  if (cancel_rest && cancel == NULL)
    cancel = unfinished_locked (self);
  g_mutex_unlock (&self->lock);

  /* The group keeps its members for good: their functions' data goes as
   * soon as the functions will not run again, not with the tasks. */
  dvt_task_release_func_data (task);
  cancel_tasks (cancel);
  dispatch_tasks (start);
  complete_ops (self, &done);

  member->group = NULL;
  DVT_CALLOUT (g_object_unref (self));
  dvt_fork_gate_leave (gate);
}

/* Makes @task (held by the caller) a member in @state (MEMBER_FOREIGN,
 * or MEMBER_RUNNING for a task the group starts, which may be held back
 * instead: *@dispatch tells). */
static gboolean
join (DvtTaskGroup  *self,
      DvtTask       *task,
      MemberState    state,
      Work          *work,
      gboolean      *dispatch,
      GError       **error)
{
  GMainContext *run_context = DVT_TASK_EXTRA (task, run_context, NULL);
  gboolean cancel;
  Member *member;

  g_mutex_lock (&self->lock);
  if (self->closed || dvt_runtime_is_shutdown (self->runtime))
    {
      g_mutex_unlock (&self->lock);
      if (self->closed)
        g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                             _("The task group is closed and takes no more tasks"));
      else
        g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                             _("The runtime has been shut down and accepts no "
                               "more work"));
      return FALSE;
    }
  if (g_hash_table_contains (self->index, task))
    {
      g_mutex_unlock (&self->lock);
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                           _("The task is already in the task group"));
      return FALSE;
    }

  member = g_new0 (Member, 1);
  member->task = g_object_ref (task);
  member->group = g_object_ref (self);
  /* Cancel-on-failure has tripped: a member joining now is cancelled too
   * (before it starts), as it would have been a moment earlier. */
  cancel = self->failure_cancelled;
  member->cancelled_by_group = cancel;
  if (cancel)
    state = state == MEMBER_RUNNING ? MEMBER_HELD : state;
  if (state == MEMBER_HELD)
    g_queue_push_tail_link (&self->held, &member->link);
  else if (state == MEMBER_RUNNING && self->max_concurrency != 0 &&
      (self->n_running >= self->max_concurrency || self->held.head != NULL))
    {
      state = MEMBER_HELD;
      g_queue_push_tail_link (&self->held, &member->link);
    }
  else if (state == MEMBER_RUNNING)
    self->n_running++;
  member->state = state;
  if (dispatch != NULL)
    *dispatch = state == MEMBER_RUNNING;
  member->work = work;
  g_ptr_array_add (self->members, member);
  g_hash_table_insert (self->index, task, member);
  self->n_unfinished++;
  if (run_context != NULL && self->run_context == NULL)
    self->run_context = g_main_context_ref (run_context);
  g_mutex_unlock (&self->lock);

  /* At once if it has ended already. */
  dvt_task_add_done_hook (task, member_done, member);
  if (cancel)
    DVT_CALLOUT (dvt_task_cancel (task));

  return TRUE;
}

/* ---- the GObject ----------------------------------------------------------------- */

static void
dvt_task_group_finalize (GObject *object)
{
  DvtTaskGroup *self = DVT_TASK_GROUP (object);

  /* Waiters hold the group, and so do members that have not ended. */
  g_assert (self->waiters.head == NULL && self->ops.head == NULL);
  g_assert (self->held.head == NULL && self->n_unfinished == 0);

  g_hash_table_unref (self->index);
  g_ptr_array_unref (self->members);
  g_clear_pointer (&self->run_context, g_main_context_unref);
  g_clear_object (&self->runtime);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (dvt_task_group_parent_class)->finalize (object);
}

static void
dvt_task_group_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  DvtTaskGroup *self = DVT_TASK_GROUP (object);

  switch (prop_id)
    {
    case PROP_RUNTIME:
      g_value_set_object (value, self->runtime);
      break;
    case PROP_MAX_CONCURRENCY:
      g_value_set_uint (value, dvt_task_group_get_max_concurrency (self));
      break;
    case PROP_CANCEL_ON_FAILURE:
      g_value_set_boolean (value, dvt_task_group_get_cancel_on_failure (self));
      break;
    case PROP_RETURN_ERRORS:
      g_value_set_boolean (value, dvt_task_group_get_return_errors (self));
      break;
    case PROP_CLOSED:
      g_value_set_boolean (value, dvt_task_group_is_closed (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_task_group_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  DvtTaskGroup *self = DVT_TASK_GROUP (object);

  switch (prop_id)
    {
    case PROP_RUNTIME:
      self->runtime = g_value_dup_object (value);
      break;
    case PROP_MAX_CONCURRENCY:
      dvt_task_group_set_max_concurrency (self, g_value_get_uint (value));
      break;
    case PROP_CANCEL_ON_FAILURE:
      dvt_task_group_set_cancel_on_failure (self, g_value_get_boolean (value));
      break;
    case PROP_RETURN_ERRORS:
      dvt_task_group_set_return_errors (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_task_group_constructed (GObject *object)
{
  DvtTaskGroup *self = DVT_TASK_GROUP (object);

  G_OBJECT_CLASS (dvt_task_group_parent_class)->constructed (object);

  /* g_object_new() without a runtime: the default one. */
  if (self->runtime == NULL)
    self->runtime = g_object_ref (dvt_runtime_get_default ());
}

static void
dvt_task_group_class_init (DvtTaskGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = dvt_task_group_constructed;
  object_class->finalize = dvt_task_group_finalize;
  object_class->get_property = dvt_task_group_get_property;
  object_class->set_property = dvt_task_group_set_property;

  dvt_fault_init ();

  /**
   * DvtTaskGroup:runtime:
   *
   * The runtime that runs the tasks the group starts; the default runtime
   * if none is given.
   *
   * Since: 0.2
   */
  properties[PROP_RUNTIME] =
    g_param_spec_object ("runtime", NULL, NULL,
                         DVT_TYPE_RUNTIME,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtTaskGroup:max-concurrency:
   *
   * The most members started by the group ([method@TaskGroup.submit],
   * [method@TaskGroup.schedule]) that run at once; 0 (the default) means
   * no limit. The others wait in the group, holding no worker, and start
   * in the order they were submitted. Members added with
   * [method@TaskGroup.add] do not count. A blocking member ended by a
   * cancellation or a timeout keeps its place until its function has
   * returned: the bound holds for the functions that really run. An async
   * member gives up its place when its task ends.
   *
   * Since: 0.2
   */
  properties[PROP_MAX_CONCURRENCY] =
    g_param_spec_uint ("max-concurrency", NULL, NULL,
                       0, G_MAXINT, 0,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtTaskGroup:cancel-on-failure:
   *
   * Whether the first member to fail (with an error other than
   * %G_IO_ERROR_CANCELLED) cancels every member that has not ended, and
   * every member that joins later (before it starts). Off by default: a
   * failure leaves the others alone.
   *
   * Since: 0.2
   */
  properties[PROP_CANCEL_ON_FAILURE] =
    g_param_spec_boolean ("cancel-on-failure", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtTaskGroup:return-errors:
   *
   * Whether [method@TaskGroup.wait_blocking] and
   * [method@TaskGroup.wait_finish] succeed whatever the members' outcomes
   * (read each from its task, in [method@TaskGroup.get_tasks]) instead of
   * reporting the first failure. An exit timeout is reported either way.
   *
   * Since: 0.2
   */
  properties[PROP_RETURN_ERRORS] =
    g_param_spec_boolean ("return-errors", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtTaskGroup:closed:
   *
   * Whether [method@TaskGroup.close] was called. Notified once, by the
   * thread that closes the group.
   *
   * Since: 0.2
   */
  properties[PROP_CLOSED] =
    g_param_spec_boolean ("closed", NULL, NULL,
                          FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_task_group_init (DvtTaskGroup *self)
{
  g_mutex_init (&self->lock);
  self->members = g_ptr_array_new_with_free_func (member_free);
  self->index = g_hash_table_new (NULL, NULL);
}

/**
 * dvt_task_group_new:
 * @runtime: the runtime that runs the tasks the group starts
 *
 * Creates an empty, open group.
 *
 * Returns: (transfer full): a new group
 *
 * Since: 0.2
 */
DvtTaskGroup *
dvt_task_group_new (DvtRuntime *runtime)
{
  g_return_val_if_fail (DVT_IS_RUNTIME (runtime), NULL);

  return g_object_new (DVT_TYPE_TASK_GROUP, "runtime", runtime, NULL);
}

/**
 * dvt_task_group_get_runtime:
 * @group: a group
 *
 * Gets the runtime of @group.
 *
 * Returns: (transfer none): the runtime
 *
 * Since: 0.2
 */
DvtRuntime *
dvt_task_group_get_runtime (DvtTaskGroup *group)
{
  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), NULL);

  return group->runtime;
}

/**
 * dvt_task_group_get_max_concurrency:
 * @group: a group
 *
 * Gets [property@TaskGroup:max-concurrency].
 *
 * Returns: the most members the group runs at once, or 0 for no limit
 *
 * Since: 0.2
 */
guint
dvt_task_group_get_max_concurrency (DvtTaskGroup *group)
{
  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), 0);

  return (guint) g_atomic_int_get (&group->max_concurrency);
}

/**
 * dvt_task_group_set_max_concurrency:
 * @group: a group
 * @max_concurrency: the most members the group runs at once, at most
 *   %G_MAXINT; 0 for no limit
 *
 * Sets [property@TaskGroup:max-concurrency]. Raising it starts members
 * held back at once; lowering it lets running members end.
 *
 * Since: 0.2
 */
void
dvt_task_group_set_max_concurrency (DvtTaskGroup *group,
                                    guint         max_concurrency)
{
  GPtrArray *start;
  gboolean changed;
  DvtForkGate gate;

  g_return_if_fail (DVT_IS_TASK_GROUP (group));
  g_return_if_fail (max_concurrency <= G_MAXINT);

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (&group->lock);
  changed = group->max_concurrency != max_concurrency;
  g_atomic_int_set (&group->max_concurrency, max_concurrency);
  start = take_places_locked (group);
  g_mutex_unlock (&group->lock);

  dispatch_tasks (start);
  if (changed)
    DVT_CALLOUT (g_object_notify_by_pspec (G_OBJECT (group), properties[PROP_MAX_CONCURRENCY]));
  dvt_fork_gate_leave (gate);
}

/* Sets a boolean property read without the lock, and notifies a change. */
static void
set_boolean (DvtTaskGroup *self,
             gboolean     *field,
             gboolean      value,
             guint         prop_id)
{
  value = !!value;
  if (g_atomic_int_exchange (field, value) != value)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

/**
 * dvt_task_group_get_cancel_on_failure:
 * @group: a group
 *
 * Gets [property@TaskGroup:cancel-on-failure].
 *
 * Returns: whether a failing member cancels the others
 *
 * Since: 0.2
 */
gboolean
dvt_task_group_get_cancel_on_failure (DvtTaskGroup *group)
{
  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), FALSE);

  return g_atomic_int_get (&group->cancel_on_failure);
}

/**
 * dvt_task_group_set_cancel_on_failure:
 * @group: a group
 * @cancel_on_failure: whether a failing member cancels the others
 *
 * Sets [property@TaskGroup:cancel-on-failure].
 *
 * Since: 0.2
 */
void
dvt_task_group_set_cancel_on_failure (DvtTaskGroup *group,
                                      gboolean      cancel_on_failure)
{
  g_return_if_fail (DVT_IS_TASK_GROUP (group));

  set_boolean (group, &group->cancel_on_failure, cancel_on_failure, PROP_CANCEL_ON_FAILURE);
}

/**
 * dvt_task_group_get_return_errors:
 * @group: a group
 *
 * Gets [property@TaskGroup:return-errors].
 *
 * Returns: whether a wait succeeds whatever the members' outcomes
 *
 * Since: 0.2
 */
gboolean
dvt_task_group_get_return_errors (DvtTaskGroup *group)
{
  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), FALSE);

  return g_atomic_int_get (&group->return_errors);
}

/**
 * dvt_task_group_set_return_errors:
 * @group: a group
 * @return_errors: whether a wait succeeds whatever the members' outcomes
 *
 * Sets [property@TaskGroup:return-errors].
 *
 * Since: 0.2
 */
void
dvt_task_group_set_return_errors (DvtTaskGroup *group,
                                  gboolean      return_errors)
{
  g_return_if_fail (DVT_IS_TASK_GROUP (group));

  set_boolean (group, &group->return_errors, return_errors, PROP_RETURN_ERRORS);
}

/* ---- joining -------------------------------------------------------------------- */

/**
 * dvt_task_group_add:
 * @group: a group
 * @task: a task, of any runtime, that is not already in @group
 * @error: return location for a #GError
 *
 * Makes @task, started elsewhere, a member of @group: the group watches
 * it (waits, [method@TaskGroup.next_blocking], cancellations) but does
 * not start it, and [property@TaskGroup:max-concurrency] does not apply
 * to it. A task that has already ended joins as ended.
 *
 * Returns: %TRUE if @task joined; %FALSE with %DVT_ERROR_CLOSED if the
 *   group is closed or its runtime shut down, or with
 *   %DVT_ERROR_INVALID_ARGUMENT if @task is already in the group or is an
 *   item of a map
 *
 * Since: 0.2
 */
gboolean
dvt_task_group_add (DvtTaskGroup  *group,
                    DvtTask       *task,
                    GError       **error)
{
  gboolean ok;
  DvtForkGate gate;

  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), FALSE, error);
  dvt_return_val_if_fail_error (DVT_IS_TASK (task), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* A map's item reports its end to its map, not to watchers. */
  if (task->kind == DVT_TASK_KIND_ITEM || DVT_TASK_EXTRA (task, parent, NULL) != NULL)
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
                           _("An item of a map cannot join a task group"));
      return FALSE;
    }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  ok = join (group, task, MEMBER_FOREIGN, NULL, NULL, error);
  dvt_fork_gate_leave (gate);

  return ok;
}

static void
work_free (gpointer data)
{
  Work *work = data;

  if (work->destroy != NULL)
    work->destroy (work->data);
  g_free (work);
}

/* A blocking member's function, on a worker: see Work. */
static void
run_member (DvtTask       *task,
            GCancellable  *cancellable,
            gpointer       data,
            GError       **error)
{
  Work *work = data;
  DvtTaskGroup *self;
  GPtrArray *start;
  GDestroyNotify destroy;
  DvtForkGate gate;

  /* Released: the member ended before its function started. */
  if (!g_atomic_int_compare_and_exchange (&work->state, WORK_IDLE, WORK_RUNNING))
    return;

  if (!dvt_task_get_completed (task))
    work->func (task, cancellable, work->data, error);

  if (g_atomic_int_compare_and_exchange (&work->state, WORK_RUNNING, WORK_IDLE))
    return;

  /* The member ended meanwhile: give its place back, and let go of the
   * reference its end took for us. (This runs as the application's
   * function, outside the fork gate: Dovetail's own part enters it.) */
  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  self = work->group;
  g_atomic_int_set (&work->state, WORK_RELEASED);
  g_mutex_lock (&self->lock);
  self->n_running--;
  start = take_places_locked (self);
  g_mutex_unlock (&self->lock);

  /* No attempt can come any more: the data can go now rather than with
   * the task, which the group keeps. */
  destroy = g_steal_pointer (&work->destroy);
  if (destroy != NULL)
    DVT_APP_CALL (destroy (work->data));
  dispatch_tasks (start);
  DVT_CALLOUT (g_object_unref (self));
  dvt_fork_gate_leave (gate);
}

static DvtTask *
start_member (DvtTaskGroup   *self,
              DvtTaskKind     kind,
              gpointer        func,
              gpointer        func_data,
              GDestroyNotify  func_data_destroy,
              DvtOptions     *options,
              GCancellable   *cancellable,
              GError        **error)
{
  GError *local_error = NULL;
  gboolean dispatch = FALSE;
  Work *wrapped = NULL;
  DvtTask *task;
  DvtForkGate gate;

  if (dvt_task_group_is_closed (self))
    {
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The task group is closed and takes no more tasks"));
      if (func_data_destroy != NULL)
        func_data_destroy (func_data);
      return NULL;
    }

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  if (kind == DVT_TASK_KIND_THREAD)
    {
      Work *work = g_new0 (Work, 1);

      work->func = func;
      work->data = func_data;
      work->destroy = func_data_destroy;
      work->group = self;
      task = dvt_runtime_accept_future (self->runtime, kind, run_member, work, work_free,
                                        func, options, cancellable, error);
      wrapped = work;
    }
  else
    task = dvt_runtime_accept_future (self->runtime, kind, func, func_data, func_data_destroy,
                                      NULL, options, cancellable, error);
  if (task != NULL && !join (self, task, MEMBER_RUNNING, wrapped, &dispatch, &local_error))
    {
      /* Closed meanwhile: the task never starts. */
      DVT_CALLOUT (dvt_task_end_by_runtime (task, g_error_copy (local_error));
                   g_clear_object (&task));
      g_propagate_error (error, local_error);
    }
  else if (dispatch)
    dvt_task_dispatch (task);
  dvt_fork_gate_leave (gate);

  return task;
}

/**
 * dvt_task_group_submit:
 * @group: a group
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   the blocking function
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the task is done
 *   with it
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * [method@Runtime.submit] through the group: queues a blocking function
 * for a worker of the group's runtime, as a member of the group, and
 * returns its task at once. While [property@TaskGroup:max-concurrency]
 * members run, it waits in the group first. Its timeout, if any, runs
 * from the moment the group starts it.
 *
 * The group keeps its members until it is finalized; @func_data is
 * freed as soon as the member has ended and @func will not run again.
 * A member ended by a cancellation or a timeout while @func runs on
 * keeps its place under [property@TaskGroup:max-concurrency] until @func
 * returns.
 *
 * Returns: (transfer full): the task, or %NULL with %DVT_ERROR_CLOSED if
 *   the group is closed or its runtime shut down
 *
 * Since: 0.2
 */
DvtTask *
dvt_task_group_submit (DvtTaskGroup    *group,
                       DvtThreadFunc    func,
                       gpointer         func_data,
                       GDestroyNotify   func_data_destroy,
                       DvtOptions      *options,
                       GCancellable    *cancellable,
                       GError         **error)
{
  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), NULL, error);
  if (!dvt_runtime_check_call (G_STRFUNC, group->runtime, func, options, cancellable, NULL, error))
    return NULL;

  return start_member (group, DVT_TASK_KIND_THREAD, func, func_data, func_data_destroy,
                       options, cancellable, error);
}

/**
 * dvt_task_group_schedule:
 * @group: a group
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy):
 *   starts the work
 * @func_data: data for @func
 * @func_data_destroy: (nullable): frees @func_data when the task is done
 *   with it
 * @options: (nullable): options for this call
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * [method@Runtime.schedule] through the group: starts an async function
 * as a member of the group and returns its task at once, held back first
 * as [method@TaskGroup.submit] is.
 *
 * Returns: (transfer full): the task, or %NULL with %DVT_ERROR_CLOSED if
 *   the group is closed or its runtime shut down
 *
 * Since: 0.2
 */
DvtTask *
dvt_task_group_schedule (DvtTaskGroup    *group,
                         DvtAsyncFunc     func,
                         gpointer         func_data,
                         GDestroyNotify   func_data_destroy,
                         DvtOptions      *options,
                         GCancellable    *cancellable,
                         GError         **error)
{
  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), NULL, error);
  if (!dvt_runtime_check_call (G_STRFUNC, group->runtime, func, options, cancellable, NULL, error))
    return NULL;

  return start_member (group, DVT_TASK_KIND_ASYNC, func, func_data, func_data_destroy,
                       options, cancellable, error);
}

/**
 * dvt_task_group_close:
 * @group: a group
 *
 * Closes @group: from now on [method@TaskGroup.add],
 * [method@TaskGroup.submit] and [method@TaskGroup.schedule] fail with
 * %DVT_ERROR_CLOSED. The members already in the group go on, and can be
 * waited for as before. Closing a closed group does nothing.
 *
 * Since: 0.2
 */
void
dvt_task_group_close (DvtTaskGroup *group)
{
  gboolean was_closed;

  g_return_if_fail (DVT_IS_TASK_GROUP (group));

  g_mutex_lock (&group->lock);
  was_closed = group->closed;
  g_atomic_int_set (&group->closed, TRUE);
  g_mutex_unlock (&group->lock);

  if (!was_closed)
    g_object_notify_by_pspec (G_OBJECT (group), properties[PROP_CLOSED]);
}

/**
 * dvt_task_group_is_closed:
 * @group: a group
 *
 * Tells whether [method@TaskGroup.close] was called on @group.
 *
 * Returns: %TRUE if the group is closed
 *
 * Since: 0.2
 */
gboolean
dvt_task_group_is_closed (DvtTaskGroup *group)
{
  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), TRUE);

  return g_atomic_int_get (&group->closed);
}

/**
 * dvt_task_group_cancel:
 * @group: a group
 *
 * Cancels every member of @group that has not ended, as
 * [method@Task.cancel] does: those held back never start. The group stays
 * open.
 *
 * Returns: how many members were asked to cancel
 *
 * Since: 0.2
 */
guint
dvt_task_group_cancel (DvtTaskGroup *group)
{
  GPtrArray *tasks;
  guint n;
  DvtForkGate gate;

  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), 0);

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (&group->lock);
  tasks = unfinished_locked (group);
  g_mutex_unlock (&group->lock);
  n = cancel_tasks (tasks);
  dvt_fork_gate_leave (gate);

  return n;
}

/**
 * dvt_task_group_get_n_tasks:
 * @group: a group
 *
 * Gets how many members @group has had, ended ones included.
 *
 * Returns: the number of members
 *
 * Since: 0.2
 */
guint
dvt_task_group_get_n_tasks (DvtTaskGroup *group)
{
  guint n;

  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), 0);

  g_mutex_lock (&group->lock);
  n = group->members->len;
  g_mutex_unlock (&group->lock);

  return n;
}

/**
 * dvt_task_group_get_n_unfinished:
 * @group: a group
 *
 * Gets how many members of @group have not ended. Other threads may
 * change it at once.
 *
 * Returns: the number of members that have not ended
 *
 * Since: 0.2
 */
guint
dvt_task_group_get_n_unfinished (DvtTaskGroup *group)
{
  guint n;

  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), 0);

  g_mutex_lock (&group->lock);
  n = group->n_unfinished;
  g_mutex_unlock (&group->lock);

  return n;
}

/**
 * dvt_task_group_get_tasks:
 * @group: a group
 *
 * Lists the members of @group in the order they joined, ended ones
 * included: after a wait, read each one's outcome with
 * `dvt_task_propagate_*()`.
 *
 * Returns: (transfer container) (element-type DvtTask): the members, in
 *   an array that holds a reference to each: unreffing the array drops them
 *
 * Since: 0.2
 */
GPtrArray *
dvt_task_group_get_tasks (DvtTaskGroup *group)
{
  GPtrArray *tasks;

  g_return_val_if_fail (DVT_IS_TASK_GROUP (group), NULL);

  g_mutex_lock (&group->lock);
  tasks = g_ptr_array_new_full (group->members->len, g_object_unref);
  for (guint i = 0; i < group->members->len; i++)
    g_ptr_array_add (tasks, g_object_ref (((Member *) g_ptr_array_index (group->members, i))->task));
  g_mutex_unlock (&group->lock);

  return tasks;
}

/* ---- blocking waits ----------------------------------------------------------------- */

static void
on_waiter_cancelled (GCancellable *cancellable,
                     gpointer      data)
{
  Waiter *waiter = data;
  DvtTaskGroup *self = waiter->group;

  g_mutex_lock (&self->lock);
  if (g_queue_link_index (&self->waiters, &waiter->link) >= 0)
    {
      g_queue_unlink (&self->waiters, &waiter->link);
      dvt_latch_set (&waiter->woken);
      if (waiter->iterate != NULL)
        g_main_context_wakeup (waiter->iterate);
    }
  g_mutex_unlock (&self->lock);
}

/* A monotonic deadline @timeout seconds from now; -1 for a negative (or
 * NaN, or too large) timeout. */
static gint64
deadline_of (double timeout)
{
  if (!(timeout >= 0) || timeout >= (double) (G_MAXINT64 / 4) / G_USEC_PER_SEC)
    return -1;
  return g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);
}

typedef gboolean (*OverFunc) (DvtTaskGroup *self);

static gboolean
all_ended_locked (DvtTaskGroup *self)
{
  return self->n_unfinished == 0;
}

/* One blocking call: the thread's waiter, its cancellable's handler and
 * the context it iterates. */
typedef struct
{
  Waiter        waiter;
  GCancellable *cancellable;
  gulong        handler;
} Wait;

/* Checks that the caller may block, and prepares @wait; then takes the
 * lock. */
static gboolean
wait_begin (DvtTaskGroup  *self,
            Wait          *wait,
            GCancellable  *cancellable,
            GError       **error)
{
  GMainContext *run_context;

  if (!dvt_core_check_blocking (dvt_runtime_get_core (self->runtime), error))
    return FALSE;

  memset (wait, 0, sizeof *wait);
  wait->waiter.group = self;
  wait->cancellable = cancellable;

  /* Async members bound to a context this thread can run are driven from
   * here, as dvt_task_wait() does. */
  g_mutex_lock (&self->lock);
  run_context = self->run_context != NULL ? g_main_context_ref (self->run_context) : NULL;
  g_mutex_unlock (&self->lock);
  if (run_context != NULL && g_main_context_acquire (run_context))
    wait->waiter.iterate = run_context;
  else if (run_context != NULL)
    g_main_context_unref (run_context);

  if (cancellable != NULL)
    wait->handler = g_cancellable_connect (cancellable, G_CALLBACK (on_waiter_cancelled),
                                           &wait->waiter, NULL);
  g_mutex_lock (&self->lock);

  return TRUE;
}

/* Releases the lock and what wait_begin() took. */
static void
wait_end (DvtTaskGroup *self,
          Wait         *wait)
{
  g_mutex_unlock (&self->lock);
  if (wait->handler != 0)
    g_cancellable_disconnect (wait->cancellable, wait->handler);
  if (wait->waiter.iterate != NULL)
    {
      g_main_context_release (wait->waiter.iterate);
      g_main_context_unref (wait->waiter.iterate);
    }
}

/* With the lock held (released meanwhile): waits until @over, or the
 * monotonic @deadline (-1: none) passes, or the wait's cancellable is
 * cancelled. Returns whether @over. */
static gboolean
wait_locked (DvtTaskGroup *self,
             Wait         *wait,
             OverFunc      over,
             gint64        deadline)
{
  Waiter *waiter = &wait->waiter;

  for (;;)
    {
      if (over (self))
        return TRUE;
      if (g_cancellable_is_cancelled (wait->cancellable) ||
          (deadline >= 0 && g_get_monotonic_time () >= deadline))
        return FALSE;

      dvt_latch_init (&waiter->woken);
      g_queue_push_tail_link (&self->waiters, &waiter->link);
      g_mutex_unlock (&self->lock);

      if (waiter->iterate != NULL)
        dvt_latch_wait_iterating (&waiter->woken, waiter->iterate, deadline);
      else
        dvt_latch_wait (&waiter->woken, deadline);

      /* Whoever set the latch did so under the lock: once we hold it,
       * nobody touches the latch any more. */
      g_mutex_lock (&self->lock);
      if (!dvt_latch_is_set (&waiter->woken))
        g_queue_unlink (&self->waiters, &waiter->link);
      dvt_latch_clear (&waiter->woken);
    }
}

static void
set_cancelled_error (GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                       _("The wait for the task group was cancelled"));
}

/* Whether this thread runs the work of a member of @self that has not
 * ended: waiting for the whole group there could never end. */
static gboolean
waits_for_itself_locked (DvtTaskGroup *self)
{
  DvtThreadState *state = dvt_thread_state_peek ();
  Member *member;

  if (state == NULL || state->running_task == NULL)
    return FALSE;

  member = g_hash_table_lookup (self->index, state->running_task);
  return member != NULL && member->state != MEMBER_ENDED;
}

/**
 * dvt_task_group_wait_blocking:
 * @group: a group
 * @timeout: the exit timeout, in seconds: once it passes, the members
 *   that have not ended are cancelled, and waited for; 0 cancels them at
 *   once; negative for no limit
 * @cancellable: (nullable): cancels the wait, not the members
 * @error: return location for a #GError
 *
 * Blocks until every member of @group has ended, members that join
 * meanwhile included. Any thread may wait, except the runtime's loop
 * thread (%DVT_ERROR_WOULD_DEADLOCK) and the work of one of the group's
 * own unfinished members (likewise).
 *
 * When @timeout passes first, the members that have not ended are
 * cancelled (those held back never start); they end at once (a blocking
 * function that ignores its cancellable keeps running in its worker, but
 * its task has ended), and the call fails with %G_IO_ERROR_TIMED_OUT.
 *
 * Returns: %TRUE once every member has ended, unless one failed and
 *   [property@TaskGroup:return-errors] is unset: %FALSE with the first
 *   failure (unchanged; the first cancellation if every failure was one,
 *   leaving out the members that the group cancelled itself:
 *   [property@TaskGroup:cancel-on-failure], a first() with @cancel_rest,
 *   [method@TaskGroup.cancel]); %FALSE with %G_IO_ERROR_TIMED_OUT or
 *   %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_task_group_wait_blocking (DvtTaskGroup  *group,
                              double         timeout,
                              GCancellable  *cancellable,
                              GError       **error)
{
  gboolean over, timed_out = FALSE, ok;
  Wait wait;

  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), FALSE, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!wait_begin (group, &wait, cancellable, error))
    return FALSE;

  if (waits_for_itself_locked (group))
    {
      wait_end (group, &wait);
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK,
                           _("A task of the group waited for the whole group, "
                             "which cannot end before the task does"));
      return FALSE;
    }

  over = wait_locked (group, &wait, all_ended_locked, deadline_of (timeout));
  if (!over && !g_cancellable_is_cancelled (cancellable))
    {
      GPtrArray *tasks = unfinished_locked (group);

      /* The exit timeout: cancel, then wait for the cancelled to end. */
      timed_out = TRUE;
      g_mutex_unlock (&group->lock);
      cancel_tasks (tasks);
      g_mutex_lock (&group->lock);
      over = wait_locked (group, &wait, all_ended_locked, -1);
    }

  if (over)
    ok = wait_outcome_locked (group, timed_out, timeout, error);
  else
    {
      set_cancelled_error (error);
      ok = FALSE;
    }
  wait_end (group, &wait);

  return ok;
}

/**
 * dvt_task_group_next_blocking:
 * @group: a group
 * @timeout: the longest time to wait, in seconds; 0 to take only a member
 *   that has ended already; negative for no limit
 * @cancellable: (nullable): cancels the wait, not the members
 * @error: return location for a #GError
 *
 * Takes the next member of @group to end, in the order they end: each
 * member is handed out once, by one of the calls of
 * [method@TaskGroup.next_blocking] and [method@TaskGroup.next_async]. A
 * member that ended before the call is handed out at once.
 *
 * The end: once every member has been handed out and none is left
 * running, the call returns %NULL without an error (at once, on an empty
 * group). Members that join later are handed out by later calls; a
 * consumer on another thread than the code adding members should
 * therefore add them before the ones in flight have ended, or keep
 * asking. Any thread may call this, except the runtime's loop thread
 * (%DVT_ERROR_WOULD_DEADLOCK); the work of a member counts that member
 * among those still running, so it should give a @timeout.
 *
 * Returns: (transfer full) (nullable): the member, or %NULL at the end or
 *   with @error set: %G_IO_ERROR_TIMED_OUT when @timeout passed first,
 *   %G_IO_ERROR_CANCELLED; read the member's outcome from the member
 *
 * Since: 0.2
 */
DvtTask *
dvt_task_group_next_blocking (DvtTaskGroup  *group,
                              double         timeout,
                              GCancellable  *cancellable,
                              GError       **error)
{
  DvtTask *task = NULL;
  Wait wait;

  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), NULL, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!wait_begin (group, &wait, cancellable, error))
    return NULL;

  if (wait_locked (group, &wait, next_is_over_locked, deadline_of (timeout)))
    task = next_take_locked (group);
  else if (g_cancellable_is_cancelled (cancellable))
    set_cancelled_error (error);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 g_dngettext (GETTEXT_PACKAGE,
                              "No task of the group ended within %g second",
                              "No task of the group ended within %g seconds",
                              dvt_i18n_plural_count (timeout)),
                 timeout);
  wait_end (group, &wait);

  return task;
}

/**
 * dvt_task_group_first_blocking:
 * @group: a group
 * @timeout: the longest time to wait, in seconds; 0 to look only at the
 *   members that have ended already; negative for no limit
 * @cancel_rest: whether to cancel the members that have not ended once
 *   one has succeeded
 * @cancellable: (nullable): cancels the wait, not the members
 * @error: return location for a #GError
 *
 * Waits for the first member of @group to succeed (the "any" of a group):
 * the first of all, if one had already succeeded. When every member has
 * ended and none succeeded, the call fails with the group's first failure.
 *
 * Returns: (transfer full): the first member to succeed, or %NULL with
 *   @error set: the first failure (the first cancellation if every failure
 *   was one), %DVT_ERROR_EMPTY for a group without members,
 *   %G_IO_ERROR_TIMED_OUT when @timeout passed first (nothing is
 *   cancelled then), %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
DvtTask *
dvt_task_group_first_blocking (DvtTaskGroup  *group,
                               double         timeout,
                               gboolean       cancel_rest,
                               GCancellable  *cancellable,
                               GError       **error)
{
  GPtrArray *cancel = NULL;
  DvtTask *task = NULL;
  Wait wait;

  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), NULL, error);
  dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!wait_begin (group, &wait, cancellable, error))
    return NULL;

  if (wait_locked (group, &wait, first_is_over_locked, deadline_of (timeout)))
    {
      task = first_outcome_locked (group, error);
      if (task != NULL && cancel_rest)
        cancel = unfinished_locked (group);
    }
  else if (g_cancellable_is_cancelled (cancellable))
    set_cancelled_error (error);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 g_dngettext (GETTEXT_PACKAGE,
                              "No task of the group succeeded within %g second",
                              "No task of the group succeeded within %g seconds",
                              dvt_i18n_plural_count (timeout)),
                 timeout);
  wait_end (group, &wait);
  cancel_tasks (cancel);

  return task;
}

/* ---- async waits ---------------------------------------------------------------------- */

/* The exit timeout of a wait_async(), on the caller's context. */
static gboolean
on_op_timeout (gpointer data)
{
  GTask *gtask = data;
  AsyncOp *op = g_task_get_task_data (gtask);
  DvtTaskGroup *self = g_task_get_source_object (gtask);
  GPtrArray *tasks = NULL;

  g_mutex_lock (&self->lock);
  if (op->linked && !op->timed_out)
    {
      op->timed_out = TRUE;
      tasks = unfinished_locked (self);
    }
  g_mutex_unlock (&self->lock);
  cancel_tasks (tasks);

  return G_SOURCE_REMOVE;
}

static void
start_op (DvtTaskGroup        *self,
          OpKind               kind,
          double               timeout,
          gboolean             cancel_rest,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             user_data,
          gpointer             source_tag)
{
  GQueue done = G_QUEUE_INIT;
  GPtrArray *cancel = NULL;
  gboolean rest = FALSE, cancelled = FALSE;
  GTask *gtask;
  AsyncOp *op;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, source_tag);
  g_task_set_name (gtask, "[dovetail] DvtTaskGroup wait");
  /* The op's own claim decides how it ends: a member handed to a next()
   * is returned even if the cancellable fires meanwhile. */
  g_task_set_check_cancellable (gtask, FALSE);

  op = g_new0 (AsyncOp, 1);
  op->kind = kind;
  op->timeout = timeout;
  op->cancel_rest = cancel_rest;
  g_task_set_task_data (gtask, op, op_free);

  /* Set up before the op is linked, where another thread may end it. */
  if (kind == OP_WAIT && timeout > 0)
    {
      gint64 ms = (gint64) (timeout * 1000 + 0.999);

      op->timer = g_timeout_source_new ((guint) MIN (ms, (gint64) G_MAXUINT));
      g_source_set_static_name (op->timer, "[dovetail] DvtTaskGroup exit timeout");
      g_source_set_callback (op->timer, on_op_timeout, g_object_ref (gtask), g_object_unref);
      g_source_attach (op->timer, g_task_get_context (gtask));
    }
  if (cancellable != NULL)
    {
      op->cancellable = g_object_ref (cancellable);
      op->handler = g_cancellable_connect (cancellable, G_CALLBACK (on_op_cancelled),
                                           g_object_ref (gtask), g_object_unref);
    }

  g_mutex_lock (&self->lock);
  if (g_cancellable_is_cancelled (cancellable))
    cancelled = TRUE;
  else
    {
      op->gtask = g_object_ref (gtask);
      op->linked = TRUE;
      g_queue_push_tail_link (&self->ops, &op->link);
      if (kind == OP_WAIT && timeout == 0)
        {
          op->timed_out = TRUE;
          cancel = unfinished_locked (self);
        }
      serve_locked (self, &done, &rest);
      if (rest && cancel == NULL)
        cancel = unfinished_locked (self);
    }
  g_mutex_unlock (&self->lock);

  if (cancelled)
    {
      if (op->timer != NULL)
        g_source_destroy (op->timer);
      DVT_CALLOUT (g_task_return_new_error (gtask, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s",
                                            _("The wait for the task group was cancelled")));
    }
  cancel_tasks (cancel);
  complete_ops (self, &done);
  DVT_CALLOUT (g_object_unref (gtask));
  dvt_fork_gate_leave (gate);
}

/* The op of @result, with its handler disconnected, if @result comes from
 * @source_tag on @group. */
static gboolean
finish_op (DvtTaskGroup *group,
           GAsyncResult *result,
           gpointer      source_tag)
{
  if (!g_task_is_valid (result, group) ||
      g_task_get_source_tag (G_TASK (result)) != source_tag)
    return FALSE;

  op_disconnect (g_task_get_task_data (G_TASK (result)));
  return TRUE;
}

/**
 * dvt_task_group_wait_async:
 * @group: a group
 * @timeout: the exit timeout, in seconds, as for
 *   [method@TaskGroup.wait_blocking]; its timer runs on the thread-default
 *   main context of the calling thread
 * @cancellable: (nullable): cancels the wait, not the members
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once every member
 *   has ended, or the wait was cancelled
 * @user_data: data for @callback
 *
 * The main-loop twin of [method@TaskGroup.wait_blocking]. @callback always
 * runs after this call has returned, even if the group had no member left
 * running; call [method@TaskGroup.wait_finish] there.
 *
 * Since: 0.2
 */
void
dvt_task_group_wait_async (DvtTaskGroup        *group,
                           double               timeout,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_return_if_fail (DVT_IS_TASK_GROUP (group));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  start_op (group, OP_WAIT, timeout, FALSE, cancellable, callback, user_data,
            dvt_task_group_wait_async);
}

/**
 * dvt_task_group_wait_finish:
 * @group: a group
 * @result: the result given to the callback of [method@TaskGroup.wait_async]
 * @error: return location for a #GError
 *
 * Finishes [method@TaskGroup.wait_async].
 *
 * Returns: as [method@TaskGroup.wait_blocking]
 *
 * Since: 0.2
 */
gboolean
dvt_task_group_wait_finish (DvtTaskGroup  *group,
                            GAsyncResult  *result,
                            GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), FALSE, error);
  dvt_return_val_if_fail_error (finish_op (group, result, dvt_task_group_wait_async),
                                FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * dvt_task_group_next_async:
 * @group: a group
 * @cancellable: (nullable): cancels the wait, not the members
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once a member was
 *   handed to this call, or the end was reached
 * @user_data: data for @callback
 *
 * The main-loop twin of [method@TaskGroup.next_blocking]: takes the next
 * member to end. A member handed to this call is returned even if
 * @cancellable is cancelled before the callback runs; a call cancelled
 * first leaves it to the next caller. Call [method@TaskGroup.next_finish]
 * in @callback, which always runs after this call has returned.
 *
 * Since: 0.2
 */
void
dvt_task_group_next_async (DvtTaskGroup        *group,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_return_if_fail (DVT_IS_TASK_GROUP (group));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  start_op (group, OP_NEXT, -1, FALSE, cancellable, callback, user_data,
            dvt_task_group_next_async);
}

/**
 * dvt_task_group_next_finish:
 * @group: a group
 * @result: the result given to the callback of [method@TaskGroup.next_async]
 * @error: return location for a #GError
 *
 * Finishes [method@TaskGroup.next_async].
 *
 * Returns: (transfer full) (nullable): the member, or %NULL at the end
 *   (see [method@TaskGroup.next_blocking]) or with %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
DvtTask *
dvt_task_group_next_finish (DvtTaskGroup  *group,
                            GAsyncResult  *result,
                            GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), NULL, error);
  dvt_return_val_if_fail_error (finish_op (group, result, dvt_task_group_next_async),
                                NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * dvt_task_group_first_async:
 * @group: a group
 * @cancel_rest: whether to cancel the members that have not ended once
 *   one has succeeded
 * @cancellable: (nullable): cancels the wait, not the members
 * @callback: (scope async) (closure user_data): called on the
 *   thread-default main context of the calling thread once a member has
 *   succeeded, or none is left that could
 * @user_data: data for @callback
 *
 * The main-loop twin of [method@TaskGroup.first_blocking]; call
 * [method@TaskGroup.first_finish] in @callback.
 *
 * Since: 0.2
 */
void
dvt_task_group_first_async (DvtTaskGroup        *group,
                            gboolean             cancel_rest,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (DVT_IS_TASK_GROUP (group));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  start_op (group, OP_FIRST, -1, cancel_rest, cancellable, callback, user_data,
            dvt_task_group_first_async);
}

/**
 * dvt_task_group_first_finish:
 * @group: a group
 * @result: the result given to the callback of [method@TaskGroup.first_async]
 * @error: return location for a #GError
 *
 * Finishes [method@TaskGroup.first_async].
 *
 * Returns: (transfer full): the first member to succeed, or %NULL with
 *   @error set, as [method@TaskGroup.first_blocking]
 *
 * Since: 0.2
 */
DvtTask *
dvt_task_group_first_finish (DvtTaskGroup  *group,
                             GAsyncResult  *result,
                             GError       **error)
{
  dvt_return_val_if_fail_error (DVT_IS_TASK_GROUP (group), NULL, error);
  dvt_return_val_if_fail_error (finish_op (group, result, dvt_task_group_first_async),
                                NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
