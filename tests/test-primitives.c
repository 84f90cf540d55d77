/* test-primitives.c: the bottom layers, tested through the static library
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include "dvt-events-private.h"
#include "dvt-gobject-private.h"
#include "dvt-latch-private.h"
#include "dvt-core-private.h"
#include "dvt-mailbox-private.h"
#include "dvt-policy-private.h"
#include "dvt-pool-private.h"
#include "dvt-spin-private.h"
#include "dvt-task-private.h"
#include "dvt-thread-private.h"

/* ---- the rate bucket ------------------------------------------------------ */

/* A burst goes at once, then one start per interval; waits are measured
 * from the time given, so the arithmetic is tested without a clock. */
static void
test_rate_bucket_arithmetic (void)
{
  DvtRateBucket bucket;
  gint64 now = 1000000;

  dvt_rate_bucket_init (&bucket);
  g_assert_false (dvt_rate_bucket_is_set (&bucket));
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);

  /* 10 starts per second, burst 3: three free, then 100 ms apart. */
  dvt_rate_bucket_set (&bucket, 10, 3);
  g_assert_true (dvt_rate_bucket_is_set (&bucket));
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 100000);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 200000);

  /* Time passing earns starts back, never more than the burst. */
  now += 10 * G_USEC_PER_SEC;
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 100000);

  /* Burst 0 means max (1, rate); rate below 1 still allows one. */
  dvt_rate_bucket_set (&bucket, 0.5, 0);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 2 * G_USEC_PER_SEC);

  /* Extremes neither overflow nor go negative. */
  dvt_rate_bucket_set (&bucket, 1e-12, G_MAXINT32);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, G_MAXINT64 / 4), >=, 0);
  dvt_rate_bucket_set (&bucket, 1e9, 1);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 1);

  /* Cleared: no limit. */
  dvt_rate_bucket_set (&bucket, 0, 0);
  g_assert_false (dvt_rate_bucket_is_set (&bucket));
  g_assert_cmpint (dvt_rate_bucket_reserve (&bucket, now), ==, 0);
  dvt_rate_bucket_clear (&bucket);
}

/* ---- policy decisions ------------------------------------------------------ */

static void
test_policy_decisions (void)
{
  DvtPolicyDefaults defaults = { 0, 0, 0.1, 30, 0 };
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(GError) failed = g_error_new_literal (TEST_ERROR, 1, "failed");
  g_autoptr(GError) cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "c");
  g_autoptr(GError) timed_out = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "t");
  g_autoptr(GError) closed = g_error_new_literal (DVT_ERROR, DVT_ERROR_CLOSED, "closed");
  DvtPolicy *policy;

  /* Nothing asked: no policy. */
  g_assert_null (dvt_policy_resolve (&defaults, NULL));
  g_assert_null (dvt_policy_resolve (&defaults, options));
  g_assert_null (dvt_policy_new_deadline (0));

  /* Options win over the defaults; -1 means the default's. */
  defaults.timeout = 5;
  dvt_options_set_retries (options, 3);
  dvt_options_set_retry_backoff (options, 0.5);
  policy = dvt_policy_resolve (&defaults, options);
  g_assert_nonnull (policy);
  g_assert_cmpint (policy->timeout, ==, 5 * G_USEC_PER_SEC);
  g_assert_cmpuint (policy->retries, ==, 3);

  /* Back-off doubles, capped at the maximum. */
  g_assert_cmpint (dvt_policy_retry_delay (policy, 1), ==, 500000);
  g_assert_cmpint (dvt_policy_retry_delay (policy, 2), ==, 1000000);
  g_assert_cmpint (dvt_policy_retry_delay (policy, 3), ==, 2000000);
  g_assert_cmpint (dvt_policy_retry_delay (policy, 200), ==, 30 * G_USEC_PER_SEC);

  /* At most retries + 1 attempts; cancellations, timeouts and a closed
   * runtime are never retried by default. */
  g_assert_true (dvt_policy_should_retry (policy, 1, NULL, failed));
  g_assert_true (dvt_policy_should_retry (policy, 3, NULL, failed));
  g_assert_false (dvt_policy_should_retry (policy, 4, NULL, failed));
  g_assert_false (dvt_policy_should_retry (policy, 1, NULL, cancelled));
  g_assert_false (dvt_policy_should_retry (policy, 1, NULL, timed_out));
  g_assert_false (dvt_policy_should_retry (policy, 1, NULL, closed));
  g_assert_false (dvt_policy_should_retry (NULL, 1, NULL, failed));
  dvt_policy_unref (policy);

  /* Jitter stays within its factor. */
  dvt_options_set_retry_jitter (options, 0.5);
  policy = dvt_policy_resolve (&defaults, options);
  for (int i = 0; i < 100; i++)
    {
      gint64 delay = dvt_policy_retry_delay (policy, 1);

      g_assert_cmpint (delay, >=, 250000);
      g_assert_cmpint (delay, <=, 750000);
    }
  dvt_policy_unref (policy);

  policy = dvt_policy_new_deadline (0.25);
  g_assert_cmpint (policy->timeout, ==, 250000);
  g_assert_cmpuint (policy->retries, ==, 0);
  dvt_policy_unref (policy);
}

