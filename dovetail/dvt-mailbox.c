/* dvt-mailbox.c: batched delivery of work to a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-fault-private.h"
#include "dvt-mailbox-private.h"
#include "dvt-spin-private.h"

/* Run once a list of mail has been delivered (the task layer frees the
 * tasks it collected meanwhile in one go). */
static void (*after_delivery) (void);

/* While a reply is on its way to a context that Dovetail does not
 * iterate (an application's), the thread iterating it spins a few
 * microseconds for the mail before the context sleeps in poll(): a reply
 * from a worker that is running catches the thread awake, and the post
 * needs no wake-up through the context's file descriptor. How long is
 * dvt-spin.c's adaptive spin budget: none on a busy machine, shorter
 * after spins that found nothing. */
static gboolean
spin_for_mail (DvtMailbox *mailbox)
{
  DvtSpin spin = DVT_SPIN_INIT;
  gboolean mail = dvt_mailbox_watch (mailbox, TRUE);

  while (!mail && dvt_spin_step (&spin))
    mail = dvt_mailbox_has_mail (mailbox);
  /* Mail posted until the flag is cleared woke nothing: look once more. */
  mail = dvt_mailbox_watch (mailbox, FALSE) || mail;
  dvt_spin_done (&spin, !mail);
  mailbox->spun_at = mail ? 0 : spin.start;

  return mail;
}

/* Ready whenever mail is waiting: a post that lands after dispatch took
 * the list makes the next iteration dispatch again. */
static gboolean
mailbox_prepare (GSource *source,
                 gint    *timeout)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;

  *timeout = -1;
  /* A nested loop in a delivery of a reentrant mailbox delivers what
   * that dispatch took and has not delivered yet. */
  if (dvt_mailbox_has_mail (mailbox) || mailbox->taken != NULL || mailbox->local != NULL)
    return TRUE;
  if (mailbox->spins && g_atomic_int_get (&mailbox->expected) > 0)
    return spin_for_mail (mailbox);

  return FALSE;
}

static gboolean
mailbox_check (GSource *source)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;
  gboolean mail = dvt_mailbox_has_mail (mailbox) || mailbox->taken != NULL ||
                  mailbox->local != NULL;

  /* The reply came soon after a spin gave up: the next spin may last. */
  if (mailbox->spun_at != 0)
    {
      if (mail)
        dvt_spin_woken (&(DvtSpin) { .start = mailbox->spun_at, .now = mailbox->spun_at });
      mailbox->spun_at = 0;
    }

  return mail;
}

/* Delivers the list at *@list in order, taking each mail off it before
 * delivering it. */
static void
deliver_from (DvtMail **list)
{
  DvtMail *mail;

  while ((mail = *list) != NULL)
    {
      *list = mail->next;
      mail->next = NULL;
      dvt_fault_point ();
      mail->deliver (mail);
    }
  if (after_delivery != NULL)
    after_delivery ();
}

/* Takes the mail posted so far. */
static DvtMail *
mailbox_take (DvtMailbox *mailbox)
{
  DvtMail *mail;

  g_mutex_lock (&mailbox->lock);
  mail = mailbox->head;
  g_atomic_pointer_set (&mailbox->head, NULL);
  mailbox->tail = NULL;
  g_mutex_unlock (&mailbox->lock);

  return mail;
}

/* Delivers the mail taken, in order, one at a time from mailbox->taken:
 * a nested dispatch (of a reentrant mailbox) goes on where this one is.
 * The last delivery may destroy the mailbox (its last user released it):
 * GLib holds the source while it dispatches it, and nobody posts to it
 * any more, so it is still there to read, and empty. */
static gboolean
mailbox_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     user_data)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;
  GThread *outer = mailbox->dispatcher;

  /* Posts made meanwhile by this thread need not wake the context: it
   * looks for mail again before it can sleep (here, or in
   * mailbox_prepare()). */
  g_atomic_pointer_set (&mailbox->dispatcher, g_thread_self ());

  for (guint round = 0; round < mailbox->rounds; round++)
    {
      if (mailbox->taken == NULL)
        {
          mailbox->taken = g_steal_pointer (&mailbox->local);
          mailbox->local_tail = NULL;
        }
      if (mailbox->taken == NULL)
        mailbox->taken = mailbox_take (mailbox);
      if (mailbox->taken == NULL)
        break;

      deliver_from (&mailbox->taken);
    }

  g_atomic_pointer_set (&mailbox->dispatcher, outer);

  return G_SOURCE_CONTINUE;
}

