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
  if (dvt_mailbox_has_mail (mailbox))
    return TRUE;
  if (mailbox->spins && g_atomic_int_get (&mailbox->expected) > 0)
    return spin_for_mail (mailbox);

  return FALSE;
}

static gboolean
mailbox_check (GSource *source)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;
  gboolean mail = dvt_mailbox_has_mail (mailbox);

  /* The reply came soon after a spin gave up: the next spin may last. */
  if (mailbox->spun_at != 0)
    {
      if (mail)
        dvt_spin_woken (&(DvtSpin) { .start = mailbox->spun_at, .now = mailbox->spun_at });
      mailbox->spun_at = 0;
    }

  return mail;
}

static gboolean
mailbox_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     user_data)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;
  DvtMail *mail;

  g_mutex_lock (&mailbox->lock);
  mail = mailbox->head;
  g_atomic_pointer_set (&mailbox->head, NULL);
  mailbox->tail = NULL;
  g_mutex_unlock (&mailbox->lock);

  dvt_mail_deliver_all (mail);

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
  while (mail != NULL)
    {
      DvtMail *next = mail->next;

      mail->next = NULL;
      dvt_fault_point ();
      mail->deliver (mail);
      mail = next;
    }
  if (after_delivery != NULL)
    after_delivery ();
}

/* The context's reference is dropped by dvt_mailbox_destroy(), not here:
 * GLib finalizes a source between unlocking and locking its context
 * again, so the last reference must not go while it does. */
static void
mailbox_finalize (GSource *source)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;

  g_assert (mailbox->head == NULL);
  g_mutex_clear (&mailbox->lock);
}

static GSourceFuncs mailbox_funcs = {
  .prepare = mailbox_prepare,
  .check = mailbox_check,
  .dispatch = mailbox_dispatch,
  .finalize = mailbox_finalize,
};

DvtMailbox *
dvt_mailbox_new (GMainContext *context,
                 const char   *name)
{
  GSource *source = g_source_new (&mailbox_funcs, sizeof (DvtMailbox));
  DvtMailbox *mailbox = (DvtMailbox *) source;

  g_mutex_init (&mailbox->lock);
  mailbox->context = g_main_context_ref (context);
  g_source_set_static_name (source, name);
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_attach (source, context);

  return mailbox;
}

/* Marks a mailbox of a context that Dovetail does not iterate itself. */
void
dvt_mailbox_set_spins (DvtMailbox *mailbox)
{
  mailbox->spins = TRUE;
}

void
dvt_mailbox_post (DvtMailbox *mailbox,
                  DvtMail    *mail)
{
  gboolean was_empty;

  mail->next = NULL;

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
   * flag before it looks for mail: one of the two sees the other. Still
   * under the lock: until it is released, the mail cannot be delivered,
   * so the mailbox (which a delivery may free) and its context are
   * alive. */
  if (was_empty)
    {
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
      if (!g_atomic_int_get (&mailbox->watched))
        g_main_context_wakeup (mailbox->context);
    }
  g_mutex_unlock (&mailbox->lock);
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