/* ---- the spin ------------------------------------------------------------- */

/* A spin ends by itself (its budget is at most DVT_SPIN_USEC, or none on a
 * busy machine), and a spin that ended either way can be settled. */
static void
test_spin_ends (void)
{
  for (guint round = 0; round < 3; round++)
    {
      DvtSpin spin = DVT_SPIN_INIT;

      while (dvt_spin_step (&spin))
        ;

      g_assert_cmpint (spin.now, !=, 0);                 /* the clock was read */
      g_assert_cmpint (spin.budget, >=, 0);
      g_assert_cmpint (spin.budget, <=, DVT_SPIN_USEC);
      dvt_spin_done (&spin, round != 1);
      if (round == 2)
        dvt_spin_woken (&spin);
    }
}

/* ---- the latch ------------------------------------------------------------ */

static gpointer
set_latch_later (gpointer data)
{
  g_usleep (2000);
  dvt_latch_set (data);

  return NULL;
}

static gpointer
wait_latch (gpointer data)
{
  return GINT_TO_POINTER (dvt_latch_wait (data, -1));
}

/* One-shot: a wait with a deadline before the set times out, a set wakes
 * every waiter, a wait after the set returns at once. */
static void
test_latch_set_and_wait (void)
{
  DvtLatch latch;
  GThread *waiters[4];
  GThread *setter;

  dvt_latch_init (&latch);
  g_assert_false (dvt_latch_is_set (&latch));
  g_assert_false (dvt_latch_wait (&latch, g_get_monotonic_time () + 1000));
  g_assert_false (dvt_latch_is_set (&latch));

  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    waiters[i] = g_thread_new ("latch-waiter", wait_latch, &latch);
  setter = g_thread_new ("latch-setter", set_latch_later, &latch);
  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    g_assert_true (GPOINTER_TO_INT (g_thread_join (waiters[i])));
  g_thread_join (setter);

  g_assert_true (dvt_latch_is_set (&latch));
  g_assert_true (dvt_latch_wait (&latch, -1));
  g_assert_true (dvt_latch_wait (&latch, g_get_monotonic_time ()));
  dvt_latch_clear (&latch);
}

static gboolean
set_latch_idle (gpointer data)
{
  dvt_latch_set (data);

  return G_SOURCE_REMOVE;
}

/* A wait that iterates a context dispatches its sources meanwhile: a
 * source that sets the latch ends the wait. */
static void
test_latch_wait_iterating (void)
{
  GMainContext *context = g_main_context_new ();
  DvtLatch latch;
  GSource *idle;

  dvt_latch_init (&latch);
  g_assert_true (g_main_context_acquire (context));

  g_assert_false (dvt_latch_wait_iterating (&latch, context, g_get_monotonic_time () + 1000));

  idle = g_idle_source_new ();
  g_source_set_callback (idle, set_latch_idle, &latch, NULL);
  g_source_attach (idle, context);
  g_source_unref (idle);
  g_assert_true (dvt_latch_wait_iterating (&latch, context, -1));

  g_main_context_release (context);
  dvt_latch_clear (&latch);
  g_main_context_unref (context);
}

/* ---- the pool ------------------------------------------------------------- */

typedef struct
{
  DvtJob    job;
  int       priority;
  gpointer  fixture;
} PoolJob;

