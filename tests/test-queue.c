/* test-queue.c: DvtQueue, from threads and from main loops
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"

#include <string.h>

#define ITEM(i) GUINT_TO_POINTER (i)

/* ---- helpers ---------------------------------------------------------------- */

static int n_destroyed;  /* atomic */

static void
count_destroy (gpointer data)
{
  g_atomic_int_inc (&n_destroyed);
}

static guint
pop_uint (DvtQueue *queue)
{
  g_autoptr(GError) error = NULL;
  gpointer p = dvt_queue_try_pop_pointer (queue, &error);

  g_assert_no_error (error);
  return GPOINTER_TO_UINT (p);
}

static void
push_uint (DvtQueue *queue,
           guint     i,
           int       priority)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_queue_try_push_pointer (queue, ITEM (i), NULL, priority, &error));
  g_assert_no_error (error);
}

/* A thread blocked in a pop; its result is read after the join. */
typedef struct
{
  DvtQueue     *queue;
  GCancellable *cancellable;
  double        timeout;
  gpointer      item;
  GError       *error;
} Popper;

static gpointer
popper_main (gpointer data)
{
  Popper *p = data;

  p->item = dvt_queue_pop_pointer_blocking (p->queue, p->timeout, p->cancellable, &p->error);
  return NULL;
}

typedef struct
{
  DvtQueue     *queue;
  GCancellable *cancellable;
  guint         item;
  gboolean      ok;
  GError       *error;
} Pusher;

static gpointer
pusher_main (gpointer data)
{
  Pusher *p = data;

  p->ok = dvt_queue_push_pointer_blocking (p->queue, ITEM (p->item), count_destroy, 0, 0,
                                           p->cancellable, &p->error);
  return NULL;
}

/* ---- orders --------------------------------------------------------------------- */

static void
test_order_fifo (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);

  /* More than the first allocation, wrapped around the ring. */
  for (guint round = 0; round < 3; round++)
    {
      for (guint i = 1; i <= 100; i++)
        push_uint (queue, i, (int) (i % 3));
      for (guint i = 1; i <= 50; i++)
        g_assert_cmpuint (pop_uint (queue), ==, i);
      for (guint i = 101; i <= 130; i++)
        push_uint (queue, i, 0);
      for (guint i = 51; i <= 130; i++)
        g_assert_cmpuint (pop_uint (queue), ==, i);
      g_assert_cmpuint (dvt_queue_get_n_items (queue), ==, 0);
    }
}

static void
test_order_lifo (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_LIFO, 0);

  for (guint i = 1; i <= 40; i++)
    push_uint (queue, i, (int) i);
  for (guint i = 40; i > 20; i--)
    g_assert_cmpuint (pop_uint (queue), ==, i);
  push_uint (queue, 100, 0);
  g_assert_cmpuint (pop_uint (queue), ==, 100);
  for (guint i = 20; i >= 1; i--)
    g_assert_cmpuint (pop_uint (queue), ==, i);
}

static void
test_order_priority (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_PRIORITY, 0);
  guint last_priority = 0, last_seq = 0;
  GRand *rand = g_rand_new_with_seed (12);

  /* Item i has priority i / 1000 of a random draw: many equal priorities,
   * which must come out in the order they went in. */
  for (guint i = 1; i <= 3000; i++)
    {
      guint priority = (guint) g_rand_int_range (rand, 0, 7);

      push_uint (queue, priority * 100000 + i, (int) priority - 3);
    }
  for (guint i = 0; i < 3000; i++)
    {
      guint item = pop_uint (queue);
      guint priority = item / 100000, seq = item % 100000;

      g_assert_cmpuint (priority, >=, last_priority);
      if (priority == last_priority)
        g_assert_cmpuint (seq, >, last_seq);
      last_priority = priority;
      last_seq = seq;
    }
  g_rand_free (rand);

  /* Negative and extreme priorities. */
  push_uint (queue, 1, G_MAXINT);
  push_uint (queue, 2, 0);
  push_uint (queue, 3, G_MININT);
  push_uint (queue, 4, 0);
  g_assert_cmpuint (pop_uint (queue), ==, 3);
  g_assert_cmpuint (pop_uint (queue), ==, 2);
  g_assert_cmpuint (pop_uint (queue), ==, 4);
  g_assert_cmpuint (pop_uint (queue), ==, 1);
}

/* ---- properties ----------------------------------------------------------------- */

static void
on_notify (GObject    *object,
           GParamSpec *pspec,
           gpointer    user_data)
{
  GString *names = user_data;

  g_string_append_printf (names, "%s;", pspec->name);
}

static void
test_properties (void)
{
  g_autoptr(DvtQueue) queue = NULL;
  g_autoptr(GString) notified = g_string_new (NULL);
  DvtQueueOrder order;
  guint max_size, n_items;
  gboolean closed;

  queue = g_object_new (DVT_TYPE_QUEUE, "order", DVT_QUEUE_ORDER_LIFO, "max-size", 5, NULL);
  g_assert_cmpint (dvt_queue_get_order (queue), ==, DVT_QUEUE_ORDER_LIFO);
  g_assert_cmpuint (dvt_queue_get_max_size (queue), ==, 5);
  g_signal_connect (queue, "notify", G_CALLBACK (on_notify), notified);

  push_uint (queue, 1, 0);
  push_uint (queue, 2, 0);
  (void) pop_uint (queue);
  g_object_get (queue, "order", &order, "max-size", &max_size, "n-items", &n_items,
                "closed", &closed, NULL);
  g_assert_cmpint (order, ==, DVT_QUEUE_ORDER_LIFO);
  g_assert_cmpuint (max_size, ==, 5);
  g_assert_cmpuint (n_items, ==, 1);
  g_assert_false (closed);
  /* Pushes and pops never notify. */
  g_assert_cmpstr (notified->str, ==, "");

  dvt_queue_close (queue);
  g_assert_true (dvt_queue_is_closed (queue));
  g_assert_cmpstr (notified->str, ==, "closed;");
  dvt_queue_close (queue);
  g_assert_cmpstr (notified->str, ==, "closed;");
  g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (queue), ==, 0);
  g_assert_cmpuint (dvt_queue_get_n_waiting_poppers (queue), ==, 0);
}

/* ---- bounds and back-pressure ------------------------------------------------------ */

