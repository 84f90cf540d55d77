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

typedef enum
{
  /* For a context that Dovetail does not iterate itself: while a reply is
   * expected (dvt_mailbox_expect()), the thread iterating the context
   * spins briefly for mail before it sleeps. */
  DVT_MAILBOX_SPINS     = 1 << 0,
  /* A main loop run inside a delivery (a nested one) goes on delivering
   * this mailbox's mail, in order, as it would dispatch the idle source
   * of a GTask: the source may recurse. */
  DVT_MAILBOX_REENTRANT = 1 << 1,
  /* Mail posted while a dispatch delivers (a callback whose next call
   * completed at once) is delivered by the same dispatch, up to
   * DVT_MAILBOX_BATCH_ROUNDS lists, rather than one iteration later. */
  DVT_MAILBOX_BATCHES   = 1 << 2,
} DvtMailboxFlags;

/* How many lists of mail a dispatch of a DVT_MAILBOX_BATCHES mailbox
 * delivers at most before the context's other sources get their turn. */
#define DVT_MAILBOX_BATCH_ROUNDS 64

typedef struct _DvtMailbox DvtMailbox;

/* One GSource per context: posting to an empty mailbox wakes the context
 * once, and one dispatch delivers everything posted meanwhile, in order.
 * While the thread iterating the context watches the mailbox itself (the
 * runtime's loop thread, spinning before it sleeps), or posts to it from
 * inside its own dispatch, a post needs no wake-up at all. */
struct _DvtMailbox
{
  GSource       source;
  GMutex        lock;
  DvtMail      *head;     /* read without the lock to tell it is empty */
  DvtMail      *tail;
  GMainContext *context;
  guint         users;    /* guarded by the table's lock (DvtMailboxTable) */
  int           watched;  /* atomic: see dvt_mailbox_watch() */
  gboolean      closed;   /* under lock: see dvt_mailbox_close() */
  /* For a context that Dovetail does not iterate itself: how many
   * replies are on their way (atomic), and the iterating thread's last
   * spin for them. */
  gboolean      spins;
  int           expected;
  gint64        spun_at;
  /* The thread dispatching the mailbox (atomic: posters compare it with
   * themselves); only that thread touches the rest. @taken: what the
   * dispatch took and has not delivered yet. @local: what that thread
   * posted from inside the dispatch while nothing else was waiting,
   * without the lock; it comes after @taken and before anything posted
   * since. */
  GThread      *dispatcher;
  DvtMail      *taken;
  DvtMail      *local;
  DvtMail      *local_tail;
  guint         rounds;   /* lists delivered per dispatch at most */
};

DvtMailbox *dvt_mailbox_new     (GMainContext   *context,
                                 const char     *name);
DvtMailbox *dvt_mailbox_new_full (GMainContext   *context,
                                  const char     *name,
                                  DvtMailboxFlags flags);
void        dvt_mailbox_post    (DvtMailbox   *mailbox,
                                 DvtMail      *mail);
void        dvt_mailbox_destroy (DvtMailbox   *mailbox);
DvtMail    *dvt_mailbox_close   (DvtMailbox   *mailbox);
void        dvt_mail_deliver_all (DvtMail     *mail);
void        dvt_mail_set_after_delivery (void (*func) (void));
gboolean    dvt_mailbox_watch   (DvtMailbox   *mailbox,
                                 gboolean      watched);

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

/* ---- one mailbox per context, shared by its users ---------------------------
 *
 * Whatever delivers results to its callers' contexts (a runtime, a queue,
 * a gate) keeps a table of mailboxes: acquiring one for a context makes it
 * on first use, and the last release destroys it. A mailbox holds its
 * context while it exists, so a context cannot be finalized with a
 * mailbox of a table attached, nor a mailbox outlive its last user: a
 * context the application has dropped goes as soon as nothing is on its
 * way to it. */
typedef struct
{
  GMutex           lock;
  GHashTable      *mailboxes;  /* GMainContext → DvtMailbox; made on first use */
  const char      *name;       /* the sources' name: a static string */
  DvtMailboxFlags  flags;
} DvtMailboxTable;

void        dvt_mailbox_table_init    (DvtMailboxTable *table,
                                       const char      *name,
                                       DvtMailboxFlags  flags);
void        dvt_mailbox_table_clear   (DvtMailboxTable *table);
DvtMailbox *dvt_mailbox_table_acquire (DvtMailboxTable *table,
                                       GMainContext    *context);
void        dvt_mailbox_table_release (DvtMailboxTable *table,
                                       DvtMailbox      *mailbox);

G_END_DECLS
