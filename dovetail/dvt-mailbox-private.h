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
 * once, and one dispatch delivers everything posted meanwhile, in order. */
struct _DvtMailbox
{
  GSource       source;
  GMutex        lock;
  DvtMail      *head;
  DvtMail      *tail;
  GMainContext *context;
  guint         users;  /* guarded by the owner's lock */
};

DvtMailbox *dvt_mailbox_new     (GMainContext *context,
                                 const char   *name);
void        dvt_mailbox_post    (DvtMailbox   *mailbox,
                                 DvtMail      *mail);
void        dvt_mailbox_destroy (DvtMailbox   *mailbox);

G_END_DECLS