/* Sets what runs after each delivery of a list of mail. Once, before any
 * mailbox exists. */
void
dvt_mail_set_after_delivery (void (*func) (void))
{
  after_delivery = func;
}

/* Delivers a list of mail in order. */
void
dvt_mail_deliver_all (DvtMail *mail)
{
  deliver_from (&mail);
}

/* The context's reference is dropped by dvt_mailbox_destroy(), not here:
 * GLib finalizes a source between unlocking and locking its context
 * again, so the last reference must not go while it does. */
static void
mailbox_finalize (GSource *source)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;

  g_assert (mailbox->head == NULL && mailbox->taken == NULL && mailbox->local == NULL);
  g_mutex_clear (&mailbox->lock);
}

static GSourceFuncs mailbox_funcs = {
  .prepare = mailbox_prepare,
  .check = mailbox_check,
  .dispatch = mailbox_dispatch,
  .finalize = mailbox_finalize,
};

DvtMailbox *
dvt_mailbox_new_full (GMainContext    *context,
                      const char      *name,
                      DvtMailboxFlags  flags)
{
  GSource *source = g_source_new (&mailbox_funcs, sizeof (DvtMailbox));
  DvtMailbox *mailbox = (DvtMailbox *) source;

  g_mutex_init (&mailbox->lock);
  mailbox->context = g_main_context_ref (context);
  mailbox->spins = (flags & DVT_MAILBOX_SPINS) != 0;
  mailbox->rounds = (flags & DVT_MAILBOX_BATCHES) != 0 ? DVT_MAILBOX_BATCH_ROUNDS : 1;
  g_source_set_static_name (source, name);
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_can_recurse (source, (flags & DVT_MAILBOX_REENTRANT) != 0);
  g_source_attach (source, context);

  return mailbox;
}

DvtMailbox *
dvt_mailbox_new (GMainContext *context,
                 const char   *name)
{
  return dvt_mailbox_new_full (context, name, 0);
}

void
dvt_mailbox_post (DvtMailbox *mailbox,
                  DvtMail    *mail)
{
  GMainContext *context = NULL;
  gboolean was_empty;

  mail->next = NULL;

  /* From inside the mailbox's own dispatch, with nothing posted by other
   * threads waiting: mail posted by others from now on comes after this,
   * and none can be before it, so it needs neither the lock nor a
   * wake-up. A callback that makes its next call, completed at once, is
   * delivered this way. */
  if (g_atomic_pointer_get (&mailbox->dispatcher) == g_thread_self () &&
      !dvt_mailbox_has_mail (mailbox))
    {
      if (mailbox->local_tail != NULL)
        mailbox->local_tail->next = mail;
      else
        mailbox->local = mail;
      mailbox->local_tail = mail;
      return;
    }

  g_mutex_lock (&mailbox->lock);
  if (G_UNLIKELY (mailbox->closed))
    {
      g_mutex_unlock (&mailbox->lock);
      mail->deliver (mail);
      return;
    }
  was_empty = (mailbox->head == NULL);
  if (mailbox->tail != NULL)
    mailbox->tail->next = mail;
  else
    g_atomic_pointer_set (&mailbox->head, mail);
  mailbox->tail = mail;

  /* Wakes the context if it may be blocked in poll(). The mail is
   * visible before we read the flag, and dvt_mailbox_watch() clears the
   * flag before it looks for mail: one of the two sees the other. A post
   * from inside the mailbox's own dispatch wakes nothing: the dispatching
   * thread is awake, and looks for mail again before it sleeps.
   *
   * The wake-up itself (a write to the context's file descriptor) is
   * made after the lock is released, or the woken thread would find the
   * lock held and sleep on it again. Once the lock is released, the mail
   * may be delivered and the mailbox destroyed with its context's last
   * reference: the reference taken here, under the lock, keeps the
   * context alive for the wake-up. */
  if (was_empty && g_atomic_pointer_get (&mailbox->dispatcher) != g_thread_self ())
    {
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
      if (!g_atomic_int_get (&mailbox->watched))
        context = g_main_context_ref (mailbox->context);
    }
  g_mutex_unlock (&mailbox->lock);

  if (context != NULL)
    {
      g_main_context_wakeup (context);
      g_main_context_unref (context);
    }
}

