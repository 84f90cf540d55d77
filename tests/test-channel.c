/* test-channel.c: DvtChannel, a producer on a worker feeding a consumer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include <string.h>

/* ---- producers ------------------------------------------------------------- */

typedef struct
{
  int       n;            /* values to send: 0, 1, ... n - 1; -1: until closed */
  gboolean  fail;         /* then fail with TEST_ERROR */
  int       sent;         /* atomic: sends that returned TRUE */
  int       done;         /* atomic: the producer returned */
  GError   *send_error;   /* the send that failed */
  gboolean  objects;      /* send GObjects instead of ints */
  int       n_objects;    /* atomic: objects alive */
  Gate      gate;         /* held closed by some tests before the first send */
  gboolean  use_gate;
  guint     batch;        /* > 0: send with dvt_channel_send_many, so many at once */
  guint     n_sent;       /* what the failed dvt_channel_send_many reported */
} Source;

static void
object_gone (gpointer data,
             GObject *where)
{
  g_atomic_int_add ((int *) data, -1);
}

static void
make_value (Source *s,
            GValue *value,
            int     i)
{
  if (s->objects)
    {
      GObject *object = g_object_new (G_TYPE_OBJECT, NULL);

      g_atomic_int_inc (&s->n_objects);
      g_object_weak_ref (object, object_gone, &s->n_objects);
      g_value_init (value, G_TYPE_OBJECT);
      g_value_take_object (value, object);
    }
  else
    {
      g_value_init (value, G_TYPE_INT);
      g_value_set_int (value, i);
    }
}

/* produce_ints() with dvt_channel_send_many(), s->batch values a call. */
static gboolean
produce_batches (DvtChannel    *channel,
                 GCancellable  *cancellable,
                 Source        *s,
                 GError       **error)
{
  GValue *values = g_new0 (GValue, s->batch);
  gboolean ok = TRUE;

  for (int i = 0; ok && (s->n < 0 || i < s->n); )
    {
      guint n = 0, n_sent = G_MAXUINT;

      while (n < s->batch && (s->n < 0 || i < s->n))
        make_value (s, &values[n++], i++);
      ok = dvt_channel_send_many (channel, values, n, &n_sent, cancellable, error);
      if (ok)
        {
          g_assert_cmpuint (n_sent, ==, n);
          g_atomic_int_add (&s->sent, n);
        }
      else
        {
          g_assert_cmpuint (n_sent, <, n);
          g_atomic_int_add (&s->sent, n_sent);
          s->n_sent = n_sent;
          s->send_error = g_error_copy (*error);
        }
      /* Copies were sent: ours are still to free. */
      for (guint j = 0; j < n; j++)
        g_value_unset (&values[j]);
    }
  g_free (values);

  g_atomic_int_set (&s->done, 1);
  if (ok && s->fail)
    {
      g_set_error_literal (error, TEST_ERROR, 7, "the producer broke");
      return FALSE;
    }
  return ok;
}

static gboolean
produce_ints (DvtChannel    *channel,
              GCancellable  *cancellable,
              gpointer       data,
              GError       **error)
{
  Source *s = data;

  if (s->use_gate)
    gate_wait (&s->gate);
  if (s->batch > 0)
    return produce_batches (channel, cancellable, s, error);

  for (int i = 0; s->n < 0 || i < s->n; i++)
    {
      g_auto(GValue) value = G_VALUE_INIT;

      make_value (s, &value, i);
      if (!dvt_channel_send (channel, &value, cancellable, error))
        {
          s->send_error = g_error_copy (*error);
          g_atomic_int_set (&s->done, 1);
          return FALSE;
        }
      g_atomic_int_inc (&s->sent);
    }

  g_atomic_int_set (&s->done, 1);
  if (s->fail)
    {
      g_set_error_literal (error, TEST_ERROR, 7, "the producer broke");
      return FALSE;
    }
  return TRUE;
}

static gboolean
produce_nothing (DvtChannel    *channel,
                 GCancellable  *cancellable,
                 gpointer       data,
                 GError       **error)
{
  return FALSE;
}

static void
source_init (Source *s,
             int     n)
{
  memset (s, 0, sizeof *s);
  s->n = n;
  gate_init (&s->gate);
}

static void
source_clear (Source *s)
{
  g_clear_error (&s->send_error);
  gate_clear (&s->gate);
}

