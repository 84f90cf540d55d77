/* dvt-mailbox-private.h: batched delivery of work to a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DvtMail DvtMail;

/* A message embedded in whatever owns it; @deliver owns it once called. */
struct _DvtMail
{
  DvtMail *next;
  void   (*deliver) (DvtMail *mail);
};

typedef struct _DvtMailbox DvtMailbox;

/* One GSource per context: posting to an empty mailbox wakes the context
 * once, and one dispatch delivers everything posted meanwhile, in order.
 * While the thread iterating the context watches the mailbox itself (the
 * runtime's loop thread, spinning before it sleeps), a post needs no
 * wake-up at all. */
struct _DvtMailbox
{
  GSource       source;
  GMutex        lock;
  DvtMail      *head;     /* read without the lock to tell it is empty */
  DvtMail      *tail;
  GMainContext *context;
  guint         users;    /* guarded by the owner's lock */
  int           watched;  /* atomic: see dvt_mailbox_watch() */
  gboolean      closed;   /* under lock: see dvt_mailbox_close() */
  /* For a context that Dovetail does not iterate itself: how many
   * replies are on their way (atomic), and the iterating thread's last
   * spin for them. */
  gboolean      spins;
  int           expected;
  gint64        spun_at;
};

DvtMailbox *dvt_mailbox_new     (GMainContext *context,
                                 const char   *name);
void        dvt_mailbox_post    (DvtMailbox   *mailbox,
                                 DvtMail      *mail);
void        dvt_mailbox_destroy (DvtMailbox   *mailbox);
DvtMail    *dvt_mailbox_close   (DvtMailbox   *mailbox);
void        dvt_mail_deliver_all (DvtMail     *mail);
void        dvt_mail_set_after_delivery (void (*func) (void));
gboolean    dvt_mailbox_watch   (DvtMailbox   *mailbox,
                                 gboolean      watched);
void        dvt_mailbox_set_spins (DvtMailbox *mailbox);

static inline gboolean
dvt_mailbox_has_mail (DvtMailbox *mailbox)
{
  return g_atomic_pointer_get (&mailbox->head) != NULL;
}

/* A reply to this mailbox's context is on its way (until the matching
 * dvt_mailbox_expect_done()): while one is, the thread iterating the
 * context spins briefly for mail before it sleeps (see mailbox_prepare()). */
static inline void
dvt_mailbox_expect (DvtMailbox *mailbox)
{
  g_atomic_int_inc (&mailbox->expected);
}

static inline void
dvt_mailbox_expect_done (DvtMailbox *mailbox)
{
  g_atomic_int_add (&mailbox->expected, -1);
}

G_END_DECLS