/* Called by the thread that iterates the mailbox's context, around a
 * spin in which it looks for mail itself: while @watched, posts wake
 * nothing. Returns whether mail is waiting. */
gboolean
dvt_mailbox_watch (DvtMailbox *mailbox,
                   gboolean    watched)
{
  __atomic_store_n (&mailbox->watched, watched ? 1 : 0, __ATOMIC_SEQ_CST);

  return dvt_mailbox_has_mail (mailbox);
}

/* Once the thread iterating the mailbox's context stops for good (the
 * runtime's loop thread): returns the mail not yet delivered, for the
 * caller to deliver, and makes every later post deliver its mail at once
 * on the posting thread, so that nothing posted is ever stranded. */
DvtMail *
dvt_mailbox_close (DvtMailbox *mailbox)
{
  DvtMail *mail;

  g_mutex_lock (&mailbox->lock);
  mailbox->closed = TRUE;
  mail = mailbox->head;
  g_atomic_pointer_set (&mailbox->head, NULL);
  mailbox->tail = NULL;
  g_mutex_unlock (&mailbox->lock);

  /* Posted by this thread in its last dispatch, before the rest. */
  if (mailbox->local != NULL)
    {
      mailbox->local_tail->next = mail;
      mail = g_steal_pointer (&mailbox->local);
      mailbox->local_tail = NULL;
    }

  return mail;
}

void
dvt_mailbox_destroy (DvtMailbox *mailbox)
{
  /* Outlives the source: see mailbox_finalize(). */
  GMainContext *context = mailbox->context;

  g_source_destroy ((GSource *) mailbox);
  g_source_unref ((GSource *) mailbox);
  g_main_context_unref (context);
}

/* ---- tables ------------------------------------------------------------------ */

void
dvt_mailbox_table_init (DvtMailboxTable *table,
                        const char      *name,
                        DvtMailboxFlags  flags)
{
  g_mutex_init (&table->lock);
  table->mailboxes = NULL;
  table->name = name;
  table->flags = flags;
}

/* Destroys the mailboxes left (a runtime's, whose users went with its
 * threads). */
void
dvt_mailbox_table_clear (DvtMailboxTable *table)
{
  if (table->mailboxes != NULL)
    {
      GHashTableIter iter;
      gpointer mailbox;

      g_hash_table_iter_init (&iter, table->mailboxes);
      while (g_hash_table_iter_next (&iter, NULL, &mailbox))
        dvt_mailbox_destroy (mailbox);
      g_clear_pointer (&table->mailboxes, g_hash_table_unref);
    }
  g_mutex_clear (&table->lock);
}

/* The mailbox of @context, made if it has none, with one more user. */
DvtMailbox *
dvt_mailbox_table_acquire (DvtMailboxTable *table,
                           GMainContext    *context)
{
  DvtMailbox *mailbox = NULL;

  g_mutex_lock (&table->lock);
  if (table->mailboxes == NULL)
    table->mailboxes = g_hash_table_new (NULL, NULL);
  else
    mailbox = g_hash_table_lookup (table->mailboxes, context);
  if (mailbox == NULL)
    {
      mailbox = dvt_mailbox_new_full (context, table->name, table->flags);
      g_hash_table_insert (table->mailboxes, context, mailbox);
    }
  mailbox->users++;
  g_mutex_unlock (&table->lock);

  return mailbox;
}

/* One user less: the last one destroys the mailbox. */
void
dvt_mailbox_table_release (DvtMailboxTable *table,
                           DvtMailbox      *mailbox)
{
  gboolean destroy = FALSE;

  g_mutex_lock (&table->lock);
  if (--mailbox->users == 0)
    {
      g_hash_table_remove (table->mailboxes, mailbox->context);
      destroy = TRUE;
    }
  g_mutex_unlock (&table->lock);

  if (destroy)
    dvt_mailbox_destroy (mailbox);
}