static DvtChannel *
produce (DvtRuntime   *rt,
         Source       *s,
         int           capacity,
         DvtOptions   *options,
         GCancellable *cancellable)
{
  g_autoptr(GError) error = NULL;
  DvtChannel *channel = dvt_runtime_produce (rt, produce_ints, s, NULL, capacity,
                                             options, cancellable, &error);

  g_assert_no_error (error);
  g_assert_nonnull (channel);
  return channel;
}

/* Receives every value of @channel as ints 0, 1, ...; returns how many,
 * with the error that ended the stream in @error (none at its end). */
static int
receive_all (DvtChannel  *channel,
             GError     **error)
{
  g_auto(GValue) value = G_VALUE_INIT;
  int n = 0;

  while (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, error))
    {
      g_assert_cmpint (g_value_get_int (&value), ==, n);
      g_value_unset (&value);
      n++;
    }
  assert_null_value (&value);
  return n;
}

/* ---- tests ------------------------------------------------------------------- */

static void
test_basic (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(DvtStats) stats = NULL;
  Source s;

  source_init (&s, 1000);
  channel = produce (rt, &s, 4, NULL, NULL);
  g_assert_cmpuint (dvt_channel_get_capacity (channel), ==, 4);

  g_assert_cmpint (receive_all (channel, &error), ==, 1000);
  g_assert_no_error (error);

  /* The end stays the end. */
  g_assert_false (dvt_channel_receive_blocking (channel, 0, NULL, &value, &error));
  g_assert_no_error (error);
  assert_null_value (&value);
  g_value_unset (&value);
  g_assert_false (dvt_channel_try_receive (channel, &value, &error));
  g_assert_no_error (error);
  g_value_unset (&value);
  g_assert_true (dvt_channel_is_closed (channel));

  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->done, ==, 1);
  source_clear (&s);
}

static void
test_error_after_values (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  Source s;

  source_init (&s, 5);
  s.fail = TRUE;
  channel = produce (rt, &s, 16, NULL, NULL);

  /* Let the producer end first: the values still come before its error. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));
  g_assert_cmpint (receive_all (channel, &error), ==, 5);
  g_assert_error (error, TEST_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "the producer broke");
  g_clear_error (&error);

  /* Reported once; then the end of the stream. */
  g_assert_false (dvt_channel_receive_blocking (channel, 0, NULL, &value, &error));
  g_assert_no_error (error);
  source_clear (&s);
}

static void
test_back_pressure (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  const int capacity = 3;
  int received = 0;
  Source s;

  source_init (&s, 300);
  channel = produce (rt, &s, capacity, NULL, NULL);

  /* The producer fills the buffer and waits there. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.sent) == capacity, 30));
  g_usleep (20000);
  g_assert_cmpint (g_atomic_int_get (&s.sent), ==, capacity);
  g_assert_cmpuint (dvt_channel_get_n_items (channel), ==, capacity);

  while (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, &error))
    {
      g_assert_cmpint (g_value_get_int (&value), ==, received);
      g_value_unset (&value);
      received++;
      /* Never more than the capacity ahead of the consumer. */
      g_assert_cmpint (g_atomic_int_get (&s.sent), <=, received + capacity);
      if (received % 50 == 0)
        g_usleep (2000);
    }
  g_assert_no_error (error);
  g_assert_cmpint (received, ==, 300);
  source_clear (&s);
}

static void
test_close (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(DvtStats) stats = NULL;
  Source s;

  source_init (&s, -1);
  s.objects = TRUE;
  channel = produce (rt, &s, 4, NULL, NULL);

  for (int i = 0; i < 3; i++)
    {
      g_assert_true (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, &error));
      g_assert_no_error (error);
      g_assert_true (G_VALUE_HOLDS_OBJECT (&value));
      g_value_unset (&value);
    }

  dvt_channel_close (channel, "enough");
  dvt_channel_close (channel, "twice");
  g_assert_true (dvt_channel_is_closed (channel));

  /* The producer's next send failed, with the reason; it stopped. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));
  g_assert_error (s.send_error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_assert_nonnull (strstr (s.send_error->message, "enough"));

  /* The buffered values were freed; receives fail. */
  g_assert_cmpuint (dvt_channel_get_n_items (channel), ==, 0);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.n_objects) == 0, 30));
  g_assert_false (dvt_channel_receive_blocking (channel, 0, NULL, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_value_unset (&value);

  /* The producer passed the send's error on, and still ended cleanly. */
  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->done, ==, 1);
  g_assert_cmpuint (stats->error, ==, 0);
  source_clear (&s);
}