typedef struct
{
  int        holds;    /* atomic */
  int        releases; /* atomic */
  int        exits;    /* atomic */
  GMutex     lock;
  GArray    *order;    /* of the priorities run, under lock */
  /* The first job waits until it opens: on a GCond, not a DvtLatch,
   * whose wait would have the pool start a compensating worker that runs
   * the jobs as they come, before the others are queued. */
  GCond      gate;
  gboolean   open;     /* under lock */
  DvtLatch   done;
  guint      n_jobs;
} PoolFixture;

static PoolFixture *pool_fixture;

static void
pool_hold (gpointer owner)
{
  g_atomic_int_inc (&((PoolFixture *) owner)->holds);
}

static void
pool_release (gpointer owner)
{
  g_atomic_int_inc (&((PoolFixture *) owner)->releases);
}

static void
pool_worker_exit (void)
{
  g_atomic_int_inc (&pool_fixture->exits);
}

static void
pool_job_run (DvtJob *job)
{
  PoolJob *pj = (PoolJob *) job;
  PoolFixture *fixture = pj->fixture;
  gboolean last;

  if (pj->priority == G_MAXINT)
    {
      g_mutex_lock (&fixture->lock);
      while (!fixture->open)
        g_cond_wait (&fixture->gate, &fixture->lock);
      g_mutex_unlock (&fixture->lock);
      return;
    }

  g_mutex_lock (&fixture->lock);
  g_array_append_val (fixture->order, pj->priority);
  last = fixture->order->len == fixture->n_jobs;
  g_mutex_unlock (&fixture->lock);
  if (last)
    dvt_latch_set (&fixture->done);
}

/* One worker: while it runs a job that waits, jobs queue at three
 * priorities; they then run lower value first, in arrival order among
 * equals. Every worker loop holds the owner and releases it as it ends,
 * after the exit hook that the layer above sets. */
static void
test_pool_order_and_close (void)
{
  static const int priorities[] = { 10, G_PRIORITY_DEFAULT, -10, G_PRIORITY_DEFAULT, 10, -10 };
  static const int expected[] = { -10, -10, G_PRIORITY_DEFAULT, G_PRIORITY_DEFAULT, 10, 10 };
  PoolFixture fixture = { 0, };
  PoolJob blocker = { { NULL, pool_job_run }, G_MAXINT, &fixture };
  PoolJob jobs[G_N_ELEMENTS (priorities)];
  DvtPool pool;

  g_mutex_init (&fixture.lock);
  fixture.order = g_array_new (FALSE, FALSE, sizeof (int));
  fixture.n_jobs = G_N_ELEMENTS (jobs);
  g_cond_init (&fixture.gate);
  dvt_latch_init (&fixture.done);
  pool_fixture = &fixture;
  dvt_pool_set_worker_exit_hook (pool_worker_exit);

  dvt_pool_init (&pool, 1, &fixture, pool_hold, pool_release);
  dvt_pool_push (&pool, &blocker.job);
  for (guint i = 0; i < G_N_ELEMENTS (jobs); i++)
    {
      jobs[i] = (PoolJob) { { NULL, pool_job_run }, priorities[i], &fixture };
      dvt_pool_push_priority (&pool, &jobs[i].job, priorities[i]);
    }
  g_mutex_lock (&fixture.lock);
  fixture.open = TRUE;
  g_cond_signal (&fixture.gate);
  g_mutex_unlock (&fixture.lock);
  g_assert_true (dvt_latch_wait (&fixture.done, g_get_monotonic_time () + 30 * slow * G_USEC_PER_SEC));

  g_mutex_lock (&fixture.lock);
  g_assert_cmpmem (fixture.order->data, fixture.order->len * sizeof (int),
                   expected, sizeof expected);
  g_mutex_unlock (&fixture.lock);

  /* The close waits for the worker loops to end, the clear for their
   * threads to return (the exit hook and the release come last). */
  dvt_pool_close (&pool, TRUE);
  dvt_pool_clear (&pool);
  g_assert_cmpint (g_atomic_int_get (&fixture.holds), >=, 1);
  g_assert_cmpint (g_atomic_int_get (&fixture.releases), ==, g_atomic_int_get (&fixture.holds));
  g_assert_cmpint (g_atomic_int_get (&fixture.exits), ==, g_atomic_int_get (&fixture.holds));

  dvt_pool_set_worker_exit_hook (NULL);
  pool_fixture = NULL;
  g_cond_clear (&fixture.gate);
  dvt_latch_clear (&fixture.done);
  g_array_unref (fixture.order);
  g_mutex_clear (&fixture.lock);
}

