/* dvt-core.c: what a runtime's threads share: the loop thread, the
 * mailboxes, the live tasks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-core-private.h"
#include "dvt-error.h"
#include "dvt-fault-private.h"
#include "dvt-thread-private.h"
#include "dvt-spin-private.h"

/* The core whose loop this thread runs: its state's loop_core. */
static inline DvtCore *
current_loop_core (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  return state != NULL ? state->loop_core : NULL;
}


void
dvt_core_ref (DvtCore *core)
{
  g_atomic_int_inc (&core->ref_count);
}

static void
core_hold (gpointer core)
{
  dvt_core_ref (core);
}

static void
core_free (DvtCore *core)
{
  g_assert (core->n_live == 0);

  /* An event-context's mailbox; the events' own thread has stopped. */
  if (core->events.thread_context == NULL && core->events.mailbox != NULL)
    dvt_core_release_mailbox (core, core->events.mailbox);

  dvt_pool_clear (&core->pool);

  dvt_mailbox_table_clear (&core->mailboxes);

  dvt_events_clear (&core->events);
  dvt_mailbox_destroy (core->loop_mailbox);
  g_main_context_unref (core->context);
  g_mutex_clear (&core->lock);
  dvt_rate_bucket_clear (&core->rate);
  g_mutex_clear (&core->counters_lock);
  g_clear_pointer (&core->counters, g_hash_table_unref);
  g_cond_clear (&core->idle_cond);
  g_free (core->name);
  g_free (core);
}

void
dvt_core_unref (DvtCore *core)
{
  if (g_atomic_int_dec_and_test (&core->ref_count))
    core_free (core);
}

static void
core_release (gpointer core)
{
  dvt_core_unref (core);
}

static gpointer
loop_thread_func (gpointer data)
{
  DvtCore *core = data;

  dvt_thread_state ()->loop_core = core;
  g_main_context_push_thread_default (core->context);

  while (!g_atomic_int_get (&core->loop_quit))
    g_main_context_iteration (core->context, TRUE);

  /* The loop stops for good: mail posted until now is delivered here,
   * later mail by whoever posts it (a waiting shutdown has seen every
   * task's end published, so only late frees of data remain). Mail holds
   * its task and so the runtime: none may stay behind. */
  dvt_mail_deliver_all (dvt_mailbox_close (core->loop_mailbox));

  g_main_context_pop_thread_default (core->context);
  dvt_thread_state ()->loop_core = NULL;

  dvt_core_unref (core);

  return NULL;
}

/* The loop thread's poll: before it sleeps, it spins for a few
 * microseconds watching its mailbox itself, so that work posted right
 * after an iteration (a caller in a run_blocking loop) is picked up
 * without a wake-up through the context's file descriptor. Other sources'
 * descriptors are polled now and then meanwhile. A spin that should not
 * happen (see dvt-spin.c) ends at its first step, before any poll. */
static gint
spin_poll (GPollFD *fds,
           guint    nfds,
           gint     timeout)
{
  DvtMailbox *mailbox = current_loop_core () != NULL ? current_loop_core ()->loop_mailbox : NULL;
  DvtSpin spin = DVT_SPIN_INIT;
  gboolean mail;
  gint ready = 0;

  if (timeout == 0 || mailbox == NULL)
    return g_poll (fds, nfds, timeout);

  mail = dvt_mailbox_watch (mailbox, TRUE);
  for (guint i = 0; !mail; i++)
    {
      if (!dvt_spin_step (&spin) ||
          (timeout > 0 && spin.now - spin.start >= (gint64) timeout * 1000))
        break;
      if ((i & 63) == 0 && (ready = g_poll (fds, nfds, 0)) != 0)
        break;
      mail = dvt_mailbox_has_mail (mailbox);
    }
  /* Mail posted until the flag is cleared woke nothing: look once more. */
  mail = dvt_mailbox_watch (mailbox, FALSE) || mail;
  dvt_spin_done (&spin, !mail && ready == 0);

  if (ready != 0 || mail)
    return ready;

  if (timeout > 0)
    {
      timeout -= (gint) ((spin.now - spin.start) / 1000);
      if (timeout <= 0)
        return 0;
    }

  ready = g_poll (fds, nfds, timeout);
  /* Mail came soon after the spin gave up: the next spin may last. */
  if (dvt_mailbox_has_mail (mailbox))
    dvt_spin_woken (&spin);

  return ready;
}