typedef struct
{
  DvtChannel *channel;
  int         n;
  gint64      sum;   /* 0 + 1 + … passes G_MAXINT once a consumer takes most values */
  gboolean    ended;
  GError     *error;
  gboolean    pending;
} AsyncConsumer;

static void
on_received (GObject      *source,
             GAsyncResult *result,
             gpointer      data)
{
  AsyncConsumer *c = data;
  g_auto(GValue) value = G_VALUE_INIT;

  g_assert_true (source == G_OBJECT (c->channel));
  c->pending = FALSE;
  if (dvt_channel_receive_finish (c->channel, result, &value, &c->error))
    {
      c->sum += g_value_get_int (&value);
      c->n++;
      c->pending = TRUE;
      dvt_channel_receive_async (c->channel, NULL, on_received, c);
    }
  else
    {
      assert_null_value (&value);
      c->ended = TRUE;
    }
}

static void
test_async (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GMainContext) context = g_main_context_new ();
  AsyncConsumer c = { 0 };
  Source s;

  g_main_context_push_thread_default (context);
  source_init (&s, 500);
  s.fail = TRUE;
  c.channel = produce (rt, &s, 2, NULL, NULL);
  c.pending = TRUE;
  dvt_channel_receive_async (c.channel, NULL, on_received, &c);
  g_assert_true (ITERATE_UNTIL (context, c.ended, 30));
  g_assert_cmpint (c.n, ==, 500);
  g_assert_cmpint (c.sum, ==, 499 * 500 / 2);
  g_assert_error (c.error, TEST_ERROR, 7);
  g_clear_error (&c.error);

  /* After the error: the end, through the async face too. */
  c.ended = FALSE;
  dvt_channel_receive_async (c.channel, NULL, on_received, &c);
  g_assert_true (ITERATE_UNTIL (context, c.ended, 30));
  g_assert_no_error (c.error);

  g_object_unref (c.channel);
  g_main_context_pop_thread_default (context);
  source_clear (&s);
}

static void
test_try_receive (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  int n = 0;
  Source s;

  source_init (&s, 10);
  s.use_gate = TRUE;
  channel = produce (rt, &s, 4, NULL, NULL);

  g_assert_false (dvt_channel_try_receive (channel, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
  g_clear_error (&error);
  assert_null_value (&value);
  g_value_unset (&value);

  gate_open (&s.gate);
  for (;;)
    {
      if (dvt_channel_try_receive (channel, &value, &error))
        {
          g_assert_cmpint (g_value_get_int (&value), ==, n);
          g_value_unset (&value);
          n++;
          continue;
        }
      g_value_unset (&value);
      if (error == NULL)
        break;      /* the end */
      g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
      g_clear_error (&error);
      g_usleep (100);
    }
  g_assert_cmpint (n, ==, 10);
  source_clear (&s);
}

static void
test_cancel_producer (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  Source s;

  source_init (&s, -1);
  channel = produce (rt, &s, 2, NULL, cancellable);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.sent) == 2, 30));
  g_cancellable_cancel (cancellable);

  /* The values sent, then the cancellation. */
  g_assert_cmpint (receive_all (channel, &error), >=, 2);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));
  source_clear (&s);
}

static void
test_timeout_option (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  Source s;

  /* A producer that sends 3 values and then waits (for a consumer that
   * does not come) outlives its timeout. */
  source_init (&s, -1);
  dvt_options_set_timeout (options, 0.2);
  channel = produce (rt, &s, 3, options, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));

  for (int i = 0; i < 3; i++)
    {
      g_assert_true (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, &error));
      g_assert_cmpint (g_value_get_int (&value), ==, i);
      g_value_unset (&value);
    }
  g_assert_false (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  source_clear (&s);
}

typedef struct
{
  DvtChannel *channel;
  GError     *error;
  gboolean    ok;
} Receiver;

static gpointer
receiver_main (gpointer data)
{
  Receiver *r = data;
  g_auto(GValue) value = G_VALUE_INIT;

  r->ok = dvt_channel_receive_blocking (r->channel, 0, NULL, &value, &r->error);
  return NULL;
}