/* ---- mailboxes ------------------------------------------------------------- */

typedef struct
{
  DvtMail  mail;
  int      n;
  GArray  *order;
} TestMail;

static void
deliver_test_mail (DvtMail *mail)
{
  TestMail *tm = (TestMail *) mail;

  g_array_append_val (tm->order, tm->n);
}

static int n_after_delivery;

static void
count_after_delivery (void)
{
  n_after_delivery++;
}

/* Mail is delivered in order by one dispatch on the mailbox's context;
 * once closed, what was left comes back to the closer and later posts are
 * delivered at once by their poster. */
static void
test_mailbox_order_and_close (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (int));
  DvtMailbox *mailbox = dvt_mailbox_new (context, "test");
  TestMail mails[6];
  DvtMail *left;

  dvt_mail_set_after_delivery (count_after_delivery);
  for (int i = 0; i < 6; i++)
    {
      mails[i].mail.deliver = deliver_test_mail;
      mails[i].n = i;
      mails[i].order = order;
    }

  g_assert_false (dvt_mailbox_has_mail (mailbox));
  for (int i = 0; i < 3; i++)
    dvt_mailbox_post (mailbox, &mails[i].mail);
  g_assert_true (dvt_mailbox_has_mail (mailbox));
  g_assert_true (g_main_context_iteration (context, FALSE));
  g_assert_cmpuint (order->len, ==, 3);
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (g_array_index (order, int, i), ==, i);
  g_assert_cmpint (n_after_delivery, ==, 1);

  /* Closed with one left: handed back, in order. */
  dvt_mailbox_post (mailbox, &mails[3].mail);
  dvt_mailbox_post (mailbox, &mails[4].mail);
  left = dvt_mailbox_close (mailbox);
  g_assert_false (dvt_mailbox_has_mail (mailbox));
  dvt_mail_deliver_all (left);
  g_assert_cmpuint (order->len, ==, 5);
  g_assert_cmpint (g_array_index (order, int, 3), ==, 3);
  g_assert_cmpint (g_array_index (order, int, 4), ==, 4);

  /* After the close, a post delivers at once. */
  dvt_mailbox_post (mailbox, &mails[5].mail);
  g_assert_cmpuint (order->len, ==, 6);
  g_assert_cmpint (g_array_index (order, int, 5), ==, 5);

  dvt_mailbox_destroy (mailbox);
  dvt_mail_set_after_delivery (NULL);
}

typedef struct
{
  DvtMailbox *mailbox;
  TestMail   *mails;
  int         n;
} Poster;

static gpointer
poster_thread (gpointer data)
{
  Poster *p = data;

  for (int i = 0; i < p->n; i++)
    dvt_mailbox_post (p->mailbox, &p->mails[i].mail);

  return NULL;
}

/* Posts from other threads wake the context's thread, and none is lost. */
static void
test_mailbox_wakes (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (int));
  DvtMailbox *mailbox = dvt_mailbox_new (context, "test");
  int n = is_valgrind () ? 500 : 20000;
  TestMail *mails = g_new0 (TestMail, n);
  Poster p = { mailbox, mails, n };
  GThread *thread;

  for (int i = 0; i < n; i++)
    {
      mails[i].mail.deliver = deliver_test_mail;
      mails[i].n = i;
      mails[i].order = order;
    }

  thread = g_thread_new ("poster", poster_thread, &p);
  while (order->len < (guint) n)
    g_main_context_iteration (context, TRUE);  /* blocks: posts must wake it */
  g_thread_join (thread);
  for (int i = 0; i < n; i++)
    g_assert_cmpint (g_array_index (order, int, i), ==, i);

  dvt_mailbox_destroy (mailbox);
  g_free (mails);
}

/* A table gives every user of one context the same mailbox, another
 * context another one; the last release destroys it and drops its
 * context, and the next acquire makes a new one. */
