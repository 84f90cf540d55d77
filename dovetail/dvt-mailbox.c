/* dvt-mailbox.c: batched delivery of work to a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-mailbox-private.h"

static gboolean
mailbox_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     user_data)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;
  DvtMail *mail;

  /* Disarm first: a post that lands after we took the list re-arms it. */
  g_source_set_ready_time (source, -1);

  g_mutex_lock (&mailbox->lock);
  mail = mailbox->head;
  mailbox->head = mailbox->tail = NULL;
  g_mutex_unlock (&mailbox->lock);

  while (mail != NULL)
    {
      DvtMail *next = mail->next;

      mail->next = NULL;
      mail->deliver (mail);
      mail = next;
    }

  return G_SOURCE_CONTINUE;
}

static void
mailbox_finalize (GSource *source)
{
  DvtMailbox *mailbox = (DvtMailbox *) source;

  g_assert (mailbox->head == NULL);
  g_mutex_clear (&mailbox->lock);
  g_main_context_unref (mailbox->context);
}

static GSourceFuncs mailbox_funcs = {
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

void
dvt_mailbox_post (DvtMailbox *mailbox,
                  DvtMail    *mail)
{
  gboolean was_empty;

  mail->next = NULL;

  g_mutex_lock (&mailbox->lock);
  was_empty = (mailbox->head == NULL);
  if (mailbox->tail != NULL)
    mailbox->tail->next = mail;
  else
    mailbox->head = mail;
  mailbox->tail = mail;
  g_mutex_unlock (&mailbox->lock);

  /* Wakes the context if it is blocked in poll(). */
  if (was_empty)
    g_source_set_ready_time ((GSource *) mailbox, 0);
}

void
dvt_mailbox_destroy (DvtMailbox *mailbox)
{
  g_source_destroy ((GSource *) mailbox);
  g_source_unref ((GSource *) mailbox);
}