DvtCore *
dvt_core_new (GObject    *owner,
              const char *name,
              guint       max_workers)
{
  DvtCore *core = g_new0 (DvtCore, 1);
  g_autofree char *thread_name = dvt_thread_name (name, "loop");
  g_autofree char *events_name = dvt_thread_name (name, "events");

  core->ref_count = 1;
  core->owner = owner;
  core->name = g_strdup (name);
  g_mutex_init (&core->lock);
  dvt_rate_bucket_init (&core->rate);
  g_mutex_init (&core->counters_lock);
  g_cond_init (&core->idle_cond);
  core->context = g_main_context_new ();
  g_main_context_set_poll_func (core->context, spin_poll);
  core->loop_mailbox = dvt_mailbox_new (core->context, "[dovetail] loop");
  dvt_events_init (&core->events, events_name, core, core_hold, core_release);
  dvt_mailbox_table_init (&core->mailboxes, "[dovetail] callbacks", DVT_MAILBOX_SPINS);
  dvt_pool_init (&core->pool, max_workers, core, core_hold, core_release);

  dvt_core_ref (core);
  core->loop_thread = g_thread_new (thread_name, loop_thread_func, core);

  return core;
}

/* Stops the loop thread and the workers. With @wait, returns once they
 * have stopped, except for the calling thread if it is one of them. */
void
dvt_core_stop (DvtCore  *core,
           gboolean  wait)
{
  GThread *thread;

  g_mutex_lock (&core->lock);
  thread = g_steal_pointer (&core->loop_thread);
  g_mutex_unlock (&core->lock);

  if (thread != NULL)
    dvt_context_thread_stop (thread, &core->loop_quit, core->context,
                             wait && current_loop_core () != core);

  dvt_pool_close (&core->pool, wait);

  /* Last, to deliver the terminal events of tasks the stop ended. */
  dvt_events_stop (&core->events, wait);
}

gboolean
dvt_core_is_loop_thread (DvtCore *core)
{
  return current_loop_core () == core;
}

gboolean
dvt_core_check_blocking (DvtCore  *core,
                         GError  **error)
{
  if (G_LIKELY (current_loop_core () != core))
    return TRUE;

  g_set_error_literal (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK,
                       _("A blocking call was made on the runtime’s own loop "
                         "thread, which the work needs in order to run; use "
                         "an asynchronous call there instead"));
  return FALSE;
}

DvtMailbox *
dvt_core_acquire_mailbox (DvtCore      *core,
                          GMainContext *context)
{
  if (context == core->context)
    return core->loop_mailbox;

  return dvt_mailbox_table_acquire (&core->mailboxes, context);
}

void
dvt_core_release_mailbox (DvtCore    *core,
                          DvtMailbox *mailbox)
{
  if (mailbox != core->loop_mailbox)
    dvt_mailbox_table_release (&core->mailboxes, mailbox);
}

typedef struct
{
  DvtMail         mail;
  DvtCore        *core;
  DvtMailbox     *mailbox;
  GDestroyNotify  destroy;
  gpointer        data;
} DestroyMail;

static void
deliver_destroy (DvtMail *mail)
{
  DestroyMail *dm = (DestroyMail *) mail;
  DvtForkGate gate;

  DVT_APP_CALL (dm->destroy (dm->data));
  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  dvt_core_release_mailbox (dm->core, dm->mailbox);
  dvt_core_unref (dm->core);
  dvt_fork_gate_leave (gate);
  g_free (dm);
}