static void
test_back_pressure (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 2);
  Pusher pushers[3];
  GThread *threads[3];
  g_autoptr(GError) error = NULL;

  push_uint (queue, 1, 0);
  push_uint (queue, 2, 0);
  g_assert_false (dvt_queue_try_push_pointer (queue, ITEM (9), NULL, 0, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_FULL);
  g_clear_error (&error);

  /* Three blocked pushers, started one after the other: they get in in
   * that order, one for each pop. */
  for (guint i = 0; i < 3; i++)
    {
      pushers[i] = (Pusher) { queue, NULL, 3 + i, FALSE, NULL };
      threads[i] = g_thread_new ("pusher", pusher_main, &pushers[i]);
      g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_pushers (queue) == i + 1, 30));
    }
  g_assert_cmpuint (dvt_queue_get_n_items (queue), ==, 2);

  for (guint i = 1; i <= 5; i++)
    {
      g_autoptr(GError) pop_error = NULL;
      gpointer item = dvt_queue_pop_pointer_blocking (queue, 0, NULL, &pop_error);

      g_assert_no_error (pop_error);
      g_assert_cmpuint (GPOINTER_TO_UINT (item), ==, i);
      /* Never more than the bound. */
      g_assert_cmpuint (dvt_queue_get_n_items (queue), <=, 2);
    }
  for (guint i = 0; i < 3; i++)
    {
      g_thread_join (threads[i]);
      g_assert_no_error (pushers[i].error);
      g_assert_true (pushers[i].ok);
    }
  g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (queue), ==, 0);
}

/* An async push waits in line with blocking ones. */
static void
test_back_pressure_async (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  Pusher blocking = { queue, NULL, 2, FALSE, NULL };
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  GThread *thread;
  Ready r;

  ready_init (&r);
  push_uint (queue, 1, 0);
  thread = g_thread_new ("pusher", pusher_main, &blocking);
  g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_pushers (queue) == 1, 30));

  g_value_init (&value, G_TYPE_STRING);
  g_value_set_string (&value, "three");
  dvt_queue_push_async (queue, &value, 0, NULL, on_ready, &r);
  g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (queue), ==, 2);

  g_assert_cmpuint (pop_uint (queue), ==, 1);
  g_thread_join (thread);
  g_assert_true (blocking.ok);
  g_assert_cmpint (r.n, ==, 0);

  g_assert_cmpuint (pop_uint (queue), ==, 2);
  ready_wait (&r);
  g_assert_true (dvt_queue_push_finish (queue, r.result, &error));
  g_assert_no_error (error);

  g_value_unset (&value);
  g_assert_true (dvt_queue_try_pop (queue, &value, &error));
  g_assert_cmpstr (g_value_get_string (&value), ==, "three");
  ready_clear (&r);
}

/* ---- non-blocking calls -------------------------------------------------------------- */