static void
test_shutdown (void)
{
  DvtRuntime *rt = dvt_runtime_new (2);
  g_autoptr(DvtChannel) full = NULL;
  g_autoptr(DvtChannel) idle = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  Receiver r = { 0 };
  GThread *thread;
  Source a, b;

  /* One producer blocked in a send with a full buffer of objects... */
  source_init (&a, -1);
  a.objects = TRUE;
  full = produce (rt, &a, 3, NULL, NULL);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&a.sent) == 3, 30));

  /* ...and a consumer blocked on a producer that has sent nothing yet. */
  source_init (&b, 10);
  b.use_gate = TRUE;
  idle = produce (rt, &b, 3, NULL, NULL);
  r.channel = idle;
  thread = g_thread_new ("receiver", receiver_main, &r);
  g_usleep (20000);

  /* A draining shutdown is not held up by the blocked producer. */
  dvt_runtime_shutdown (rt, FALSE, FALSE);
  g_thread_join (thread);
  g_assert_false (r.ok);
  g_assert_error (r.error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&r.error);

  gate_open (&b.gate);
  dvt_runtime_shutdown (rt, TRUE, FALSE);

  /* The producers were told; the buffered values are freed. */
  g_assert_true (g_atomic_int_get (&a.done));
  g_assert_error (a.send_error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_assert_true (g_atomic_int_get (&b.done));
  g_assert_error (b.send_error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_assert_cmpint (g_atomic_int_get (&a.n_objects), ==, 0);
  g_assert_cmpuint (dvt_channel_get_n_items (full), ==, 0);

  g_assert_false (dvt_channel_receive_blocking (full, 0, NULL, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_value_unset (&value);

  /* Later calls fail with DVT_ERROR_CLOSED. */
  g_assert_null (dvt_runtime_produce (rt, produce_ints, &a, NULL, 1, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);

  g_object_unref (rt);
  source_clear (&a);
  source_clear (&b);
}

static void
test_close_race (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (3);
  int rounds = is_valgrind () ? 20 : 300;

  for (int round = 0; round < rounds; round++)
    {
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      DvtChannel *channel;
      Receiver r = { 0 };
      GThread *thread;
      Source s;
      int k = g_random_int_range (0, 5);

      source_init (&s, -1);
      s.objects = TRUE;
      channel = produce (rt, &s, 1 + round % 4, NULL, NULL);
      for (int i = 0; i < k; i++)
        {
          g_assert_true (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, &error));
          g_value_unset (&value);
        }

      /* A receive in another thread races the close. */
      r.channel = channel;
      thread = g_thread_new ("receiver", receiver_main, &r);
      if (round % 2)
        g_thread_yield ();
      dvt_channel_close (channel, NULL);
      g_thread_join (thread);
      g_assert_true (r.ok || g_error_matches (r.error, DVT_ERROR, DVT_ERROR_CLOSED));
      g_clear_error (&r.error);

      g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));
      g_object_unref (channel);
      g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
      g_assert_cmpint (g_atomic_int_get (&s.n_objects), ==, 0);
      source_clear (&s);
    }
}

/* Many values, two blocking consumers and an async one on a loop thread,
 * sharing one channel: each value is received exactly once. */
typedef struct
{
  DvtChannel *channel;
  gint64      sum;   /* atomic adds */
  int         n;
  GMutex      lock;
} Shared;

static gpointer
stress_consumer_main (gpointer data)
{
  Shared *sh = data;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  gint64 sum = 0;
  int n = 0;

  while (dvt_channel_receive_blocking (sh->channel, 60 * slow, NULL, &value, &error))
    {
      sum += g_value_get_int (&value);
      n++;
      g_value_unset (&value);
    }
  g_assert_no_error (error);
  g_mutex_lock (&sh->lock);
  sh->sum += sum;
  sh->n += n;
  g_mutex_unlock (&sh->lock);
  return NULL;
}

static void
test_stress (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GMainContext) context = g_main_context_new ();
  int n = is_valgrind () ? 5000 : 200000;
  AsyncConsumer c = { 0 };
  GThread *threads[2];
  Shared sh = { 0 };
  Source s;

  g_mutex_init (&sh.lock);
  source_init (&s, n);
  sh.channel = produce (rt, &s, 8, NULL, NULL);
  for (int i = 0; i < 2; i++)
    threads[i] = g_thread_new ("consumer", stress_consumer_main, &sh);

  g_main_context_push_thread_default (context);
  c.channel = sh.channel;
  dvt_channel_receive_async (c.channel, NULL, on_received, &c);
  g_assert_true (ITERATE_UNTIL (context, c.ended, 120));
  g_main_context_pop_thread_default (context);
  g_assert_no_error (c.error);

  for (int i = 0; i < 2; i++)
    g_thread_join (threads[i]);

  g_assert_cmpint (sh.n + c.n, ==, n);
  g_assert_cmpint (sh.sum + c.sum, ==, (gint64) n * (n - 1) / 2);
  g_object_unref (sh.channel);
  g_mutex_clear (&sh.lock);
  source_clear (&s);
}