/* Calls @destroy (@data) on the thread that iterates the context of
 * @mailbox: at once if that is this thread, else through the mailbox.
 * Language bindings free their closures this way on their own thread.
 * Consumes one user of @mailbox. */
void
dvt_core_destroy_on (DvtCore        *core,
                     DvtMailbox     *mailbox,
                     GDestroyNotify  destroy,
                     gpointer        data)
{
  DestroyMail *dm;

  if (g_main_context_is_owner (mailbox->context))
    {
      DVT_APP_CALL (destroy (data));
      dvt_core_release_mailbox (core, mailbox);
      return;
    }

  dm = g_new0 (DestroyMail, 1);
  dm->mail.deliver = deliver_destroy;
  dvt_core_ref (core);
  dm->core = core;
  dm->mailbox = mailbox;
  dm->destroy = destroy;
  dm->data = data;
  dvt_mailbox_post (mailbox, &dm->mail);
}

/* ---- the live list ------------------------------------------------------ */

/* Registers @node as live, unless the runtime is closed: under the lock,
 * @accepted (@data) runs first (the task layer records the task's first
 * event there, so that it precedes any other), then the node is linked.
 * The caller holds what the node belongs to while it is live. */
gboolean
dvt_core_accept (DvtCore      *core,
                 DvtLiveNode  *node,
                 void        (*accepted) (gpointer data),
                 gpointer      data,
                 GError      **error)
{
  g_mutex_lock (&core->lock);
  if (g_atomic_int_get (&core->closed))
    {
      g_mutex_unlock (&core->lock);
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                           _("The runtime has been shut down and accepts no "
                             "more work"));
      return FALSE;
    }

  accepted (data);
  node->prev = NULL;
  node->next = core->live;
  if (core->live != NULL)
    core->live->prev = node;
  core->live = node;
  core->n_live++;
  g_mutex_unlock (&core->lock);

  DVT_COUNTER_ADD (&core->n_queued, 1);

  return TRUE;
}

/* Calls @func (@node, @data) for every live node, under the lock, until
 * it returns FALSE. */
void
dvt_core_foreach_live (DvtCore  *core,
                       gboolean (*func) (DvtLiveNode *node,
                                         gpointer     data),
                       gpointer  data)
{
  g_mutex_lock (&core->lock);
  for (DvtLiveNode *node = core->live; node != NULL; node = node->next)
    if (!func (node, data))
      break;
  g_mutex_unlock (&core->lock);
}

/* ---- idleness ------------------------------------------------------------- */

/* The runtime is idle when no task is live and no ended task still posts
 * its mail. Blocking waiters wait on idle_cond; asynchronous ones are
 * called back by whoever makes the runtime idle. Both count in
 * n_idle_waiters, so that a task's end costs nothing more while nobody
 * waits. */
typedef struct _IdleWatch IdleWatch;

struct _IdleWatch
{
  IdleWatch  *next;
  void      (*func) (gpointer data);
  gpointer    data;
};

static gboolean
core_is_idle_locked (DvtCore *core)
{
  return core->n_live == 0 && g_atomic_int_get (&core->n_publishing) == 0;
}

/* With the lock held, the runtime having become idle: wakes the blocking
 * waiters and takes the asynchronous ones, for the caller to call once it
 * has released the lock. */
static IdleWatch *
core_became_idle_locked (DvtCore *core)
{
  IdleWatch *watches = g_steal_pointer (&core->idle_watches);

  g_cond_broadcast (&core->idle_cond);
  for (IdleWatch *w = watches; w != NULL; w = w->next)
    g_atomic_int_add (&core->n_idle_waiters, -1);

  return watches;
}

static void
call_idle_watches (IdleWatch *watches)
{
  while (watches != NULL)
    {
      IdleWatch *next = watches->next;

      watches->func (watches->data);
      g_free (watches);
      watches = next;
    }
}