static void
test_try (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  g_auto(GValue) in = G_VALUE_INIT;
  g_auto(GValue) out = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_false (dvt_queue_try_pop (queue, &out, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
  /* A failed pop still gives bindings a value to convert. */
  g_assert_true (G_VALUE_HOLDS_POINTER (&out));
  g_value_unset (&out);
  g_clear_error (&error);
  g_assert_null (dvt_queue_try_pop_pointer (queue, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_EMPTY);
  g_clear_error (&error);

  g_value_init (&in, G_TYPE_INT);
  g_value_set_int (&in, 42);
  g_assert_true (dvt_queue_try_push (queue, &in, 0, &error));
  g_assert_no_error (error);
  g_assert_false (dvt_queue_try_push (queue, &in, 0, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_FULL);
  g_clear_error (&error);

  g_assert_true (dvt_queue_try_pop (queue, &out, &error));
  g_assert_cmpint (g_value_get_int (&out), ==, 42);

  dvt_queue_close (queue);
  g_assert_false (dvt_queue_try_push (queue, &in, 0, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_value_unset (&out);
  g_assert_false (dvt_queue_try_pop (queue, &out, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
}

/* ---- close --------------------------------------------------------------------------- */

static void
test_close_wakes_waiters (void)
{
  g_autoptr(DvtQueue) empty = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  g_autoptr(DvtQueue) full = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  g_autoptr(GError) error = NULL;
  Popper poppers[2];
  Pusher pusher = { full, NULL, 7, FALSE, NULL };
  GThread *threads[3];
  Ready pop_ready, push_ready;
  gpointer data = g_strdup ("stays the caller's");

  ready_init (&pop_ready);
  ready_init (&push_ready);
  n_destroyed = 0;

  for (guint i = 0; i < 2; i++)
    {
      poppers[i] = (Popper) { empty, NULL, 0, NULL, NULL };
      threads[i] = g_thread_new ("popper", popper_main, &poppers[i]);
    }
  dvt_queue_pop_async (empty, NULL, on_ready, &pop_ready);
  g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_poppers (empty) == 3, 30));

  push_uint (full, 1, 0);
  threads[2] = g_thread_new ("pusher", pusher_main, &pusher);
  g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_pushers (full) == 1, 30));
  dvt_queue_push_pointer_async (full, data, g_free, 0, NULL, on_ready, &push_ready);
  g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (full), ==, 2);

  dvt_queue_close (empty);
  dvt_queue_close (full);

  for (guint i = 0; i < 3; i++)
    g_thread_join (threads[i]);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_error (poppers[i].error, DVT_ERROR, DVT_ERROR_CLOSED);
      g_assert_null (poppers[i].item);
      g_clear_error (&poppers[i].error);
    }
  g_assert_false (pusher.ok);
  g_assert_error (pusher.error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&pusher.error);

  ready_wait (&pop_ready);
  g_assert_null (dvt_queue_pop_pointer_finish (empty, pop_ready.result, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  ready_wait (&push_ready);
  g_assert_false (dvt_queue_push_finish (full, push_ready.result, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  ready_clear (&pop_ready);
  ready_clear (&push_ready);

  /* The pushes that failed kept their items: no destroy function ran. */
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 0);
  g_free (data);

  /* The full queue drains, then fails. */
  g_assert_cmpuint (pop_uint (full), ==, 1);
  g_assert_null (dvt_queue_pop_pointer_blocking (full, 0, NULL, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_false (dvt_queue_push_pointer_blocking (full, ITEM (3), count_destroy, 0, 0, NULL,
                                                   &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 0);
}

/* ---- timeouts ---------------------------------------------------------------------- */

static void
test_timeout (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;

  g_assert_false (dvt_queue_pop_blocking (queue, 0.02, NULL, &value, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_true (G_VALUE_HOLDS_POINTER (&value));
  g_assert_cmpuint (dvt_queue_get_n_waiting_poppers (queue), ==, 0);

  push_uint (queue, 1, 0);
  n_destroyed = 0;
  g_assert_false (dvt_queue_push_pointer_blocking (queue, ITEM (2), count_destroy, 0, 0.02,
                                                   NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (queue), ==, 0);
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 0);

  /* The queue is as it was. */
  g_assert_cmpuint (pop_uint (queue), ==, 1);
  g_assert_cmpuint (dvt_queue_get_n_items (queue), ==, 0);
}

/* ---- cancellation ------------------------------------------------------------------- */

static void
test_cancel_blocking (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  Popper popper = { queue, cancellable, 0, NULL, NULL };
  Pusher pusher;
  GThread *thread;

  thread = g_thread_new ("popper", popper_main, &popper);
  g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_poppers (queue) == 1, 30));
  g_cancellable_cancel (cancellable);
  g_thread_join (thread);
  g_assert_error (popper.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&popper.error);
  g_assert_cmpuint (dvt_queue_get_n_waiting_poppers (queue), ==, 0);

  /* Cancelled already: fails at once, even with an item there. */
  push_uint (queue, 1, 0);
  g_assert_null (dvt_queue_pop_pointer_blocking (queue, 0, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* A push waiting for room, cancelled, keeps its item. */
  g_cancellable_reset (cancellable);
  n_destroyed = 0;
  pusher = (Pusher) { queue, cancellable, 2, FALSE, NULL };
  thread = g_thread_new ("pusher", pusher_main, &pusher);
  g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_pushers (queue) == 1, 30));
  g_cancellable_cancel (cancellable);
  g_thread_join (thread);
  g_assert_false (pusher.ok);
  g_assert_error (pusher.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&pusher.error);
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 0);
  g_assert_cmpuint (dvt_queue_get_n_items (queue), ==, 1);
  g_assert_cmpuint (pop_uint (queue), ==, 1);
}

static void
test_cancel_async (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  Ready r;

  ready_init (&r);
  dvt_queue_pop_async (queue, cancellable, on_ready, &r);
  g_assert_cmpuint (dvt_queue_get_n_waiting_poppers (queue), ==, 1);
  g_cancellable_cancel (cancellable);
  g_assert_cmpuint (dvt_queue_get_n_waiting_poppers (queue), ==, 0);
  ready_wait (&r);
  g_assert_false (dvt_queue_pop_finish (queue, r.result, &value, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  ready_clear (&r);

  /* An item pushed afterwards stays for the next pop. */
  push_uint (queue, 5, 0);
  g_assert_cmpuint (dvt_queue_get_n_items (queue), ==, 1);

  /* Cancelled before the call. */
  dvt_queue_pop_async (queue, cancellable, on_ready, &r);
  ready_wait (&r);
  g_assert_null (dvt_queue_pop_pointer_finish (queue, r.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  ready_clear (&r);

  /* A push waiting for room. */
  g_cancellable_reset (cancellable);
  n_destroyed = 0;
  dvt_queue_push_pointer_async (queue, ITEM (6), count_destroy, 0, cancellable, on_ready, &r);
  g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (queue), ==, 1);
  g_cancellable_cancel (cancellable);
  ready_wait (&r);
  g_assert_false (dvt_queue_push_finish (queue, r.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  ready_clear (&r);
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 0);
  g_assert_cmpuint (pop_uint (queue), ==, 5);
}

/* The cancellation of a waiting pop and the hand-off of an item race, many
 * times: either the pop gets the item, or it is cancelled and the item
 * stays in the queue. Never both, never neither. */
typedef struct
{
  DvtQueue     *queue;
  GCancellable *cancellable;
  int           ready;    /* atomic: both racers start together */
  guint         item;
} Race;

static void
race_start (Race *race)
{
  g_atomic_int_inc (&race->ready);
  for (guint k = 1; g_atomic_int_get (&race->ready) < 2; k++)
    if (k % 1024 == 0)
      g_thread_yield ();
}

static gpointer
race_cancel_main (gpointer data)
{
  Race *race = data;

  race_start (race);
  g_cancellable_cancel (race->cancellable);
  return NULL;
}

static gpointer
race_push_main (gpointer data)
{
  Race *race = data;

  race_start (race);
  g_assert_true (dvt_queue_try_push_pointer (race->queue, ITEM (race->item), NULL, 0, NULL));
  return NULL;
}

static void
race_check (Race     *race,
            gpointer  got,
            GError   *error,
            guint    *n_got,
            guint    *n_cancelled)
{
  if (error == NULL)
    {
      g_assert_cmpuint (GPOINTER_TO_UINT (got), ==, race->item);
      g_assert_cmpuint (dvt_queue_get_n_items (race->queue), ==, 0);
      (*n_got)++;
    }
  else
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_null (got);
      g_assert_cmpuint (pop_uint (race->queue), ==, race->item);
      (*n_cancelled)++;
    }
  g_assert_cmpuint (dvt_queue_get_n_items (race->queue), ==, 0);
  g_assert_cmpuint (dvt_queue_get_n_waiting_poppers (race->queue), ==, 0);
}

static void
test_cancel_race (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  guint rounds = is_valgrind () ? 200 : 3000;
  guint n_got = 0, n_cancelled = 0;

  for (guint i = 1; i <= rounds; i++)
    {
      Race race = { queue, g_cancellable_new (), 0, i };
      GThread *canceller, *pusher;
      GError *error = NULL;
      gpointer got = NULL;

      if (i % 2 == 0)
        {
          /* A blocking pop, on a thread of its own. */
          Popper popper = { queue, race.cancellable, 0, NULL, NULL };
          GThread *thread = g_thread_new ("popper", popper_main, &popper);

          g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_poppers (queue) == 1, 30));
          canceller = g_thread_new ("canceller", race_cancel_main, &race);
          pusher = g_thread_new ("pusher", race_push_main, &race);
          g_thread_join (thread);
          got = popper.item;
          error = popper.error;
        }
      else
        {
          /* An async pop, on this thread's context. */
          Ready r;

          ready_init (&r);
          dvt_queue_pop_async (queue, race.cancellable, on_ready, &r);
          canceller = g_thread_new ("canceller", race_cancel_main, &race);
          pusher = g_thread_new ("pusher", race_push_main, &race);
          ready_wait (&r);
          got = dvt_queue_pop_pointer_finish (queue, r.result, &error);
          ready_clear (&r);
        }
      g_thread_join (canceller);
      g_thread_join (pusher);
      race_check (&race, got, error, &n_got, &n_cancelled);
      g_clear_error (&error);
      g_object_unref (race.cancellable);
    }

  g_test_message ("%u rounds: the pop got the item %u times, was cancelled %u times",
                  rounds, n_got, n_cancelled);
  g_assert_cmpuint (n_got + n_cancelled, ==, rounds);
}

/* ---- callbacks on the caller's context ------------------------------------------------ */

typedef struct
{
  DvtQueue     *queue;
  GMainContext *context;
  GThread      *thread;
  int           n;        /* atomic */
  guint         sum;
  gboolean      sync_callback;
} ContextCase;

static void
on_context_pop (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  ContextCase *c = user_data;
  g_autoptr(GError) error = NULL;
  gpointer item;

  g_assert_true (g_thread_self () == c->thread);
  g_assert_true (g_main_context_get_thread_default () == c->context);
  item = dvt_queue_pop_pointer_finish (c->queue, result, &error);
  g_assert_no_error (error);
  c->sum += GPOINTER_TO_UINT (item);
  g_atomic_int_inc (&c->n);
}

static gpointer
context_thread_main (gpointer data)
{
  ContextCase *c = data;

  c->thread = g_thread_self ();
  g_main_context_push_thread_default (c->context);
  /* An item is there already: the callback still comes later. */
  dvt_queue_pop_async (c->queue, NULL, on_context_pop, c);
  if (g_atomic_int_get (&c->n) != 0)
    c->sync_callback = TRUE;
  /* No item yet: another thread pushes it. */
  dvt_queue_pop_async (c->queue, NULL, on_context_pop, c);
  while (g_atomic_int_get (&c->n) < 2)
    g_main_context_iteration (c->context, TRUE);
  g_main_context_pop_thread_default (c->context);
  return NULL;
}

static void
test_async_context (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  ContextCase c = { queue, g_main_context_new (), NULL, 0, 0, FALSE };
  GThread *thread;

  push_uint (queue, 1, 0);
  thread = g_thread_new ("context", context_thread_main, &c);
  g_assert_true (POLL_UNTIL (dvt_queue_get_n_waiting_poppers (queue) == 1, 30));
  /* Nothing ran on this thread's context. */
  g_assert_false (g_main_context_pending (NULL));
  push_uint (queue, 2, 0);
  g_thread_join (thread);
  g_assert_false (c.sync_callback);
  g_assert_cmpuint (c.sum, ==, 3);
  g_main_context_unref (c.context);
}

/* ---- items: values, pointers, and nothing leaked ----------------------------------------- */

static void
test_items (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  g_autoptr(GError) error = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  GValue *boxed;
  char *s;

  /* A pointer item popped as a value: a G_TYPE_POINTER value, the pointer
   * the caller's. */
  s = g_strdup ("pointer");
  g_assert_true (dvt_queue_try_push_pointer (queue, s, g_free, 0, &error));
  g_assert_true (dvt_queue_pop_blocking (queue, 0, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_true (G_VALUE_HOLDS_POINTER (&value));
  g_assert_true (g_value_get_pointer (&value) == s);
  g_value_unset (&value);
  g_free (s);

  /* A value item popped as a pointer: a GValue of its own. */
  g_value_init (&value, G_TYPE_STRING);
  g_value_set_string (&value, "value");
  g_assert_true (dvt_queue_try_push (queue, &value, 0, &error));
  g_value_unset (&value);
  boxed = dvt_queue_try_pop_pointer (queue, &error);
  g_assert_no_error (error);
  g_assert_true (G_VALUE_HOLDS_STRING (boxed));
  g_assert_cmpstr (g_value_get_string (boxed), ==, "value");
  g_boxed_free (G_TYPE_VALUE, boxed);

  /* A pop that drops what it took. */
  push_uint (queue, 1, 0);
  g_assert_true (dvt_queue_try_pop (queue, NULL, &error));
  g_assert_no_error (error);
}

static void
test_finalize_frees_items (void)
{
  DvtQueue *queue = dvt_queue_new (DVT_QUEUE_ORDER_PRIORITY, 0);
  GObject *object = g_object_new (G_TYPE_OBJECT, NULL);
  g_auto(GValue) value = G_VALUE_INIT;
  Ready r;

  n_destroyed = 0;
  ready_init (&r);
  for (guint i = 1; i <= 100; i++)
    g_assert_true (dvt_queue_try_push_pointer (queue, g_strdup_printf ("%u", i),
                                               g_free, (int) i, NULL));
  for (guint i = 1; i <= 3; i++)
    g_assert_true (dvt_queue_try_push_pointer (queue, ITEM (i), count_destroy, 0, NULL));
  g_value_init (&value, G_TYPE_OBJECT);
  g_value_set_object (&value, object);
  g_assert_true (dvt_queue_try_push (queue, &value, 0, NULL));
  g_value_unset (&value);
  g_value_init (&value, G_TYPE_STRV);
  g_value_take_boxed (&value, g_strsplit ("a b c", " ", -1));
  g_assert_true (dvt_queue_try_push (queue, &value, 0, NULL));

  /* An item handed to an async pop nobody finishes goes with its result. */
  dvt_queue_pop_async (queue, NULL, NULL, NULL);
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 0);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 1);

  add_weak_pointer_atomic (object, (gpointer *) &object);
  g_object_unref (object);
  g_assert_nonnull (object);
  g_object_unref (queue);
  g_assert_null (object);
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 3);
  ready_clear (&r);
}

/* ---- bad input ----------------------------------------------------------------------- */

static void
test_bad_input (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  g_auto(GValue) unset = G_VALUE_INIT;
  g_auto(GValue) out = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  EXPECT_ASSERTION (g_assert_false (dvt_queue_push_blocking (queue, NULL, 0, 0, NULL, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  EXPECT_ASSERTION (g_assert_false (dvt_queue_try_push (queue, &unset, 0, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  EXPECT_ASSERTION (g_assert_false (dvt_queue_try_push_pointer (queue, NULL, NULL, 0, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  EXPECT_ASSERTION (g_assert_false (dvt_queue_try_pop (NULL, &out, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_value_init (&out, G_TYPE_INT);
  EXPECT_ASSERTION (g_assert_false (dvt_queue_try_pop (queue, &out, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  EXPECT_ASSERTION (dvt_queue_pop_async (queue, (GCancellable *) queue, NULL, NULL));
  EXPECT_ASSERTION (g_assert_null (dvt_queue_new (7, 0)));
  EXPECT_ASSERTION (g_assert_null (dvt_queue_new (DVT_QUEUE_ORDER_FIFO, (guint) G_MAXINT + 1)));
  g_assert_cmpuint (dvt_queue_get_n_items (queue), ==, 0);
}

/* ---- the async results ------------------------------------------------------------------ */

/* A chain of pops on one context, items there already: each callback runs
 * after its call returned, and a result the callback keeps stays that
 * call's (it is finished later, after other pops of the chain ran). */
typedef struct
{
  DvtQueue     *queue;
  guint         n;
  guint         got;
  gboolean      in_call;
  GPtrArray    *kept;     /* every third result */
} KeepChain;

static void
on_keep_chain_pop (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  KeepChain *c = user_data;
  g_autoptr(GObject) source_object = g_async_result_get_source_object (result);

  g_assert_false (c->in_call);
  g_assert_true (source == G_OBJECT (c->queue));
  g_assert_true (source_object == G_OBJECT (c->queue));
  g_assert_true (g_async_result_get_user_data (result) == c);
  g_assert_true (g_async_result_is_tagged (result, dvt_queue_pop_async));
  g_assert_false (g_async_result_is_tagged (result, dvt_queue_push_async));

  c->got++;
  if (c->got % 3 == 0)
    g_ptr_array_add (c->kept, g_object_ref (result));
  else
    g_assert_cmpuint (GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (c->queue, result, NULL)),
                      ==, c->got);

  if (c->got < c->n)
    {
      c->in_call = TRUE;
      dvt_queue_pop_async (c->queue, NULL, on_keep_chain_pop, c);
      c->in_call = FALSE;
    }
}

static void
test_async_result_kept (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  KeepChain c = { queue, 300, 0, FALSE, g_ptr_array_new_with_free_func (g_object_unref) };
  g_autoptr(GError) error = NULL;
  Ready r;

  for (guint i = 1; i <= c.n; i++)
    push_uint (queue, i, 0);
  c.in_call = TRUE;
  dvt_queue_pop_async (queue, NULL, on_keep_chain_pop, &c);
  c.in_call = FALSE;
  g_assert_true (ITERATE_UNTIL (NULL, c.got == c.n, 30));

  /* Each kept result still holds its own item, once. */
  g_assert_cmpuint (c.kept->len, ==, c.n / 3);
  for (guint i = 0; i < c.kept->len; i++)
    {
      GAsyncResult *result = g_ptr_array_index (c.kept, i);

      g_assert_cmpuint (GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (queue, result, &error)),
                        ==, 3 * (i + 1));
      g_assert_no_error (error);
    }

  /* A push's result, kept after its callback, with a value item. */
  ready_init (&r);
  {
    g_auto(GValue) v = G_VALUE_INIT;
    g_auto(GValue) out = G_VALUE_INIT;

    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, "kept");
    dvt_queue_push_async (queue, &v, 0, NULL, on_ready, &r);
    ready_wait (&r);
    g_assert_true (dvt_queue_push_finish (queue, r.result, &error));
    g_assert_no_error (error);
    ready_clear (&r);

    dvt_queue_pop_async (queue, NULL, on_ready, &r);
    ready_wait (&r);
    /* More pops meanwhile: their ops must not be this one. */
    push_uint (queue, 7, 0);
    {
      Ready r2;

      ready_init (&r2);
      dvt_queue_pop_async (queue, NULL, on_ready, &r2);
      ready_wait (&r2);
      g_assert_cmpuint (GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (queue, r2.result, NULL)),
                        ==, 7);
      ready_clear (&r2);
    }
    g_assert_true (dvt_queue_pop_finish (queue, r.result, &out, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (g_value_get_string (&out), ==, "kept");
    ready_clear (&r);
  }

  g_ptr_array_unref (c.kept);
}

/* A result finished with the wrong queue, by the other finish function,
 * or a second time, is a programmer's mistake: a critical warning and
 * DVT_ERROR_INVALID_ARGUMENT, never a crash or an item given twice. */
static void
test_async_finish_checks (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  g_autoptr(DvtQueue) other = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  g_autoptr(GError) error = NULL;
  Ready pop, push;

  push_uint (queue, 1, 0);
  ready_init (&pop);
  dvt_queue_pop_async (queue, NULL, on_ready, &pop);
  ready_wait (&pop);
  ready_init (&push);
  dvt_queue_push_pointer_async (queue, ITEM (2), NULL, 0, NULL, on_ready, &push);
  ready_wait (&push);

  EXPECT_ASSERTION (g_assert_null (dvt_queue_pop_pointer_finish (other, pop.result, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  EXPECT_ASSERTION (g_assert_false (dvt_queue_push_finish (queue, pop.result, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  EXPECT_ASSERTION (g_assert_null (dvt_queue_pop_pointer_finish (queue, push.result, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_cmpuint (GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (queue, pop.result, &error)),
                    ==, 1);
  g_assert_no_error (error);
  EXPECT_ASSERTION (g_assert_null (dvt_queue_pop_pointer_finish (queue, pop.result, &error)));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (dvt_queue_push_finish (queue, push.result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (pop_uint (queue), ==, 2);

  ready_clear (&pop);
  ready_clear (&push);
}

/* Several threads, each iterating a context of its own (made and dropped
 * for every round), chain pops from one queue that other threads feed:
 * every item arrives once, each callback on the thread and context of its
 * call. */
#define N_CONTEXT_THREADS 4

typedef struct
{
  DvtQueue     *queue;
  GMainContext *context;
  GThread      *thread;
  guint         want;      /* items this consumer takes */
  guint         got;
  guint64       sum;
  guint8       *seen;      /* shared: atomic increments */
} ContextChain;

static void
on_context_chain_pop (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  ContextChain *c = user_data;
  g_autoptr(GError) error = NULL;
  guint i;

  g_assert_true (g_thread_self () == c->thread);
  g_assert_true (g_main_context_get_thread_default () == c->context);
  i = GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (c->queue, result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (__atomic_fetch_add (&c->seen[i - 1], 1, __ATOMIC_RELAXED), ==, 0);
  c->sum += i;
  if (++c->got < c->want)
    dvt_queue_pop_async (c->queue, NULL, on_context_chain_pop, c);
}

static gpointer
context_chain_main (gpointer data)
{
  ContextChain *c = data;
  guint per_round = MAX (1, c->want / 4);

  c->thread = g_thread_self ();
  while (c->got < c->want)
    {
      guint round_end = MIN (c->want, c->got + per_round);
      ContextChain round = *c;

      /* A new context for each round: the mailbox of the last one went
       * with its last pop. */
      round.context = c->context = g_main_context_new ();
      round.want = round_end;
      g_main_context_push_thread_default (round.context);
      dvt_queue_pop_async (c->queue, NULL, on_context_chain_pop, &round);
      while (round.got < round.want)
        g_main_context_iteration (round.context, TRUE);
      g_main_context_pop_thread_default (round.context);
      g_main_context_unref (round.context);
      c->got = round.got;
      c->sum = round.sum;
    }

  return NULL;
}

typedef struct
{
  DvtQueue *queue;
  guint     first;
  guint     step;
  guint     n;
} Feeder;

static gpointer
feeder_main (gpointer data)
{
  Feeder *f = data;

  for (guint i = f->first; i <= f->n; i += f->step)
    g_assert_true (dvt_queue_push_pointer_blocking (f->queue, ITEM (i), NULL, 0, 0, NULL, NULL));
  return NULL;
}

static void
test_async_many_contexts (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 16);
  guint n = is_valgrind () ? 2000 : 100000;
  ContextChain chains[N_CONTEXT_THREADS];
  Feeder feeders[2];
  GThread *threads[N_CONTEXT_THREADS + 2];
  guint8 *seen = g_new0 (guint8, n);
  guint64 sum = 0;

  for (guint t = 0; t < N_CONTEXT_THREADS; t++)
    {
      chains[t] = (ContextChain) { queue, NULL, NULL, n / N_CONTEXT_THREADS, 0, 0, seen };
      threads[t] = g_thread_new ("consumer", context_chain_main, &chains[t]);
    }
  for (guint f = 0; f < 2; f++)
    {
      feeders[f] = (Feeder) { queue, f + 1, 2, n };
      threads[N_CONTEXT_THREADS + f] = g_thread_new ("feeder", feeder_main, &feeders[f]);
    }
  for (guint t = 0; t < N_CONTEXT_THREADS + 2; t++)
    g_thread_join (threads[t]);

  for (guint t = 0; t < N_CONTEXT_THREADS; t++)
    sum += chains[t].sum;
  g_assert_cmpuint (sum, ==, (guint64) n * (n + 1) / 2);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (seen[i], ==, 1);
  g_free (seen);
}

/* The caller drops the queue while its pops wait: the calls hold it, and
 * it is finalized once the last callback has run (from inside that
 * delivery, its context's mailbox just released), its items freed. A
 * callback that drops the last reference itself works too. */
static void
on_pop_drop_queue (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  DvtQueue **queue = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (*queue, result, &error)),
                    ==, 1);
  g_assert_no_error (error);
  g_clear_object (queue);
}

static void
test_async_queue_dropped (void)
{
  DvtQueue *queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  DvtQueue *kept = queue;
  GWeakRef weak;
  Ready r;

  g_weak_ref_init (&weak, queue);

  /* Dropped while a pop waits; a push from a thread ends the wait. */
  ready_init (&r);
  dvt_queue_pop_async (queue, NULL, on_ready, &r);
  g_object_ref (queue);   /* for the pusher */
  g_object_unref (kept);
  {
    Feeder f = { queue, 1, 1, 1 };

    g_thread_join (g_thread_new ("feeder", feeder_main, &f));
  }
  g_object_unref (queue);
  ready_wait (&r);
  {
    g_autoptr(GObject) source = g_async_result_get_source_object (r.result);

    g_assert_true (source == (GObject *) queue);
    g_assert_cmpuint (GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (DVT_QUEUE (source),
                                                                      r.result, NULL)), ==, 1);
  }
  ready_clear (&r);
  /* The result held the queue; it went with it. */
  g_assert_null (g_weak_ref_get (&weak));

  /* The callback drops the last reference, with items left to free. */
  n_destroyed = 0;
  queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  g_weak_ref_set (&weak, queue);
  push_uint (queue, 1, 0);
  g_assert_true (dvt_queue_try_push_pointer (queue, g_strdup ("left"), g_free, 0, NULL));
  g_assert_true (dvt_queue_try_push_pointer (queue, ITEM (3), count_destroy, 0, NULL));
  dvt_queue_pop_async (queue, NULL, on_pop_drop_queue, &queue);
  g_assert_true (ITERATE_UNTIL (NULL, queue == NULL, 30));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_null (g_weak_ref_get (&weak));
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 1);
  g_weak_ref_clear (&weak);
}

/* A callback that runs a main loop of its own on the same context, until
 * another pop is called back, as GTask's callbacks can: the other pop is
 * delivered inside it, with the calls' order kept. */
typedef struct
{
  DvtQueue *queue;
  GArray   *order;
  gboolean  inner_done;
} Nested;

static void
on_nested_inner (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Nested *n = user_data;
  guint i = GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (n->queue, result, NULL));

  g_array_append_val (n->order, i);
  n->inner_done = TRUE;
}

static void
on_nested_second (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Nested *n = user_data;
  guint i = GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (n->queue, result, NULL));

  g_array_append_val (n->order, i);
}

static void
on_nested_outer (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Nested *n = user_data;
  guint i = GPOINTER_TO_UINT (dvt_queue_pop_pointer_finish (n->queue, result, NULL));
  Feeder f = { n->queue, 3, 1, 3 };

  g_array_append_val (n->order, i);
  /* Item 3 comes from another thread while this callback waits. */
  dvt_queue_pop_async (n->queue, NULL, on_nested_inner, n);
  g_thread_join (g_thread_new ("feeder", feeder_main, &f));
  while (!n->inner_done)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_async_nested_loop (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 0);
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));
  Nested n = { queue, order, FALSE };

  push_uint (queue, 1, 0);
  push_uint (queue, 2, 0);
  dvt_queue_pop_async (queue, NULL, on_nested_outer, &n);
  dvt_queue_pop_async (queue, NULL, on_nested_second, &n);
  g_assert_true (ITERATE_UNTIL (NULL, order->len == 3, 30));
  g_assert_cmpuint (g_array_index (order, guint, 0), ==, 1);
  g_assert_cmpuint (g_array_index (order, guint, 1), ==, 2);
  g_assert_cmpuint (g_array_index (order, guint, 2), ==, 3);
}

/* The cancellation of a push_async waiting for room races a pop that
 * makes room: either the push happened (its item is in the queue, the
 * pop took the other one), or it was cancelled (its item is the
 * caller's again, its destroy function not called). Never both. */
static gpointer
race_pop_main (gpointer data)
{
  Race *race = data;

  race_start (race);
  g_assert_cmpuint (pop_uint (race->queue), ==, 1);
  return NULL;
}

static void
test_cancel_race_push (void)
{
  g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 1);
  guint rounds = is_valgrind () ? 200 : 3000;
  guint n_pushed = 0, n_cancelled = 0;

  n_destroyed = 0;
  for (guint i = 1; i <= rounds; i++)
    {
      Race race = { queue, g_cancellable_new (), 0, 2 };
      GThread *canceller, *popper;
      GError *error = NULL;
      Ready r;

      push_uint (queue, 1, 0);
      ready_init (&r);
      dvt_queue_push_pointer_async (queue, ITEM (2), count_destroy, 0, race.cancellable,
                                    on_ready, &r);
      g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (queue), ==, 1);
      canceller = g_thread_new ("canceller", race_cancel_main, &race);
      popper = g_thread_new ("popper", race_pop_main, &race);
      ready_wait (&r);
      g_thread_join (canceller);
      g_thread_join (popper);

      if (dvt_queue_push_finish (queue, r.result, &error))
        {
          g_assert_cmpuint (pop_uint (queue), ==, 2);
          n_pushed++;
        }
      else
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_clear_error (&error);
          n_cancelled++;
        }
      ready_clear (&r);
      g_assert_cmpuint (dvt_queue_get_n_items (queue), ==, 0);
      g_assert_cmpuint (dvt_queue_get_n_waiting_pushers (queue), ==, 0);
      g_object_unref (race.cancellable);
    }

  g_test_message ("%u rounds: pushed %u times, cancelled %u times", rounds, n_pushed, n_cancelled);
  g_assert_cmpuint (n_pushed + n_cancelled, ==, rounds);
  g_assert_cmpint (g_atomic_int_get (&n_destroyed), ==, 0);
}

/* ---- the stress -------------------------------------------------------------------------
 *
 * 4 producer threads and 4 consumers (2 blocking threads, 2 async chains on
 * a loop thread) move N items through a bounded queue, while a canceller
 * thread cancels waiters at random: every item is delivered exactly once,
 * checked by count, sum and a mark per item. */

#define N_PRODUCERS 4
#define N_BLOCKING  2
#define N_ASYNC     2
#define N_ACTORS    (N_PRODUCERS + N_BLOCKING + N_ASYNC)

typedef struct
{
  DvtQueue     *queue;
  guint         n_items;
  guint8       *seen;          /* atomic increments, one per item */
  guint64       sum;           /* atomic */
  int           count;         /* atomic */
  int           n_cancelled;   /* atomic: waits that ended cancelled */
  int           done;          /* atomic: the canceller stops */

  GMutex        lock;          /* the cancellables in use */
  GCancellable *current[N_ACTORS];

  GMainContext *context;       /* the async consumers' */
  GThread      *loop_thread;
  int           async_over;    /* atomic: async chains that ended */
  GCancellable *async_cancellable[N_ASYNC];
} Stress;

static void
stress_deliver (Stress   *s,
                gpointer  item)
{
  guint i = GPOINTER_TO_UINT (item);
  guint8 *mark;

  g_assert_cmpuint (i, >=, 1);
  g_assert_cmpuint (i, <=, s->n_items);
  mark = &s->seen[i - 1];
  g_assert_cmpint (__atomic_fetch_add (mark, 1, __ATOMIC_RELAXED), ==, 0);
  __atomic_fetch_add (&s->sum, i, __ATOMIC_RELAXED);
  g_atomic_int_inc (&s->count);
}

/* One time in @one_in, a cancellable for the canceller to find. */
static GCancellable *
stress_cancellable (Stress *s,
                    guint   actor,
                    GRand  *rand,
                    guint   one_in)
{
  GCancellable *cancellable;

  if (g_rand_int_range (rand, 0, (gint32) one_in) != 0)
    return NULL;

  cancellable = g_cancellable_new ();
  g_mutex_lock (&s->lock);
  s->current[actor] = g_object_ref (cancellable);
  g_mutex_unlock (&s->lock);
  return cancellable;
}

static void
stress_cancellable_done (Stress       *s,
                         guint         actor,
                         GCancellable *cancellable)
{
  if (cancellable == NULL)
    return;
  g_mutex_lock (&s->lock);
  g_clear_object (&s->current[actor]);
  g_mutex_unlock (&s->lock);
  g_object_unref (cancellable);
}

typedef struct
{
  Stress *s;
  guint   actor;
} Actor;

static gpointer
stress_producer (gpointer data)
{
  Actor *a = data;
  Stress *s = a->s;
  GRand *rand = g_rand_new_with_seed (a->actor);

  for (guint i = a->actor + 1; i <= s->n_items; i += N_PRODUCERS)
    {
      GError *error = NULL;
      gboolean pushed = FALSE;

      while (!pushed)
        {
          GCancellable *cancellable = stress_cancellable (s, a->actor, rand, 16);

          pushed = dvt_queue_push_pointer_blocking (s->queue, ITEM (i), NULL, 0, 0,
                                                    cancellable, &error);
          stress_cancellable_done (s, a->actor, cancellable);
          if (!pushed)
            {
              g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
              g_clear_error (&error);
              g_atomic_int_inc (&s->n_cancelled);
            }
        }
    }
  g_rand_free (rand);
  return NULL;
}

static gpointer
stress_blocking_consumer (gpointer data)
{
  Actor *a = data;
  Stress *s = a->s;
  GRand *rand = g_rand_new_with_seed (a->actor);

  for (;;)
    {
      GCancellable *cancellable = stress_cancellable (s, a->actor, rand, 16);
      GError *error = NULL;
      gpointer item;

      item = dvt_queue_pop_pointer_blocking (s->queue, 0, cancellable, &error);
      stress_cancellable_done (s, a->actor, cancellable);
      if (item != NULL)
        stress_deliver (s, item);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_atomic_int_inc (&s->n_cancelled);
          g_clear_error (&error);
        }
      else
        {
          g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
          g_clear_error (&error);
          break;
        }
    }
  g_rand_free (rand);
  return NULL;
}

typedef struct
{
  Stress *s;
  guint   index;
  GRand  *rand;
} AsyncChain;

static void stress_async_next (AsyncChain *chain);

static void
on_stress_pop (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  AsyncChain *chain = user_data;
  Stress *s = chain->s;
  GError *error = NULL;
  gpointer item;

  g_assert_true (g_thread_self () == s->loop_thread);
  item = dvt_queue_pop_pointer_finish (s->queue, result, &error);
  g_mutex_lock (&s->lock);
  g_clear_object (&s->async_cancellable[chain->index]);
  g_mutex_unlock (&s->lock);

  if (item != NULL)
    stress_deliver (s, item);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_atomic_int_inc (&s->n_cancelled);
  else
    {
      g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
      g_clear_error (&error);
      g_atomic_int_inc (&s->async_over);
      g_main_context_wakeup (s->context);
      return;
    }
  g_clear_error (&error);
  stress_async_next (chain);
}

static void
stress_async_next (AsyncChain *chain)
{
  Stress *s = chain->s;
  GCancellable *cancellable = NULL;

  if (g_rand_int_range (chain->rand, 0, 16) == 0)
    {
      cancellable = g_cancellable_new ();
      g_mutex_lock (&s->lock);
      s->async_cancellable[chain->index] = g_object_ref (cancellable);
      g_mutex_unlock (&s->lock);
    }
  dvt_queue_pop_async (s->queue, cancellable, on_stress_pop, chain);
  g_clear_object (&cancellable);
}

static gpointer
stress_loop_main (gpointer data)
{
  Stress *s = data;
  AsyncChain chains[N_ASYNC];

  g_main_context_push_thread_default (s->context);
  for (guint i = 0; i < N_ASYNC; i++)
    {
      chains[i] = (AsyncChain) { s, i, g_rand_new_with_seed (100 + i) };
      stress_async_next (&chains[i]);
    }
  while (g_atomic_int_get (&s->async_over) < N_ASYNC)
    g_main_context_iteration (s->context, TRUE);
  for (guint i = 0; i < N_ASYNC; i++)
    g_rand_free (chains[i].rand);
  g_main_context_pop_thread_default (s->context);
  return NULL;
}

static gpointer
stress_canceller (gpointer data)
{
  Stress *s = data;
  GRand *rand = g_rand_new_with_seed (7);

  while (!g_atomic_int_get (&s->done))
    {
      guint slot = (guint) g_rand_int_range (rand, 0, N_ACTORS);
      GCancellable *cancellable = NULL;

      g_mutex_lock (&s->lock);
      if (slot < N_PRODUCERS + N_BLOCKING)
        cancellable = s->current[slot] != NULL ? g_object_ref (s->current[slot]) : NULL;
      else if (s->async_cancellable[slot - N_PRODUCERS - N_BLOCKING] != NULL)
        cancellable = g_object_ref (s->async_cancellable[slot - N_PRODUCERS - N_BLOCKING]);
      g_mutex_unlock (&s->lock);

      if (cancellable != NULL)
        {
          g_cancellable_cancel (cancellable);
          g_object_unref (cancellable);
        }
      if (g_rand_int_range (rand, 0, 4) == 0)
        g_thread_yield ();
    }
  g_rand_free (rand);
  return NULL;
}

static void
test_stress (void)
{
  Stress s = { 0 };
  Actor actors[N_PRODUCERS + N_BLOCKING];
  GThread *producers[N_PRODUCERS], *consumers[N_BLOCKING], *canceller;
  guint64 n;

  n = is_valgrind () ? 20000 : 1000000;
  s.queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 64);
  s.n_items = (guint) n;
  s.seen = g_new0 (guint8, n);
  s.context = g_main_context_new ();
  g_mutex_init (&s.lock);

  s.loop_thread = g_thread_new ("stress-loop", stress_loop_main, &s);
  for (guint i = 0; i < N_BLOCKING; i++)
    {
      actors[N_PRODUCERS + i] = (Actor) { &s, N_PRODUCERS + i };
      consumers[i] = g_thread_new ("consumer", stress_blocking_consumer, &actors[N_PRODUCERS + i]);
    }
  canceller = g_thread_new ("canceller", stress_canceller, &s);
  for (guint i = 0; i < N_PRODUCERS; i++)
    {
      actors[i] = (Actor) { &s, i };
      producers[i] = g_thread_new ("producer", stress_producer, &actors[i]);
    }

  for (guint i = 0; i < N_PRODUCERS; i++)
    g_thread_join (producers[i]);
  /* Every item is pushed: the consumers drain the rest, then end. */
  dvt_queue_close (s.queue);
  for (guint i = 0; i < N_BLOCKING; i++)
    g_thread_join (consumers[i]);
  g_thread_join (s.loop_thread);
  g_atomic_int_set (&s.done, 1);
  g_thread_join (canceller);

  g_test_message ("%" G_GUINT64_FORMAT " items, %d waits cancelled", n,
                  g_atomic_int_get (&s.n_cancelled));
  g_assert_cmpuint ((guint) g_atomic_int_get (&s.count), ==, n);
  g_assert_cmpuint (__atomic_load_n (&s.sum, __ATOMIC_RELAXED), ==, n * (n + 1) / 2);
  for (guint64 i = 0; i < n; i++)
    g_assert_cmpuint (s.seen[i], ==, 1);
  g_assert_cmpuint (dvt_queue_get_n_items (s.queue), ==, 0);

  /* The cancellables of the async chains are gone with their callbacks. */
  while (g_main_context_iteration (s.context, FALSE))
    ;
  g_object_unref (s.queue);
  g_main_context_unref (s.context);
  g_mutex_clear (&s.lock);
  g_free (s.seen);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (is_valgrind ())
    slow = 10.0;

  g_test_add_func ("/queue/order/fifo", test_order_fifo);
  g_test_add_func ("/queue/order/lifo", test_order_lifo);
  g_test_add_func ("/queue/order/priority", test_order_priority);
  g_test_add_func ("/queue/properties", test_properties);
  g_test_add_func ("/queue/back-pressure", test_back_pressure);
  g_test_add_func ("/queue/back-pressure/async", test_back_pressure_async);
  g_test_add_func ("/queue/try", test_try);
  g_test_add_func ("/queue/close/wakes-waiters", test_close_wakes_waiters);
  g_test_add_func ("/queue/timeout", test_timeout);
  g_test_add_func ("/queue/cancel/blocking", test_cancel_blocking);
  g_test_add_func ("/queue/cancel/async", test_cancel_async);
  g_test_add_func ("/queue/cancel/race", test_cancel_race);
  g_test_add_func ("/queue/async/context", test_async_context);
  g_test_add_func ("/queue/items", test_items);
  g_test_add_func ("/queue/items/finalize", test_finalize_frees_items);
  g_test_add_func ("/queue/bad-input", test_bad_input);
  g_test_add_func ("/queue/async/result-kept", test_async_result_kept);
  g_test_add_func ("/queue/async/finish-checks", test_async_finish_checks);
  g_test_add_func ("/queue/async/many-contexts", test_async_many_contexts);
  g_test_add_func ("/queue/async/queue-dropped", test_async_queue_dropped);
  g_test_add_func ("/queue/async/nested-loop", test_async_nested_loop);
  g_test_add_func ("/queue/cancel/race-push", test_cancel_race_push);
  g_test_add_func ("/queue/stress", test_stress);

  return g_test_run ();
}