/* Receives racing cancellations: a value handed to a receive cancelled
 * at the same instant is returned or left for the next receive, never
 * lost nor delivered twice. */
typedef struct
{
  GMutex        lock;
  GCancellable *current;   /* the consumer's, under lock */
  int           stop;      /* atomic */
} Canceller;

static gpointer
canceller_main (gpointer data)
{
  Canceller *k = data;

  while (!g_atomic_int_get (&k->stop))
    {
      GCancellable *c;

      g_mutex_lock (&k->lock);
      c = k->current != NULL ? g_object_ref (k->current) : NULL;
      g_mutex_unlock (&k->lock);
      if (c != NULL)
        {
          g_cancellable_cancel (c);
          g_object_unref (c);
        }
      g_usleep (g_random_int_range (0, 50));
    }
  return NULL;
}

static void
test_cancel_race (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  int n = is_valgrind () ? 2000 : 30000;
  g_autoptr(DvtChannel) channel = NULL;
  Canceller k = { 0 };
  GThread *thread;
  gint64 sum = 0;
  int received = 0, cancelled = 0;
  Source s;

  g_mutex_init (&k.lock);
  source_init (&s, n);
  channel = produce (rt, &s, 4, NULL, NULL);
  thread = g_thread_new ("canceller", canceller_main, &k);

  for (;;)
    {
      g_autoptr(GCancellable) c = g_cancellable_new ();
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;

      g_mutex_lock (&k.lock);
      g_set_object (&k.current, c);
      g_mutex_unlock (&k.lock);

      if (dvt_channel_receive_blocking (channel, 30 * slow, c, &value, &error))
        {
          g_assert_cmpint (g_value_get_int (&value), ==, received);
          sum += g_value_get_int (&value);
          received++;
        }
      else if (error == NULL)
        break;
      else
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          cancelled++;
        }
    }

  g_atomic_int_set (&k.stop, 1);
  g_thread_join (thread);
  g_clear_object (&k.current);
  g_mutex_clear (&k.lock);
  g_assert_cmpint (received, ==, n);
  g_assert_cmpint (sum, ==, (gint64) n * (n - 1) / 2);
  g_test_message ("%d receives cancelled", cancelled);
  source_clear (&s);
}

/* ---- many values a call ------------------------------------------------------ */

static void
test_send_many (void)
{
  /* Batches smaller and larger than the capacity, and one of everything. */
  const guint batches[] = { 3, 7, 1000 };

  for (guint b = 0; b < G_N_ELEMENTS (batches); b++)
    {
      g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
      g_autoptr(DvtChannel) channel = NULL;
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      const int capacity = 4;
      int received = 0;
      Source s;

      source_init (&s, 1000);
      s.batch = batches[b];
      channel = produce (rt, &s, capacity, NULL, NULL);

      /* A batch larger than the capacity waits for room value by value. */
      g_assert_true (POLL_UNTIL (dvt_channel_get_n_items (channel) == (guint) capacity, 30));
      g_usleep (20000);
      g_assert_cmpuint (dvt_channel_get_n_items (channel), ==, capacity);

      while (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, &error))
        {
          g_assert_cmpint (g_value_get_int (&value), ==, received);
          g_value_unset (&value);
          received++;
          /* In order, and never more than the capacity ahead. */
          g_assert_cmpuint (dvt_channel_get_n_items (channel), <=, capacity);
          g_assert_cmpint (g_atomic_int_get (&s.sent), <=, received + capacity);
          if (received % 97 == 0)
            g_usleep (1000);
        }
      g_assert_no_error (error);
      g_assert_cmpint (received, ==, 1000);
      g_assert_cmpint (g_atomic_int_get (&s.sent), ==, 1000);
      source_clear (&s);
    }
}