/* Unlinks @node, which ended. */
void
dvt_core_retire (DvtCore     *core,
                 DvtLiveNode *node)
{
  IdleWatch *watches = NULL;

  g_mutex_lock (&core->lock);
  if (node->prev != NULL)
    node->prev->next = node->next;
  else
    core->live = node->next;
  if (node->next != NULL)
    node->next->prev = node->prev;
  node->prev = node->next = NULL;
  /* GLib's broadcast is a system call even with nobody waiting: this
   * runs once per task when tasks run one at a time. */
  if (--core->n_live == 0 && core->n_idle_waiters > 0)
    {
      if (g_atomic_int_get (&core->n_publishing) == 0)
        watches = core_became_idle_locked (core);
      else
        g_cond_broadcast (&core->idle_cond);
    }
  g_mutex_unlock (&core->lock);

  call_idle_watches (watches);
}

/* Around what an ended task posts after it has left the live list: the
 * runtime is not idle until it has. */
void
dvt_core_hold_idle (DvtCore *core)
{
  g_atomic_int_inc (&core->n_publishing);
}

void
dvt_core_release_idle (DvtCore *core)
{
  IdleWatch *watches = NULL;

  if (!g_atomic_int_dec_and_test (&core->n_publishing) ||
      g_atomic_int_get (&core->n_idle_waiters) == 0)
    return;

  g_mutex_lock (&core->lock);
  if (core_is_idle_locked (core))
    watches = core_became_idle_locked (core);
  g_mutex_unlock (&core->lock);

  call_idle_watches (watches);
}

static void
wake_idle_waiters (GCancellable *cancellable,
                   DvtCore      *core)
{
  g_mutex_lock (&core->lock);
  g_cond_broadcast (&core->idle_cond);
  g_mutex_unlock (&core->lock);
}

/* Waits until the runtime is idle, the monotonic time @deadline (-1:
 * none) passes, or @cancellable is cancelled. Returns whether it is
 * idle. */
gboolean
dvt_core_wait_idle_until (DvtCore      *core,
                          gint64        deadline,
                          GCancellable *cancellable)
{
  gulong handler = 0;
  gboolean idle;

  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (wake_idle_waiters), core, NULL);

  g_mutex_lock (&core->lock);
  g_atomic_int_inc (&core->n_idle_waiters);
  while (!(idle = core_is_idle_locked (core)) &&
         !g_cancellable_is_cancelled (cancellable))
    {
      if (deadline < 0)
        g_cond_wait (&core->idle_cond, &core->lock);
      else if (!g_cond_wait_until (&core->idle_cond, &core->lock, deadline) &&
               g_get_monotonic_time () >= deadline)
        {
          idle = core_is_idle_locked (core);
          break;
        }
    }
  g_atomic_int_add (&core->n_idle_waiters, -1);
  g_mutex_unlock (&core->lock);

  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);

  return idle;
}

/* Waits until no task is live and no ended task still posts its mail. */
void
dvt_core_wait_idle (DvtCore *core)
{
  dvt_core_wait_idle_until (core, -1, NULL);
}

/* Calls @func (@data) once the runtime is idle: at once (on this thread)
 * if it is now, else on the thread that makes it idle. */
void
dvt_core_when_idle (DvtCore  *core,
                    void    (*func) (gpointer data),
                    gpointer  data)
{
  IdleWatch *watch;

  g_mutex_lock (&core->lock);
  if (core_is_idle_locked (core))
    {
      g_mutex_unlock (&core->lock);
      func (data);
      return;
    }
  watch = g_new (IdleWatch, 1);
  watch->func = func;
  watch->data = data;
  watch->next = core->idle_watches;
  core->idle_watches = watch;
  g_atomic_int_inc (&core->n_idle_waiters);
  g_mutex_unlock (&core->lock);
}