static void
test_mailbox_table (void)
{
  GMainContext *context = g_main_context_new ();
  g_autoptr(GMainContext) other = g_main_context_new ();
  DvtMailboxTable table;
  DvtMailbox *a, *b, *c;

  dvt_mailbox_table_init (&table, "test", 0);
  a = dvt_mailbox_table_acquire (&table, context);
  b = dvt_mailbox_table_acquire (&table, context);
  c = dvt_mailbox_table_acquire (&table, other);
  g_assert_true (a == b);
  g_assert_true (a != c);
  g_assert_true (a->context == context);
  g_assert_true (g_source_get_context ((GSource *) a) == context);

  dvt_mailbox_table_release (&table, a);
  g_assert_false (g_source_is_destroyed ((GSource *) b));
  g_source_ref ((GSource *) b);
  dvt_mailbox_table_release (&table, b);
  g_assert_true (g_source_is_destroyed ((GSource *) b));
  g_source_unref ((GSource *) b);

  /* The mailbox dropped its reference to the context: the application's
   * is the last one now. */
  g_main_context_unref (context);
  b = dvt_mailbox_table_acquire (&table, other);
  g_assert_true (b == c);
  dvt_mailbox_table_release (&table, b);

  /* What is left goes with the table. */
  dvt_mailbox_table_clear (&table);
}

/* A DVT_MAILBOX_BATCHES mailbox delivers what its deliveries post, in
 * the same dispatch, a bounded number of times; a plain one in the next. */
typedef struct
{
  DvtMail     mail;
  DvtMailbox *mailbox;
  int         left;      /* how many more to chain */
  int         delivered;
} ChainMail;

static void
deliver_chain_mail (DvtMail *mail)
{
  ChainMail *cm = (ChainMail *) mail;

  cm->delivered++;
  if (cm->left-- > 0)
    dvt_mailbox_post (cm->mailbox, &cm->mail);
}

static void
test_mailbox_batches (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  DvtMailbox *plain = dvt_mailbox_new (context, "test");
  DvtMailbox *batches = dvt_mailbox_new_full (context, "test", DVT_MAILBOX_BATCHES);
  ChainMail a = { { NULL, deliver_chain_mail }, plain, 3, 0 };
  ChainMail b = { { NULL, deliver_chain_mail }, batches, DVT_MAILBOX_BATCH_ROUNDS + 10, 0 };

  dvt_mailbox_post (plain, &a.mail);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_assert_cmpint (a.delivered, ==, 4);

  /* One iteration dispatches each source once. */
  dvt_mailbox_post (batches, &b.mail);
  g_assert_true (g_main_context_iteration (context, FALSE));
  g_assert_cmpint (b.delivered, ==, DVT_MAILBOX_BATCH_ROUNDS);
  g_assert_true (g_main_context_pending (context));
  while (g_main_context_iteration (context, FALSE))
    ;
  g_assert_cmpint (b.delivered, ==, DVT_MAILBOX_BATCH_ROUNDS + 11);

  dvt_mailbox_destroy (plain);
  dvt_mailbox_destroy (batches);
}

/* A main loop run inside a delivery of a DVT_MAILBOX_REENTRANT mailbox
 * delivers the rest of the mail, in order, and mail posted later from
 * another thread wakes it. */
typedef struct _NestMail NestMail;

struct _NestMail
{
  DvtMail       mail;
  int           n;
  GArray       *order;
  DvtMailbox   *mailbox;
  GMainContext *context;
  NestMail     *late;   /* posted from a thread by the first mail */
};

static gpointer
post_late_thread (gpointer data)
{
  NestMail *first = data;

  g_usleep (1000);
  dvt_mailbox_post (first->mailbox, &first->late->mail);
  return NULL;
}

static void
deliver_nest_mail (DvtMail *mail)
{
  NestMail *nm = (NestMail *) mail;

  g_array_append_val (nm->order, nm->n);
  if (nm->n == 0)
    {
      GThread *thread = g_thread_new ("poster", post_late_thread, nm);

      /* Runs until the late mail came: it must be delivered here. */
      while (nm->order->len < 4)
        g_main_context_iteration (nm->context, TRUE);
      g_thread_join (thread);
    }
}

static void
test_mailbox_reentrant (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (int));
  DvtMailbox *mailbox = dvt_mailbox_new_full (context, "test", DVT_MAILBOX_REENTRANT);
  NestMail late = { { NULL, deliver_nest_mail }, 3, order, mailbox, context, NULL };
  NestMail mails[3];

  for (int i = 0; i < 3; i++)
    mails[i] = (NestMail) { { NULL, deliver_nest_mail }, i, order, mailbox, context, &late };
  for (int i = 0; i < 3; i++)
    dvt_mailbox_post (mailbox, &mails[i].mail);

  g_assert_true (g_main_context_iteration (context, FALSE));
  g_assert_cmpuint (order->len, ==, 4);
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (g_array_index (order, int, i), ==, i);
  g_assert_false (g_main_context_iteration (context, FALSE));

  dvt_mailbox_destroy (mailbox);
}