static void
test_send_many_close (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(DvtStats) stats = NULL;
  Source s;

  /* Objects, so that a value copied into the channel and never received
   * shows up as a leak. */
  source_init (&s, -1);
  s.objects = TRUE;
  s.batch = 10;
  channel = produce (rt, &s, 4, NULL, NULL);
  for (int i = 0; i < 3; i++)
    {
      g_assert_true (dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, &error));
      g_assert_no_error (error);
      g_value_unset (&value);
    }
  dvt_channel_close (channel, "enough");

  /* The send in progress failed part-way, with the reason. */
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));
  g_assert_error (s.send_error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_assert_nonnull (strstr (s.send_error->message, "enough"));
  g_assert_cmpuint (s.n_sent, <, s.batch);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.n_objects) == 0, 30));

  g_assert_true (dvt_runtime_wait_idle (rt, 30 * slow, NULL, NULL));
  stats = dvt_runtime_get_stats (rt);
  g_assert_cmpuint (stats->done, ==, 1);
  g_assert_cmpuint (stats->error, ==, 0);
  source_clear (&s);
}

static void
test_send_many_cancel (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  Source s;

  source_init (&s, -1);
  s.batch = 5;
  channel = produce (rt, &s, 2, NULL, cancellable);

  /* The first batch fills the channel and waits for room for its third
   * value: nothing is received, so exactly two were sent when it fails. */
  g_assert_true (POLL_UNTIL (dvt_channel_get_n_items (channel) == 2, 30));
  g_cancellable_cancel (cancellable);
  g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));
  g_assert_error (s.send_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (s.n_sent, ==, 2);

  /* The values sent, then the cancellation. */
  g_assert_cmpint (receive_all (channel, &error), ==, 2);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  source_clear (&s);
}

/* Takes values with dvt_channel_try_receive_many (@max each) until the
 * stream ends, waiting with a blocking receive when none is buffered;
 * checks they are @first, @first + 1, ... and returns how many, with the
 * producer's error in @error. */
static int
receive_all_many (DvtChannel  *channel,
                  guint        max,
                  int          first,
                  GError     **error)
{
  int n = first;

  for (;;)
    {
      g_autoptr(GArray) values = NULL;
      g_auto(GValue) value = G_VALUE_INIT;
      GError *local = NULL;

      if (dvt_channel_try_receive_many (channel, max, &values, &local))
        {
          g_assert_no_error (local);
          g_assert_cmpuint (values->len, >=, 1);
          if (max > 0)
            g_assert_cmpuint (values->len, <=, max);
          for (guint i = 0; i < values->len; i++)
            g_assert_cmpint (g_value_get_int (&g_array_index (values, GValue, i)), ==, n++);
          continue;
        }
      g_assert_null (values);
      if (local == NULL)
        return n - first;      /* the end */
      if (!g_error_matches (local, DVT_ERROR, DVT_ERROR_EMPTY))
        {
          g_propagate_error (error, local);
          return n - first;
        }
      g_clear_error (&local);
      if (!dvt_channel_receive_blocking (channel, 30 * slow, NULL, &value, error))
        return n - first;
      g_assert_cmpint (g_value_get_int (&value), ==, n++);
    }
}