/* Mail the dispatching thread posts from inside a delivery comes after
 * what was posted before it and before what is posted after it, by any
 * thread; closed in between dispatches, the mailbox hands it back first. */
typedef struct
{
  DvtMail     mail;
  int         n;
  GArray     *order;
  DvtMailbox *mailbox;
  DvtMail    *before;   /* posted by another thread before ours */
  DvtMail    *ours;
  DvtMail    *after;    /* posted by another thread after ours */
} OrderMail;

typedef struct
{
  DvtMailbox *mailbox;
  DvtMail    *mail;
} OnePost;

static gpointer
post_one_thread (gpointer data)
{
  OnePost *p = data;

  dvt_mailbox_post (p->mailbox, p->mail);
  return NULL;
}

static void
post_from_thread (DvtMailbox *mailbox,
                  DvtMail    *mail)
{
  OnePost p = { mailbox, mail };

  g_thread_join (g_thread_new ("poster", post_one_thread, &p));
}

static void
deliver_order_mail (DvtMail *mail)
{
  OrderMail *om = (OrderMail *) mail;

  g_array_append_val (om->order, om->n);
  if (om->before != NULL)
    post_from_thread (om->mailbox, om->before);
  if (om->ours != NULL)
    dvt_mailbox_post (om->mailbox, om->ours);
  if (om->after != NULL)
    post_from_thread (om->mailbox, om->after);
}

static void
test_mailbox_own_posts (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (int));
  DvtMailbox *mailbox = dvt_mailbox_new_full (context, "test", DVT_MAILBOX_BATCHES);
  OrderMail m[7];
  DvtMail *left;

  for (int i = 0; i < 7; i++)
    m[i] = (OrderMail) { { NULL, deliver_order_mail }, i, order, mailbox, NULL, NULL, NULL };
  /* 0 posts 2 after another thread posted 1: 1, 2. Then 1 posts 3, and
   * another thread posts 4 after it: 3, 4. */
  m[0].before = &m[1].mail;
  m[0].ours = &m[2].mail;
  m[1].ours = &m[3].mail;
  m[1].after = &m[4].mail;
  dvt_mailbox_post (mailbox, &m[0].mail);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_assert_cmpuint (order->len, ==, 5);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint (g_array_index (order, int, i), ==, i);

  /* Mail a delivery posted, not yet delivered when the mailbox closes,
   * comes back before what others posted after it. */
  g_array_set_size (order, 0);
  m[5].ours = &m[6].mail;
  m[5].after = &m[0].mail;
  m[0].before = m[0].ours = NULL;
  dvt_mailbox_post (mailbox, &m[5].mail);
  mailbox->rounds = 1;  /* one list per dispatch */
  g_assert_true (g_main_context_iteration (context, FALSE));
  g_assert_cmpuint (order->len, ==, 1);
  left = dvt_mailbox_close (mailbox);
  dvt_mail_deliver_all (left);
  g_assert_cmpuint (order->len, ==, 3);
  g_assert_cmpint (g_array_index (order, int, 1), ==, 6);
  g_assert_cmpint (g_array_index (order, int, 2), ==, 0);

  dvt_mailbox_destroy (mailbox);
}

/* ---- thread helpers and the fork gate -------------------------------------- */

static void
test_thread_names (void)
{
  g_autofree char *plain = dvt_thread_name ("name", "loop");
  g_autofree char *fallback = dvt_thread_name (NULL, "events");
  g_autofree char *cut = dvt_thread_name ("a-very-long-runtime", "loop");
  /* 14 bytes, then a 2-byte character across the 15th and 16th. */
  g_autofree char *utf8 = dvt_thread_name ("abcdefghijkl\xc3\xa9", "loop");

  g_assert_cmpstr (plain, ==, "name-loop");
  g_assert_cmpstr (fallback, ==, "dvt-events");
  g_assert_cmpstr (cut, ==, "a-very-long-run");
  g_assert_cmpuint (strlen (utf8), <=, 15);
  g_assert_true (g_utf8_validate (utf8, -1, NULL));
}

/* Sections nest and restore exactly; the kinds order as documented. */
static void
test_fork_gate_sections (void)
{
  DvtForkGate outer, inner, suspended;

  outer = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_assert_cmpint (outer, ==, DVT_FORK_GATE_OUT);
  inner = dvt_fork_gate_enter (DVT_FORK_GATE_CALLOUT);
  g_assert_cmpint (inner, ==, DVT_FORK_GATE_PURE);   /* weaker: no change */
  inner = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_assert_cmpint (inner, ==, DVT_FORK_GATE_PURE);
  suspended = dvt_fork_gate_suspend ();
  g_assert_cmpint (suspended, ==, DVT_FORK_GATE_PURE);
  g_assert_cmpint (dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT), ==, DVT_FORK_GATE_OUT);
  g_assert_cmpint (dvt_fork_gate_set (suspended), ==, DVT_FORK_GATE_CALLOUT);
  dvt_fork_gate_leave (outer);
  g_assert_cmpint (dvt_fork_gate_enter (DVT_FORK_GATE_CALLOUT), ==, DVT_FORK_GATE_OUT);
  dvt_fork_gate_leave (DVT_FORK_GATE_OUT);
}

typedef struct
{
  int entered;
  int leave;
} GateUser;

static gpointer
gate_user_thread (gpointer data)
{
  GateUser *u = data;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  g_atomic_int_set (&u->entered, 1);
  while (!g_atomic_int_get (&u->leave))
    g_usleep (1000);
  dvt_fork_gate_leave (gate);

  return NULL;
}

static gpointer
gate_late_thread (gpointer data)
{
  GateUser *u = data;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  g_atomic_int_set (&u->entered, 1);
  dvt_fork_gate_leave (gate);

  return NULL;
}

static gpointer
open_later (gpointer data)
{
  GateUser *u = data;

  g_usleep (50000);
  g_atomic_int_set (&u->leave, 1);

  return NULL;
}

/* Closing the gate waits for a thread inside a section, and holds back a
 * thread that wants to enter until it opens again. */
static void
test_fork_gate_close_waits (void)
{
  GateUser inside = { 0, 0 }, late = { 0, 0 };
  GThread *user, *opener, *late_user;
  gint64 start;

  user = g_thread_new ("inside", gate_user_thread, &inside);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&inside.entered), 10));

  opener = g_thread_new ("opener", open_later, &inside);
  start = g_get_monotonic_time ();
  dvt_fork_gate_close ();
  /* Returned only once the section was left. */
  g_assert_true (g_atomic_int_get (&inside.leave));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 40000);

  late_user = g_thread_new ("late", gate_late_thread, &late);
  g_usleep (50000);
  g_assert_false (g_atomic_int_get (&late.entered));
  dvt_fork_gate_open ();
  g_thread_join (late_user);
  g_assert_true (g_atomic_int_get (&late.entered));

  g_thread_join (user);
  g_thread_join (opener);
}

/* ---- progress counters ------------------------------------------------------ */

static void
test_progress (void)
{
  DvtProgress *progress = dvt_progress_new (10);

  g_assert_true (dvt_progress_add (progress));    /* a record is due */
  g_assert_false (dvt_progress_add (progress));   /* one waits already */
  g_assert_cmpint (g_atomic_int_get (&progress->done), ==, 2);
  g_atomic_int_set (&progress->pending, 0);       /* as delivery does */
  g_assert_true (dvt_progress_add (progress));
  g_assert_cmpuint (progress->total, ==, 10);
  dvt_progress_unref (dvt_progress_ref (progress));
  dvt_progress_unref (progress);
}

/* ---- a wait's expectation ---------------------------------------------------- */

static void
work_seven (DvtTask      *task,
            GCancellable *cancellable,
            gpointer      user_data,
            GError      **error)
{
  dvt_task_return_int (task, 7);
}

static void
on_wait_ready_keep (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GAsyncResult **kept = user_data;

  g_assert_true (dvt_task_wait_finish (DVT_TASK (source), result, NULL));
  *kept = g_object_ref (result);
}

/* Once dvt_task_wait_async() has called back, the caller's mailbox expects
 * nothing more, even while the caller keeps the GAsyncResult: its context
 * must not go on spinning for a mail that will never come. */