static void
test_try_receive_many (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  g_autoptr(GError) error = NULL;

  /* Nothing buffered yet: DVT_ERROR_EMPTY, and no array. */
  {
    g_autoptr(DvtChannel) channel = NULL;
    g_autoptr(GArray) values = NULL;
    Source s;

    source_init (&s, 10);
    s.use_gate = TRUE;
    channel = produce (rt, &s, 16, NULL, NULL);
    g_assert_false (dvt_channel_try_receive_many (channel, 0, &values, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
    g_assert_null (values);
    g_clear_error (&error);

    /* All ten buffered: three, then the other seven, then the end. */
    gate_open (&s.gate);
    g_assert_true (POLL_UNTIL (g_atomic_int_get (&s.done), 30));
    g_assert_true (dvt_channel_try_receive_many (channel, 3, &values, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (values->len, ==, 3);
    for (guint i = 0; i < 3; i++)
      g_assert_cmpint (g_value_get_int (&g_array_index (values, GValue, i)), ==, i);
    g_clear_pointer (&values, g_array_unref);
    g_assert_true (dvt_channel_try_receive_many (channel, 0, &values, &error));
    g_assert_cmpuint (values->len, ==, 7);
    for (guint i = 0; i < 7; i++)
      g_assert_cmpint (g_value_get_int (&g_array_index (values, GValue, i)), ==, 3 + i);
    g_clear_pointer (&values, g_array_unref);
    g_assert_cmpint (receive_all_many (channel, 0, 10, &error), ==, 0);
    g_assert_no_error (error);
    source_clear (&s);
  }

  /* Batches, values thrown away, then the producer's error after the
   * last value. */
  for (guint max = 0; max < 3; max++)
    {
      g_autoptr(DvtChannel) channel = NULL;
      Source s;

      source_init (&s, 500);
      s.fail = TRUE;
      s.batch = 6;
      channel = produce (rt, &s, 8, NULL, NULL);
      g_assert_true (POLL_UNTIL (dvt_channel_get_n_items (channel) > 0, 30));
      g_assert_true (dvt_channel_try_receive_many (channel, 1, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpint (receive_all_many (channel, max, 1, &error), ==, 499);
      g_assert_error (error, TEST_ERROR, 7);
      g_clear_error (&error);
      source_clear (&s);
    }
}

/* Batches in, batches out, several consumers: each value exactly once. */
static gpointer
many_consumer_main (gpointer data)
{
  Shared *sh = data;
  gint64 sum = 0;
  int n = 0;
  guint max = g_random_int_range (0, 20);

  for (;;)
    {
      g_autoptr(GArray) values = NULL;
      g_autoptr(GError) error = NULL;
      g_auto(GValue) value = G_VALUE_INIT;

      if (dvt_channel_try_receive_many (sh->channel, max, &values, &error))
        {
          for (guint i = 0; i < values->len; i++)
            sum += g_value_get_int (&g_array_index (values, GValue, i));
          n += values->len;
          continue;
        }
      if (error == NULL)
        break;      /* the end */
      g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
      g_clear_error (&error);
      if (!dvt_channel_receive_blocking (sh->channel, 60 * slow, NULL, &value, &error))
        {
          g_assert_no_error (error);
          break;
        }
      sum += g_value_get_int (&value);
      n++;
    }
  g_mutex_lock (&sh->lock);
  sh->sum += sum;
  sh->n += n;
  g_mutex_unlock (&sh->lock);
  return NULL;
}

static void
test_many_stress (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (2);
  int n = is_valgrind () ? 5000 : 200000;
  GThread *threads[3];
  Shared sh = { 0 };
  Source s;

  g_mutex_init (&sh.lock);
  source_init (&s, n);
  s.batch = 13;
  sh.channel = produce (rt, &s, 32, NULL, NULL);
  for (int i = 0; i < 3; i++)
    threads[i] = g_thread_new ("consumer", many_consumer_main, &sh);
  for (int i = 0; i < 3; i++)
    g_thread_join (threads[i]);

  g_assert_cmpint (sh.n, ==, n);
  g_assert_cmpint (sh.sum, ==, (gint64) n * (n - 1) / 2);
  g_object_unref (sh.channel);
  g_mutex_clear (&sh.lock);
  source_clear (&s);
}

/* A consumer that is itself a worker of a one-worker runtime: its wait
 * lets the runtime start another worker for the producer. */
static void
consume_on_worker (DvtTask       *task,
                   GCancellable  *cancellable,
                   gpointer       data,
                   GError       **error)
{
  DvtRuntime *rt = data;
  g_autoptr(DvtChannel) channel = NULL;
  Source s;
  int n;

  source_init (&s, 100);
  channel = produce (rt, &s, 2, NULL, NULL);
  n = receive_all (channel, error);
  source_clear (&s);
  if (*error == NULL)
    dvt_task_return_int (task, n);
}

static void
test_consumer_on_worker (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_runtime_to_thread_blocking (rt, consume_on_worker, rt, NULL, NULL, NULL,
                                                 &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 100);
}

static void
loop_receive (DvtTask       *task,
              GCancellable  *cancellable,
              gpointer       data,
              GError       **error)
{
  g_auto(GValue) value = G_VALUE_INIT;
  GError *local = NULL;

  g_assert_false (dvt_channel_receive_blocking (data, 0, NULL, &value, &local));
  assert_null_value (&value);
  dvt_task_return_error (task, local);
}

static void
test_bad_input (void)
{
  g_autoptr(DvtTestRuntime) rt = dvt_runtime_new (1);
  g_autoptr(DvtChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  Source s;

  source_init (&s, 3);
  g_assert_null (dvt_runtime_produce (rt, produce_ints, &s, NULL, 0, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (dvt_runtime_produce (rt, produce_ints, &s, NULL, -5, NULL, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* FALSE without an error: what a binding that refused to call the
   * producer returns. */
  {
    g_autoptr(DvtChannel) refused = dvt_runtime_produce (rt, produce_nothing, NULL, NULL, 1,
                                                         NULL, NULL, &error);
    g_auto(GValue) value = G_VALUE_INIT;

    g_assert_false (dvt_channel_receive_blocking (refused, 30 * slow, NULL, &value, &error));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_NOT_COMPLETED);
    g_clear_error (&error);
  }

  /* The calls that take or give many values. */
  s.use_gate = TRUE;
  channel = produce (rt, &s, 1, NULL, NULL);
  {
    GValue values[2] = { G_VALUE_INIT, G_VALUE_INIT };
    g_autoptr(GArray) taken = NULL;
    guint n_sent = 99;

    g_value_init (&values[0], G_TYPE_INT);
    EXPECT_ASSERTION (g_assert_false (dvt_channel_send_many (channel, NULL, 2, &n_sent,
                                                             NULL, &error)));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
    g_assert_cmpuint (n_sent, ==, 0);
    g_clear_error (&error);
    /* An unset value anywhere: nothing is sent. */
    EXPECT_ASSERTION (g_assert_false (dvt_channel_send_many (channel, values, 2, &n_sent,
                                                             NULL, &error)));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    EXPECT_ASSERTION (g_assert_false (dvt_channel_send_many (NULL, values, 1, NULL,
                                                             NULL, &error)));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    EXPECT_ASSERTION (g_assert_false (dvt_channel_send_many (channel, values, 1, NULL,
                                                             (GCancellable *) channel,
                                                             &error)));
    g_clear_error (&error);
    g_assert_cmpuint (dvt_channel_get_n_items (channel), ==, 0);
    /* Nothing to send is no error. */
    g_assert_true (dvt_channel_send_many (channel, NULL, 0, &n_sent, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (n_sent, ==, 0);
    EXPECT_ASSERTION (g_assert_false (dvt_channel_try_receive_many (NULL, 0, &taken, &error)));
    g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
    g_assert_null (taken);
    g_clear_error (&error);
    g_value_unset (&values[0]);
  }
  gate_open (&s.gate);
  g_assert_cmpint (receive_all (channel, &error), ==, 3);
  g_assert_no_error (error);
  g_clear_object (&channel);
  source_clear (&s);
  source_init (&s, 3);

  /* A blocking receive on the runtime's loop thread fails at once. */
  s.use_gate = TRUE;
  channel = produce (rt, &s, 1, NULL, NULL);
  g_assert_false (dvt_runtime_run_blocking (rt, loop_receive, channel, NULL, NULL, NULL,
                                            NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_WOULD_DEADLOCK);
  gate_open (&s.gate);
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  source_clear (&s);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/channel/basic", test_basic);
  g_test_add_func ("/channel/error-after-values", test_error_after_values);
  g_test_add_func ("/channel/back-pressure", test_back_pressure);
  g_test_add_func ("/channel/close", test_close);
  g_test_add_func ("/channel/async", test_async);
  g_test_add_func ("/channel/try-receive", test_try_receive);
  g_test_add_func ("/channel/cancel-producer", test_cancel_producer);
  g_test_add_func ("/channel/timeout-option", test_timeout_option);
  g_test_add_func ("/channel/shutdown", test_shutdown);
  g_test_add_func ("/channel/close-race", test_close_race);
  g_test_add_func ("/channel/stress", test_stress);
  g_test_add_func ("/channel/cancel-race", test_cancel_race);
  g_test_add_func ("/channel/consumer-on-worker", test_consumer_on_worker);
  g_test_add_func ("/channel/send-many", test_send_many);
  g_test_add_func ("/channel/send-many-close", test_send_many_close);
  g_test_add_func ("/channel/send-many-cancel", test_send_many_cancel);
  g_test_add_func ("/channel/try-receive-many", test_try_receive_many);
  g_test_add_func ("/channel/many-stress", test_many_stress);
  g_test_add_func ("/channel/bad-input", test_bad_input);

  return g_test_run ();
}