static void
test_wait_async_expectation_ends (void)
{
  GMainContext *context = g_main_context_new ();
  DvtRuntime *runtime = dvt_runtime_new (1);
  GAsyncResult *kept = NULL;
  DvtTask *task;
  DvtMailbox *mailbox;

  g_main_context_push_thread_default (context);
  task = dvt_runtime_submit (runtime, work_seven, NULL, NULL, NULL, NULL, NULL);
  g_assert_nonnull (task);
  dvt_task_wait_async (task, NULL, on_wait_ready_keep, &kept);
  while (kept == NULL)
    g_main_context_iteration (context, TRUE);

  mailbox = dvt_core_acquire_mailbox (dvt_task_core (task), context);
  g_assert_cmpint (g_atomic_int_get (&mailbox->expected), ==, 0);
  dvt_core_release_mailbox (dvt_task_core (task), mailbox);

  g_object_unref (kept);
  g_object_unref (task);
  dvt_runtime_shutdown (runtime, TRUE, FALSE);
  g_object_unref (runtime);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
}

static void
noop_handler (void)
{
}

/* dvt_object_may_have_handlers() may answer FALSE only for an object that
 * never had a handler, whatever the probe of GLib's bit decided. */
static void
test_gobject_handler_bit (void)
{
  GObject *fresh;
  GCancellable *cancellable;
  gulong id;

  dvt_gobject_probe ();
  g_test_message ("GLib's handler bit is %s",
                  g_atomic_int_get (&dvt_gobject_handler_bit_usable) ? "trusted" : "not trusted");

  fresh = g_object_new (G_TYPE_OBJECT, NULL);
  if (g_atomic_int_get (&dvt_gobject_handler_bit_usable))
    g_assert_false (dvt_object_may_have_handlers (fresh));
  g_assert_false (dvt_object_has_handlers (fresh));

  id = g_signal_connect_swapped (fresh, "notify::nothing", G_CALLBACK (noop_handler), NULL);
  g_assert_true (dvt_object_may_have_handlers (fresh));
  g_assert_true (dvt_object_has_handlers (fresh));
  g_signal_handler_disconnect (fresh, id);
  g_assert_true (dvt_object_may_have_handlers (fresh));  /* the bit stays */
  g_assert_false (dvt_object_has_handlers (fresh));
  g_object_unref (fresh);

  cancellable = g_cancellable_new ();
  id = g_signal_connect_data (cancellable, "cancelled", G_CALLBACK (noop_handler),
                              NULL, NULL, G_CONNECT_AFTER | G_CONNECT_SWAPPED);
  g_assert_true (dvt_object_may_have_handlers (cancellable));
  g_assert_true (dvt_object_has_handlers (cancellable));
  g_signal_handler_block (cancellable, id);
  g_assert_false (dvt_object_has_handlers (cancellable));  /* only unblocked ones count */
  g_signal_handler_disconnect (cancellable, id);
  g_object_unref (cancellable);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/primitives/rate-bucket", test_rate_bucket_arithmetic);
  g_test_add_func ("/primitives/policy", test_policy_decisions);
  g_test_add_func ("/primitives/spin/ends", test_spin_ends);
  g_test_add_func ("/primitives/latch/set-and-wait", test_latch_set_and_wait);
  g_test_add_func ("/primitives/latch/wait-iterating", test_latch_wait_iterating);
  g_test_add_func ("/primitives/pool/order-and-close", test_pool_order_and_close);
  g_test_add_func ("/primitives/mailbox/order-and-close", test_mailbox_order_and_close);
  g_test_add_func ("/primitives/mailbox/wakes", test_mailbox_wakes);
  g_test_add_func ("/primitives/mailbox/table", test_mailbox_table);
  g_test_add_func ("/primitives/mailbox/batches", test_mailbox_batches);
  g_test_add_func ("/primitives/mailbox/reentrant", test_mailbox_reentrant);
  g_test_add_func ("/primitives/mailbox/own-posts", test_mailbox_own_posts);
  g_test_add_func ("/primitives/thread-names", test_thread_names);
  g_test_add_func ("/primitives/fork-gate/sections", test_fork_gate_sections);
  g_test_add_func ("/primitives/fork-gate/close-waits", test_fork_gate_close_waits);
  g_test_add_func ("/primitives/progress", test_progress);
  g_test_add_func ("/primitives/mailbox/wait-expectation-ends", test_wait_async_expectation_ends);
  g_test_add_func ("/primitives/gobject/handler-bit", test_gobject_handler_bit);

  return g_test_run ();
}
