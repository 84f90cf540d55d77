/* dvt-queue.c: one queue with a blocking face and a main-loop face
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-async-op-private.h"
#include "dvt-enums.h"
#include "dvt-error-private.h"
#include "dvt-fault-private.h"
#include "dvt-heap-private.h"
#include "dvt-pool-private.h"
#include "dvt-queue.h"
#include "dvt-thread-private.h"
#include "dvt-spin-private.h"

/**
 * DvtQueue:
 *
 * A queue that threads and main loops share: blocking calls for threads,
 * GIO-style `_async`/`_finish` pairs for main-loop code, and non-blocking
 * `try_` calls, all on the same items.
 *
 * A queue hands out its items in the [enum@QueueOrder] it was made with:
 * first in first out, last in first out, or by priority (the lowest value
 * first, first in first out among equal values). A queue made with a
 * [property@Queue:max-size] is bounded: a push waits while it is full
 * (back-pressure), a pop waits while it is empty. Waiting pushers, and
 * waiting poppers, are served in the order they started waiting, whether
 * they block or wait from a main loop.
 *
 * Items are `GValue`s (the face language bindings use) or, from C, pointers
 * with a destroy function (the `_pointer` calls). An item is delivered to
 * exactly one pop, never lost: a waiter cancelled, or timed out, at the
 * instant an item is handed to it either gets the item (the hand-off came
 * first) or leaves it in the queue for the next one (the cancellation came
 * first). Items still in a queue when it is finalized are freed (their
 * destroy functions run, their values are unset).
 *
 * [method@Queue.close] ends the queue: every waiter wakes with
 * %DVT_ERROR_CLOSED, pushes fail with it from then on, and pops take what
 * is left, then fail with it.
 *
 * ```c
 * g_autoptr(DvtQueue) queue = dvt_queue_new (DVT_QUEUE_ORDER_FIFO, 64);
 *
 * // a producer thread
 * dvt_queue_push_pointer_blocking (queue, g_strdup ("hello"), g_free, 0, 0, NULL, &error);
 *
 * // a consumer thread
 * g_autofree char *s = dvt_queue_pop_pointer_blocking (queue, 0, NULL, &error);
 * ```
 *
 * Since: 0.2
 */

/* ---- items ------------------------------------------------------------------ */

/* A value item has @value set; a pointer item leaves it unset (no GValue
 * machinery on the C face's hot path) and has @data. */
typedef struct
{
  GValue         value;
  gpointer       data;
  GDestroyNotify destroy;   /* a pointer item's destroy function, or NULL */
  int            priority;
  guint64        seq;       /* DVT_QUEUE_ORDER_PRIORITY: FIFO among equals */
} Item;

static inline gboolean
item_is_pointer (const Item *item)
{
  return G_VALUE_TYPE (&item->value) == G_TYPE_INVALID;
}

/* Frees what @item holds. The application's code may run (a destroy
 * function, a boxed free, a binding's reference drop): outside the gate. */
static void
item_clear (Item *item)
{
  if (item->destroy != NULL)
    {
      gpointer data = item->data;
      GDestroyNotify destroy = item->destroy;

      item->destroy = NULL;
      DVT_APP_CALL (destroy (data));
    }
  item->data = NULL;
  if (!item_is_pointer (item))
    DVT_APP_CALL (g_value_unset (&item->value));
}

/* A push that failed gives a pointer back to its caller without freeing
 * it; a copied value is the queue's own, and is freed. */
static void
item_disown (Item *item)
{
  item->destroy = NULL;
  item_clear (item);
}

/* Moves @item's contents into the unset @value: a pointer item becomes a
 * G_TYPE_POINTER value. */
static void
item_move_to_value (Item   *item,
                    GValue *value)
{
  if (item_is_pointer (item))
    {
      g_value_init (value, G_TYPE_POINTER);
      g_value_set_pointer (value, item->data);
    }
  else
    *value = item->value;
  memset (item, 0, sizeof *item);
}

/* The pointer face of a pop: a pointer item's pointer, or else a newly
 * allocated GValue holding the value. */
static gpointer
item_move_to_pointer (Item *item)
{
  GValue *value;
  gpointer data;

  if (item_is_pointer (item) || G_VALUE_HOLDS_POINTER (&item->value))
    {
      data = item_is_pointer (item) ? item->data : g_value_get_pointer (&item->value);
      memset (item, 0, sizeof *item);
      return data;
    }

  value = g_new0 (GValue, 1);
  item_move_to_value (item, value);
  return value;
}

/* ---- waiters ------------------------------------------------------------------
 *
 * A thread or a main-loop call that has to wait is a Waiter: an intrusive
 * node in the queue's list of pushers or poppers. Its state is one atomic
 * claim. The queue's side (a hand-off, or a close) moves it from WAITING
 * to DONE, under the queue's lock; the waiter's own side (its
 * cancellable's handler, its timeout) moves it from WAITING to ABANDONED,
 * without the lock, since a cancellation handler may run anywhere. Whoever
 * wins decides how the wait ends; the loser leaves it alone:
 *
 *  - the queue claims a popper before it hands it an item: a popper that
 *    the cancellation claimed first is skipped, and the item goes to the
 *    next popper or stays in the queue;
 *  - a popper that the queue claimed first gets the item even if its
 *    cancellable fires a moment later, and its pop succeeds.
 *
 * So an item is never both handed out and dropped, nor handed out twice.
 * Pushers work the same way with their item and the free room. */

typedef enum
{
  WAITER_WAITING,
  WAITER_DONE,       /* by the queue: handed an item or room, or closed */
  WAITER_ABANDONED,  /* by the waiter: cancelled or timed out */
} WaiterState;

typedef struct _Waiter     Waiter;
typedef struct _DvtQueueOp DvtQueueOp;

struct _Waiter
{
  Waiter   *prev;
  Waiter   *next;      /* in a list; once claimed, the list of async completions */
  int       state;     /* atomic WaiterState */
  struct _WaitList *list;  /* the list it is linked in, or NULL; under the lock */
  gboolean  closed;    /* DONE by a close, not a hand-off */
  Item      item;      /* a pusher's item; the item a popper receives */
  DvtQueueOp *op;      /* NULL for a blocking waiter */

  /* A blocking waiter's latch. */
  GMutex   *lock;      /* the queue's */
  int       published; /* atomic: the outcome is in place */
  gboolean  parked;    /* under the lock */
  GCond     cond;
};

typedef struct _WaitList
{
  Waiter *head;
  Waiter *tail;
  guint   length;      /* under the lock; read atomically */
} WaitList;

/* One push_async() or pop_async(), and the GAsyncResult given to its
 * callback: how the wait ended is its waiter's state (DONE by the queue,
 * with or without a close; ABANDONED when it was cancelled), and a pop's
 * item is its waiter's until a finish function takes it. */
struct _DvtQueueOp
{
  DvtAsyncOp parent_instance;
  Waiter     waiter;
  gboolean   is_push;
};

typedef struct
{
  DvtAsyncOpClass parent_class;
} DvtQueueOpClass;

GType dvt_queue_op_get_type (void) G_GNUC_CONST;

G_DEFINE_FINAL_TYPE (DvtQueueOp, dvt_queue_op, DVT_TYPE_ASYNC_OP)

/* A blocking waiter's latch: it spins (DvtSpin, which adapts to a busy
 * machine by yielding, then parking early), then parks on a condition of
 * its own with the queue's mutex, letting a runtime's pool start a
 * compensating thread if it is one of its workers. The waking side
 * publishes under that mutex, as its last touch of the waiter: a waiter
 * that was spinning returns as soon as it sees the flag, with no lock to
 * take, and one that parked cannot return before the waking side has
 * released the mutex. (A DvtLatch reads itself once more after
 * raising its flag, so a waiter on the stack would have to take the
 * queue's lock after every wake to know the waker was done with it.) */
static inline void
latch_init (Waiter *waiter,
            GMutex *lock)
{
  waiter->lock = lock;
  g_cond_init (&waiter->cond);
}

static inline void
latch_clear (Waiter *waiter)
{
  g_cond_clear (&waiter->cond);
}

static inline gboolean
latch_is_set (Waiter *waiter)
{
  return g_atomic_int_get (&waiter->published) != 0;
}

/* With the queue's lock held. */
static inline void
latch_set_locked (Waiter *waiter)
{
  if (waiter->parked)
    g_cond_signal (&waiter->cond);
  g_atomic_int_set (&waiter->published, 1);
}

/* Without the lock: waits until the latch is set, or the monotonic time
 * @deadline (-1: none) passes (FALSE). @spin goes on with a spin that the
 * caller began, or starts one. */
static gboolean
latch_wait (Waiter  *waiter,
            gint64   deadline,
            DvtSpin *spin)
{
  GMutex *lock = waiter->lock;
  gboolean set;
  DvtPool *pool;

  for (;;)
    {
      if (latch_is_set (waiter))
        {
          dvt_spin_done (spin, FALSE);
          return TRUE;
        }
      if (!dvt_spin_step (spin))
        break;
      if (deadline >= 0 && spin->now >= deadline)
        {
          dvt_spin_done (spin, TRUE);
          return latch_is_set (waiter);
        }
    }
  dvt_spin_done (spin, TRUE);

  pool = dvt_pool_enter_blocking ();
  g_mutex_lock (lock);
  waiter->parked = TRUE;
  while (!latch_is_set (waiter))
    {
      if (deadline < 0)
        g_cond_wait (&waiter->cond, lock);
      else if (!g_cond_wait_until (&waiter->cond, lock, deadline))
        break;
    }
  waiter->parked = FALSE;
  set = latch_is_set (waiter);
  g_mutex_unlock (lock);
  dvt_pool_leave_blocking (pool);

  return set;
}

/* Takes a queue's mutex, after a short spin if another thread holds it: a
 * GMutex sleeps in the kernel at the first contention, and the queue's
 * critical sections are a few dozen instructions long. */
static inline void
queue_lock (GMutex *lock)
{
  if (G_LIKELY (g_mutex_trylock (lock)))
    return;

  for (guint i = 0; i < 32; i++)
    {
      for (guint k = 0; k < 16; k++)
        dvt_cpu_relax ();
      if (g_mutex_trylock (lock))
        return;
    }
  g_mutex_lock (lock);
}

static inline gboolean
waiter_claim (Waiter      *waiter,
              WaiterState  outcome)
{
  return g_atomic_int_compare_and_exchange (&waiter->state, WAITER_WAITING, (int) outcome);
}

static inline WaiterState
waiter_get_state (Waiter *waiter)
{
  return (WaiterState) g_atomic_int_get (&waiter->state);
}

/* A count written under the lock and read without it, as a snapshot: a
 * relaxed store, which costs a plain one. */
static inline void
counter_set (guint *counter,
             guint  value)
{
  __atomic_store_n (counter, value, __ATOMIC_RELAXED);
}

static void
wait_list_append (WaitList *list,
                  Waiter   *waiter)
{
  waiter->next = NULL;
  waiter->prev = list->tail;
  if (list->tail != NULL)
    list->tail->next = waiter;
  else
    list->head = waiter;
  list->tail = waiter;
  waiter->list = list;
  counter_set (&list->length, list->length + 1);
}

static void
wait_list_remove (WaitList *list,
                  Waiter   *waiter)
{
  if (waiter->prev != NULL)
    waiter->prev->next = waiter->next;
  else
    list->head = waiter->next;
  if (waiter->next != NULL)
    waiter->next->prev = waiter->prev;
  else
    list->tail = waiter->prev;
  waiter->prev = waiter->next = NULL;
  waiter->list = NULL;
  counter_set (&list->length, list->length - 1);
}

/* ---- the queue ---------------------------------------------------------------- */

struct _DvtQueue
{
  GObject        parent_instance;

  GMutex         lock;
  DvtQueueOrder  order;
  guint          max_size;   /* 0: unbounded */

  /* A ring (FIFO, LIFO) or a binary heap from index 0 (PRIORITY). */
  Item          *items;
  guint          capacity;   /* a power of two, or 0 */
  guint          head;
  guint          n_items;    /* under the lock; read atomically */
  guint64        next_seq;

  gboolean       closed;     /* under the lock; read atomically */
  WaitList       pushers;
  WaitList       poppers;

  /* The async face: the callers' contexts' mailboxes, and an op kept for
   * the next call (see dvt-async-op-private.h). */
  DvtMailboxTable mailboxes;
  DvtAsyncOp    *spare_op;
};

enum
{
  PROP_0,
  PROP_ORDER,
  PROP_MAX_SIZE,
  PROP_N_ITEMS,
  PROP_N_WAITING_PUSHERS,
  PROP_N_WAITING_POPPERS,
  PROP_CLOSED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (DvtQueue, dvt_queue, G_TYPE_OBJECT)

/* ---- storage (under the lock) ------------------------------------------------- */

static void
storage_grow (DvtQueue *self)
{
  guint capacity = MAX (16, self->capacity * 2);
  Item *items = g_new (Item, capacity);

  /* Unrolled from the ring's head: a heap has head 0 and stays a heap. */
  for (guint i = 0; i < self->n_items; i++)
    items[i] = self->items[(self->head + i) & (self->capacity - 1)];
  g_free (self->items);
  self->items = items;
  self->capacity = capacity;
  self->head = 0;
}

/* Takes @item's contents. The queue has room. */
static void
storage_add (DvtQueue *self,
             Item     *item)
{
  guint n = self->n_items;

  if (n == self->capacity)
    storage_grow (self);

  if (self->order == DVT_QUEUE_ORDER_PRIORITY)
    {
      item->seq = self->next_seq++;
      DVT_HEAP_PUSH (self->items, n, item);
    }
  else
    self->items[(self->head + n) & (self->capacity - 1)] = *item;

  counter_set (&self->n_items, n + 1);
}

/* Moves the next item into @out. The queue has one. */
static void
storage_take (DvtQueue *self,
              Item     *out)
{
  guint n = self->n_items - 1;

  switch (self->order)
    {
    case DVT_QUEUE_ORDER_FIFO:
      *out = self->items[self->head];
      self->head = (self->head + 1) & (self->capacity - 1);
      break;

    case DVT_QUEUE_ORDER_LIFO:
      *out = self->items[(self->head + n) & (self->capacity - 1)];
      break;

    case DVT_QUEUE_ORDER_PRIORITY:
    default:
      DVT_HEAP_POP (self->items, n + 1, out);
      break;
    }

  counter_set (&self->n_items, n);

  /* The memory of a large burst goes once the queue is empty again. */
  if (n == 0)
    {
      self->head = 0;
      if (self->capacity > 65536)
        {
          g_clear_pointer (&self->items, g_free);
          self->capacity = 0;
        }
    }
}

/* ---- hand-offs (under the lock) ------------------------------------------------ */

/* Claims the first waiter of @list that is still waiting, and unlinks it;
 * those that were abandoned meanwhile are unlinked on the way (their own
 * threads find them unlinked). */
static Waiter *
claim_first (WaitList *list)
{
  Waiter *waiter;

  while ((waiter = list->head) != NULL)
    {
      wait_list_remove (list, waiter);
      if (waiter_claim (waiter, WAITER_DONE))
        {
          dvt_fault_point ();
          return waiter;
        }
    }

  return NULL;
}

/* A claimed waiter's outcome is in place: a blocking waiter is woken now
 * (the last touch of it); an async one is completed once the lock is
 * released, from @completions. */
static void
wake_locked (Waiter  *waiter,
             Waiter **completions)
{
  if (waiter->op == NULL)
    latch_set_locked (waiter);
  else
    {
      waiter->next = *completions;
      *completions = waiter;
    }
}

static inline gboolean
can_push_locked (DvtQueue *self)
{
  return self->closed || self->max_size == 0 || self->n_items < self->max_size;
}

static inline gboolean
can_pop_locked (DvtQueue *self)
{
  return self->n_items > 0 || self->closed;
}

/* Pushes @item (taking its contents) where can_push_locked(): to the first
 * waiting popper, or into the queue. FALSE if the queue is closed. Poppers
 * wait only while the queue is empty, so a popper is never passed over. */
static gboolean
push_locked (DvtQueue  *self,
             Item      *item,
             Waiter   **completions)
{
  Waiter *popper;

  if (self->closed)
    return FALSE;

  popper = claim_first (&self->poppers);
  if (popper != NULL)
    {
      popper->item = *item;
      wake_locked (popper, completions);
    }
  else
    storage_add (self, item);

  return TRUE;
}

/* Pops the next item into @out where can_pop_locked(), and lets the first
 * waiting pusher (pushers wait only while the queue is full) add its item
 * in the room made. FALSE if the queue is closed and empty. */
static gboolean
pop_locked (DvtQueue  *self,
            Item      *out,
            Waiter   **completions)
{
  Waiter *pusher;

  if (self->n_items == 0)
    return FALSE;

  storage_take (self, out);

  pusher = claim_first (&self->pushers);
  if (pusher != NULL)
    {
      storage_add (self, &pusher->item);
      memset (&pusher->item, 0, sizeof pusher->item);
      wake_locked (pusher, completions);
    }

  return TRUE;
}

/* ---- completing async waiters ------------------------------------------------- */

/* Completes async waiters claimed under the lock, which is released:
 * their callbacks are posted to their callers' contexts. */
static void
complete_async (Waiter *completions)
{
  DvtForkGate gate;

  if (completions == NULL)
    return;

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  while (completions != NULL)
    {
      Waiter *waiter = completions;

      /* Read first: once completed, the op may be delivered and reused. */
      completions = waiter->next;
      waiter->next = NULL;
      dvt_fault_point ();
      dvt_async_op_complete (&waiter->op->parent_instance);
    }
  dvt_fork_gate_leave (gate);
}

/* ---- the GObject ---------------------------------------------------------------- */

static void
dvt_queue_finalize (GObject *object)
{
  DvtQueue *self = DVT_QUEUE (object);

  /* Waiters hold the queue (a blocking caller its reference, an async one
   * its op's), so none is left, and no mailbox has a user left. */
  g_assert (self->pushers.head == NULL && self->poppers.head == NULL);
  g_clear_object (&self->spare_op);
  dvt_mailbox_table_clear (&self->mailboxes);

  while (self->n_items > 0)
    {
      Item item;

      storage_take (self, &item);
      item_clear (&item);
    }
  g_free (self->items);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (dvt_queue_parent_class)->finalize (object);
}

static void
dvt_queue_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  DvtQueue *self = DVT_QUEUE (object);

  switch (prop_id)
    {
    case PROP_ORDER:
      g_value_set_enum (value, self->order);
      break;
    case PROP_MAX_SIZE:
      g_value_set_uint (value, self->max_size);
      break;
    case PROP_N_ITEMS:
      g_value_set_uint (value, dvt_queue_get_n_items (self));
      break;
    case PROP_N_WAITING_PUSHERS:
      g_value_set_uint (value, dvt_queue_get_n_waiting_pushers (self));
      break;
    case PROP_N_WAITING_POPPERS:
      g_value_set_uint (value, dvt_queue_get_n_waiting_poppers (self));
      break;
    case PROP_CLOSED:
      g_value_set_boolean (value, dvt_queue_is_closed (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_queue_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  DvtQueue *self = DVT_QUEUE (object);

  switch (prop_id)
    {
    case PROP_ORDER:
      self->order = g_value_get_enum (value);
      break;
    case PROP_MAX_SIZE:
      self->max_size = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dvt_queue_class_init (DvtQueueClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dvt_queue_finalize;
  object_class->get_property = dvt_queue_get_property;
  object_class->set_property = dvt_queue_set_property;

  dvt_fault_init ();

  /**
   * DvtQueue:order:
   *
   * The order in which the queue hands out its items.
   *
   * Since: 0.2
   */
  properties[PROP_ORDER] =
    g_param_spec_enum ("order", NULL, NULL,
                       DVT_TYPE_QUEUE_ORDER, DVT_QUEUE_ORDER_FIFO,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtQueue:max-size:
   *
   * The most items the queue holds; 0 means no limit. A push waits while
   * the queue is full.
   *
   * Since: 0.2
   */
  properties[PROP_MAX_SIZE] =
    g_param_spec_uint ("max-size", NULL, NULL,
                       0, G_MAXINT, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtQueue:n-items:
   *
   * How many items the queue holds. It changes with every push and pop
   * and is never notified: read it when you need it.
   *
   * Since: 0.2
   */
  properties[PROP_N_ITEMS] =
    g_param_spec_uint ("n-items", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtQueue:n-waiting-pushers:
   *
   * How many pushes (blocking or async) wait for room. Notified only when
   * [method@Queue.close] wakes them.
   *
   * Since: 0.2
   */
  properties[PROP_N_WAITING_PUSHERS] =
    g_param_spec_uint ("n-waiting-pushers", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtQueue:n-waiting-poppers:
   *
   * How many pops (blocking or async) wait for an item. Notified only when
   * [method@Queue.close] wakes them.
   *
   * Since: 0.2
   */
  properties[PROP_N_WAITING_POPPERS] =
    g_param_spec_uint ("n-waiting-poppers", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * DvtQueue:closed:
   *
   * Whether [method@Queue.close] was called. Notified once, by the thread
   * that closes the queue.
   *
   * Since: 0.2
   */
  properties[PROP_CLOSED] =
    g_param_spec_boolean ("closed", NULL, NULL,
                          FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dvt_queue_init (DvtQueue *self)
{
  g_mutex_init (&self->lock);
  dvt_mailbox_table_init (&self->mailboxes, "[dovetail] queue",
                          DVT_MAILBOX_REENTRANT | DVT_MAILBOX_BATCHES);
}

/**
 * dvt_queue_new:
 * @order: the order in which items are handed out
 * @max_size: the most items the queue holds, at most %G_MAXINT; 0 for no
 *   limit
 *
 * Creates a queue.
 *
 * Returns: (transfer full): a new queue
 *
 * Since: 0.2
 */
DvtQueue *
dvt_queue_new (DvtQueueOrder order,
               guint         max_size)
{
  g_return_val_if_fail (order <= DVT_QUEUE_ORDER_PRIORITY, NULL);
  g_return_val_if_fail (max_size <= G_MAXINT, NULL);

  return g_object_new (DVT_TYPE_QUEUE, "order", order, "max-size", max_size, NULL);
}

/**
 * dvt_queue_get_order:
 * @queue: a queue
 *
 * Gets the order in which @queue hands out its items.
 *
 * Returns: the order
 *
 * Since: 0.2
 */
DvtQueueOrder
dvt_queue_get_order (DvtQueue *queue)
{
  g_return_val_if_fail (DVT_IS_QUEUE (queue), DVT_QUEUE_ORDER_FIFO);

  return queue->order;
}

/**
 * dvt_queue_get_max_size:
 * @queue: a queue
 *
 * Gets the most items @queue holds.
 *
 * Returns: the bound, or 0 if the queue is unbounded
 *
 * Since: 0.2
 */
guint
dvt_queue_get_max_size (DvtQueue *queue)
{
  g_return_val_if_fail (DVT_IS_QUEUE (queue), 0);

  return queue->max_size;
}

/**
 * dvt_queue_get_n_items:
 * @queue: a queue
 *
 * Gets how many items @queue holds. Other threads may change it at once.
 *
 * Returns: the number of items
 *
 * Since: 0.2
 */
guint
dvt_queue_get_n_items (DvtQueue *queue)
{
  g_return_val_if_fail (DVT_IS_QUEUE (queue), 0);

  return (guint) g_atomic_int_get (&queue->n_items);
}

/**
 * dvt_queue_get_n_waiting_pushers:
 * @queue: a queue
 *
 * Gets how many pushes wait for room in @queue, blocking or async.
 *
 * Returns: the number of waiting pushes
 *
 * Since: 0.2
 */
guint
dvt_queue_get_n_waiting_pushers (DvtQueue *queue)
{
  g_return_val_if_fail (DVT_IS_QUEUE (queue), 0);

  return (guint) g_atomic_int_get (&queue->pushers.length);
}

/**
 * dvt_queue_get_n_waiting_poppers:
 * @queue: a queue
 *
 * Gets how many pops wait for an item of @queue, blocking or async.
 *
 * Returns: the number of waiting pops
 *
 * Since: 0.2
 */
guint
dvt_queue_get_n_waiting_poppers (DvtQueue *queue)
{
  g_return_val_if_fail (DVT_IS_QUEUE (queue), 0);

  return (guint) g_atomic_int_get (&queue->poppers.length);
}

/**
 * dvt_queue_is_closed:
 * @queue: a queue
 *
 * Tells whether [method@Queue.close] was called on @queue.
 *
 * Returns: %TRUE if the queue is closed
 *
 * Since: 0.2
 */
gboolean
dvt_queue_is_closed (DvtQueue *queue)
{
  g_return_val_if_fail (DVT_IS_QUEUE (queue), FALSE);

  return g_atomic_int_get (&queue->closed);
}

/**
 * dvt_queue_close:
 * @queue: a queue
 *
 * Closes @queue. Every waiting push and pop, blocking or async, ends at
 * once with %DVT_ERROR_CLOSED (a waiting push keeps its item: a pointer
 * stays the caller's). From then on, pushes fail with %DVT_ERROR_CLOSED,
 * and pops take the items left, then fail with %DVT_ERROR_CLOSED.
 *
 * Closing a closed queue does nothing. Any thread may close a queue.
 *
 * Since: 0.2
 */
void
dvt_queue_close (DvtQueue *queue)
{
  Waiter *completions = NULL;
  Waiter *waiter;
  gboolean had_pushers, had_poppers;
  DvtForkGate gate;

  g_return_if_fail (DVT_IS_QUEUE (queue));

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (&queue->lock);
  if (queue->closed)
    {
      g_mutex_unlock (&queue->lock);
      dvt_fork_gate_leave (gate);
      return;
    }
  g_atomic_int_set (&queue->closed, TRUE);
  had_pushers = queue->pushers.head != NULL;
  had_poppers = queue->poppers.head != NULL;
  while ((waiter = claim_first (&queue->pushers)) != NULL)
    {
      waiter->closed = TRUE;
      wake_locked (waiter, &completions);
    }
  while ((waiter = claim_first (&queue->poppers)) != NULL)
    {
      waiter->closed = TRUE;
      wake_locked (waiter, &completions);
    }
  g_mutex_unlock (&queue->lock);

  complete_async (completions);

  DVT_CALLOUT (g_object_notify_by_pspec (G_OBJECT (queue), properties[PROP_CLOSED]));
  if (had_pushers)
    DVT_CALLOUT (g_object_notify_by_pspec (G_OBJECT (queue), properties[PROP_N_WAITING_PUSHERS]));
  if (had_poppers)
    DVT_CALLOUT (g_object_notify_by_pspec (G_OBJECT (queue), properties[PROP_N_WAITING_POPPERS]));
  dvt_fork_gate_leave (gate);
}

/* ---- errors ----------------------------------------------------------------- */

static void
set_closed_error (GError   **error,
                  gboolean   push)
{
  g_set_error_literal (error, DVT_ERROR, DVT_ERROR_CLOSED,
                       push ? _("The queue is closed")
                            : _("The queue is closed and empty"));
}

/* A deadline from a timeout in seconds, as dvt_task_wait() reads it: 0 or
 * less, NaN, or too long for the clock (infinity included) is no limit. */
static gint64
deadline_from_timeout (double timeout)
{
  if (timeout > 0 && timeout < (double) (G_MAXINT64 / 4) / G_USEC_PER_SEC)
    return g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);

  return -1;
}

/* ---- the blocking face ------------------------------------------------------- */

/* How long a popper that finds the queue empty watches it before it
 * becomes a waiter (see pop_item()): a hand-off from a thread that is
 * running. */
#define QUEUE_POLL_USEC 5

/* Without the lock: watches @queue for up to QUEUE_POLL_USEC, until it
 * may have an item or is closed; the caller then takes the lock again and
 * looks.
 *
 * Before it becomes a waiter, a popper that nobody is ahead of watches the
 * queue like this and takes an item that comes meanwhile as if it had
 * been there. A waiter costs a hand-off through the popper's stack (a
 * claim, a copy of the item and a latch, lines that cross between the
 * CPUs) and, each time its latch parks, a shorter spin for the next wait;
 * between two threads passing items back and forth, watching first made
 * a round trip three times faster. The spin begun here goes on as the
 * waiter's: a wait spins no longer in all than before.
 *
 * A pusher waiting for room does not watch: a full queue's popper then
 * stores the waiting pusher's item in the room it makes, under the lock
 * it holds already, and a producer that watched instead took the lock
 * once more per item (a channel of capacity 256 streamed 30 % slower). */
static void
watch_for_items (DvtQueue *queue,
                 DvtSpin  *spin,
                 gint64    deadline)
{
  for (;;)
    {
      if (g_atomic_int_get (&queue->n_items) > 0 || g_atomic_int_get (&queue->closed))
        return;
      /* A spin that is over (a busy machine, a preemption) stays over:
       * the waiter then parks at once. */
      if (!dvt_spin_step (spin) ||
          spin->now - spin->start >= QUEUE_POLL_USEC ||
          (deadline >= 0 && spin->now >= deadline))
        return;
    }
}

static void
on_blocking_cancelled (GCancellable *cancellable,
                       gpointer      data)
{
  Waiter *waiter = data;

  /* The waiter disconnects this handler (which waits for it to return)
   * before it goes away. */
  if (waiter_claim (waiter, WAITER_ABANDONED))
    {
      dvt_fault_point ();
      g_mutex_lock (waiter->lock);
      if (waiter->list != NULL)
        wait_list_remove (waiter->list, waiter);
      latch_set_locked (waiter);
      g_mutex_unlock (waiter->lock);
    }
}

/* Waits as @waiter, which the caller linked into a list of @queue, and
 * unlinks it. Called outside the gate and the lock; returns TRUE if the
 * queue ended the wait (a hand-off or a close), FALSE with
 * G_IO_ERROR_CANCELLED or G_IO_ERROR_TIMED_OUT. */
static gboolean
wait_blocking (DvtQueue      *queue,
               Waiter        *waiter,
               gint64         deadline,
               DvtSpin       *spin,
               GCancellable  *cancellable,
               GError       **error)
{
  gboolean timed_out = FALSE;
  gulong handler = 0;
  DvtForkGate gate;

  if (cancellable != NULL)
    {
      /* Runs the handler at once if the cancellable is cancelled already. */
      gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
      handler = g_cancellable_connect (cancellable, G_CALLBACK (on_blocking_cancelled),
                                       waiter, NULL);
      dvt_fork_gate_leave (gate);
    }

  if (!latch_wait (waiter, deadline, spin))
    {
      /* Timed out, unless another side claimed the waiter meanwhile: then
       * it finishes with it under the lock, which this thread takes. */
      timed_out = waiter_claim (waiter, WAITER_ABANDONED);
      dvt_fault_point ();
      g_mutex_lock (&queue->lock);
      if (waiter->list != NULL)
        wait_list_remove (waiter->list, waiter);
      g_mutex_unlock (&queue->lock);
    }

  /* A handler running in another thread is waited for. */
  if (handler != 0)
    {
      gate = dvt_fork_gate_enter (DVT_FORK_GATE_CALLOUT);
      g_cancellable_disconnect (cancellable, handler);
      dvt_fork_gate_leave (gate);
    }
  latch_clear (waiter);

  if (waiter_get_state (waiter) == WAITER_DONE)
    return TRUE;

  if (timed_out)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         _("Timed out waiting for the queue"));
  else
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                         _("The wait for the queue was cancelled"));
  return FALSE;
}

static void
item_init_value (Item         *item,
                 const GValue *value,
                 int           priority)
{
  memset (item, 0, sizeof *item);
  g_value_init (&item->value, G_VALUE_TYPE (value));
  g_value_copy (value, &item->value);
  item->priority = priority;
}

static void
item_init_pointer (Item           *item,
                   gpointer        data,
                   GDestroyNotify  destroy,
                   int             priority)
{
  memset (item, 0, sizeof *item);
  item->data = data;
  item->destroy = destroy;
  item->priority = priority;
}

/* Pushes @item, whose contents are taken on success and disowned on
 * failure (a pointer stays the caller's). @wait: block while full. */
static gboolean
push_item (DvtQueue      *queue,
           Item          *item,
           gboolean       wait,
           double         timeout,
           GCancellable  *cancellable,
           GError       **error)
{
  Waiter *completions = NULL;
  gint64 deadline = deadline_from_timeout (timeout);
  DvtSpin spin = DVT_SPIN_INIT;
  Waiter waiter;
  gboolean pushed;

  if (cancellable != NULL && g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      item_disown (item);
      return FALSE;
    }

  queue_lock (&queue->lock);
  if (can_push_locked (queue))
    {
      pushed = push_locked (queue, item, &completions);
      g_mutex_unlock (&queue->lock);
      complete_async (completions);

      if (!pushed)
        {
          item_disown (item);
          set_closed_error (error, TRUE);
        }
      return pushed;
    }

  if (!wait)
    {
      g_mutex_unlock (&queue->lock);
      item_disown (item);
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_FULL, _("The queue is full"));
      return FALSE;
    }

  memset (&waiter, 0, sizeof waiter);
  waiter.item = *item;
  latch_init (&waiter, &queue->lock);
  wait_list_append (&queue->pushers, &waiter);
  g_mutex_unlock (&queue->lock);

  if (!wait_blocking (queue, &waiter, deadline, &spin, cancellable, error))
    {
      item_disown (&waiter.item);
      return FALSE;
    }
  if (waiter.closed)
    {
      item_disown (&waiter.item);
      set_closed_error (error, TRUE);
      return FALSE;
    }

  return TRUE;
}

/* Pops into @out (unset on failure). @wait: block while empty. */
static gboolean
pop_item (DvtQueue      *queue,
          gboolean       wait,
          double         timeout,
          GCancellable  *cancellable,
          Item          *out,
          GError       **error)
{
  Waiter *completions = NULL;
  gint64 deadline = deadline_from_timeout (timeout);
  DvtSpin spin = DVT_SPIN_INIT;
  Waiter waiter;
  gboolean popped;

  memset (out, 0, sizeof *out);
  if (cancellable != NULL && g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  queue_lock (&queue->lock);
  if (wait && !can_pop_locked (queue) && queue->poppers.head == NULL)
    {
      g_mutex_unlock (&queue->lock);
      watch_for_items (queue, &spin, deadline);
      queue_lock (&queue->lock);
    }

  if (can_pop_locked (queue))
    {
      popped = pop_locked (queue, out, &completions);
      g_mutex_unlock (&queue->lock);
      complete_async (completions);
      if (spin.now != 0)  /* a watch began a spin */
        dvt_spin_done (&spin, FALSE);

      if (!popped)
        set_closed_error (error, FALSE);
      return popped;
    }

  if (!wait)
    {
      g_mutex_unlock (&queue->lock);
      g_set_error_literal (error, DVT_ERROR, DVT_ERROR_EMPTY, _("The queue is empty"));
      return FALSE;
    }

  memset (&waiter, 0, sizeof waiter);
  latch_init (&waiter, &queue->lock);
  wait_list_append (&queue->poppers, &waiter);
  g_mutex_unlock (&queue->lock);

  if (!wait_blocking (queue, &waiter, deadline, &spin, cancellable, error))
    return FALSE;
  if (waiter.closed)
    {
      set_closed_error (error, FALSE);
      return FALSE;
    }

  *out = waiter.item;
  return TRUE;
}

/* Bindings convert an out value even when the call failed: give them a
 * %NULL pointer value rather than an unset one. */
static gboolean
value_from_item (Item     *item,
                 gboolean  ok,
                 GValue   *value)
{
  if (value == NULL)
    item_clear (item);
  else if (ok)
    item_move_to_value (item, value);
  else
    g_value_init (value, G_TYPE_POINTER);

  return ok;
}

#define check_args(queue, cancellable, error, val)                           \
  G_STMT_START {                                                                  \
    dvt_return_val_if_fail_error (DVT_IS_QUEUE (queue), val, error);               \
    dvt_return_val_if_fail_error (cancellable == NULL || G_IS_CANCELLABLE (cancellable), \
                                  val, error);                                    \
    g_return_val_if_fail (error == NULL || *error == NULL, val);                  \
  } G_STMT_END

/**
 * dvt_queue_push_blocking:
 * @queue: a queue
 * @value: the item: a copy of it is pushed
 * @priority: the item's priority in a %DVT_QUEUE_ORDER_PRIORITY queue
 *   (lower values first); ignored by the other orders
 * @timeout: the longest time to wait for room, in seconds; 0 or less (or
 *   NaN, or more than a century, infinity included) waits as long as it
 *   takes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Pushes a copy of @value, waiting while the queue is full. Waiting
 * pushes, blocking or async, are served in the order they started
 * waiting. Any thread may push; a thread that must not block (a main
 * loop's) uses [method@Queue.push_async] or [method@Queue.try_push].
 *
 * Returns: %TRUE once the item is in the queue (or handed to a waiting
 *   pop); %FALSE with %DVT_ERROR_CLOSED if the queue is or gets closed,
 *   %G_IO_ERROR_TIMED_OUT if @timeout passes, or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_queue_push_blocking (DvtQueue      *queue,
                         const GValue  *value,
                         int            priority,
                         double         timeout,
                         GCancellable  *cancellable,
                         GError       **error)
{
  Item item;

  check_args (queue, cancellable, error, FALSE);
  dvt_return_val_if_fail_error (value != NULL && G_IS_VALUE (value), FALSE, error);

  item_init_value (&item, value, priority);
  return push_item (queue, &item, TRUE, timeout, cancellable, error);
}

/**
 * dvt_queue_push_pointer_blocking: (skip)
 * @queue: a queue
 * @data: (transfer full): the item, not %NULL
 * @destroy: (nullable): frees @data if it is still in the queue when the
 *   queue is finalized
 * @priority: the item's priority in a %DVT_QUEUE_ORDER_PRIORITY queue
 *   (lower values first); ignored by the other orders
 * @timeout: the longest time to wait for room, in seconds; 0 or less
 *   waits as long as it takes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Pushes a pointer, waiting while the queue is full: the pointer face of
 * [method@Queue.push_blocking]. The queue owns @data once the push has
 * succeeded; when it fails, @data is still the caller's and @destroy is
 * not called.
 *
 * Returns: %TRUE once the item is in the queue; %FALSE as
 *   [method@Queue.push_blocking]
 *
 * Since: 0.2
 */
gboolean
dvt_queue_push_pointer_blocking (DvtQueue       *queue,
                                 gpointer        data,
                                 GDestroyNotify  destroy,
                                 int             priority,
                                 double          timeout,
                                 GCancellable   *cancellable,
                                 GError        **error)
{
  Item item;

  check_args (queue, cancellable, error, FALSE);
  dvt_return_val_if_fail_error (data != NULL, FALSE, error);

  item_init_pointer (&item, data, destroy, priority);
  return push_item (queue, &item, TRUE, timeout, cancellable, error);
}

/**
 * dvt_queue_try_push:
 * @queue: a queue
 * @value: the item: a copy of it is pushed
 * @priority: the item's priority in a %DVT_QUEUE_ORDER_PRIORITY queue
 *   (lower values first); ignored by the other orders
 * @error: return location for a #GError
 *
 * Pushes a copy of @value if the queue has room, without waiting. Safe
 * from any thread, a main loop's included.
 *
 * Returns: %TRUE if the item was pushed; %FALSE with %DVT_ERROR_FULL if
 *   the queue is full, or %DVT_ERROR_CLOSED if it is closed
 *
 * Since: 0.2
 */
gboolean
dvt_queue_try_push (DvtQueue      *queue,
                    const GValue  *value,
                    int            priority,
                    GError       **error)
{
  Item item;

  check_args (queue, NULL, error, FALSE);
  dvt_return_val_if_fail_error (value != NULL && G_IS_VALUE (value), FALSE, error);

  item_init_value (&item, value, priority);
  return push_item (queue, &item, FALSE, 0, NULL, error);
}

/**
 * dvt_queue_try_push_pointer: (skip)
 * @queue: a queue
 * @data: (transfer full): the item, not %NULL
 * @destroy: (nullable): frees @data if it is still in the queue when the
 *   queue is finalized
 * @priority: the item's priority in a %DVT_QUEUE_ORDER_PRIORITY queue
 * @error: return location for a #GError
 *
 * The pointer face of [method@Queue.try_push]. When it fails, @data is
 * still the caller's.
 *
 * Returns: %TRUE if the item was pushed; %FALSE as [method@Queue.try_push]
 *
 * Since: 0.2
 */
gboolean
dvt_queue_try_push_pointer (DvtQueue       *queue,
                            gpointer        data,
                            GDestroyNotify  destroy,
                            int             priority,
                            GError        **error)
{
  Item item;

  check_args (queue, NULL, error, FALSE);
  dvt_return_val_if_fail_error (data != NULL, FALSE, error);

  item_init_pointer (&item, data, destroy, priority);
  return push_item (queue, &item, FALSE, 0, NULL, error);
}

/**
 * dvt_queue_pop_blocking:
 * @queue: a queue
 * @timeout: the longest time to wait for an item, in seconds; 0 or less
 *   (or NaN, or more than a century, infinity included) waits as long as
 *   it takes
 * @cancellable: (nullable): a #GCancellable
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the item; on failure, a %NULL %G_TYPE_POINTER value
 * @error: return location for a #GError
 *
 * Takes the next item, waiting while the queue is empty. Waiting pops,
 * blocking or async, are served in the order they started waiting. An
 * item pushed with the pointer functions comes as a %G_TYPE_POINTER value,
 * and the pointer is then the caller's (its destroy function is not
 * called).
 *
 * Returns: (skip): %TRUE with the item; %FALSE with %DVT_ERROR_CLOSED once
 *   the queue is closed and empty, %G_IO_ERROR_TIMED_OUT if @timeout
 *   passes, or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_queue_pop_blocking (DvtQueue      *queue,
                        double         timeout,
                        GCancellable  *cancellable,
                        GValue        *value,
                        GError       **error)
{
  Item item;
  gboolean ok;

  check_args (queue, cancellable, error, FALSE);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);

  ok = pop_item (queue, TRUE, timeout, cancellable, &item, error);
  return value_from_item (&item, ok, value);
}

/**
 * dvt_queue_pop_pointer_blocking: (skip)
 * @queue: a queue
 * @timeout: the longest time to wait for an item, in seconds; 0 or less
 *   waits as long as it takes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The pointer face of [method@Queue.pop_blocking]: takes the next item,
 * waiting while the queue is empty. A pointer item comes as its pointer,
 * which is then the caller's (its destroy function is not called); an
 * item pushed as a value of another type comes as a newly allocated
 * #GValue, to free with `g_boxed_free (G_TYPE_VALUE, value)`.
 *
 * Returns: (transfer full) (nullable): the item, or %NULL with @error set,
 *   as [method@Queue.pop_blocking]
 *
 * Since: 0.2
 */
gpointer
dvt_queue_pop_pointer_blocking (DvtQueue      *queue,
                                double         timeout,
                                GCancellable  *cancellable,
                                GError       **error)
{
  Item item;

  check_args (queue, cancellable, error, NULL);

  if (!pop_item (queue, TRUE, timeout, cancellable, &item, error))
    return NULL;
  return item_move_to_pointer (&item);
}

/**
 * dvt_queue_try_pop:
 * @queue: a queue
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the item; on failure, a %NULL %G_TYPE_POINTER value
 * @error: return location for a #GError
 *
 * Takes the next item if there is one, without waiting. Safe from any
 * thread, a main loop's included.
 *
 * Returns: (skip): %TRUE with the item; %FALSE with %DVT_ERROR_EMPTY if the
 *   queue is empty, or %DVT_ERROR_CLOSED if it is closed and empty
 *
 * Since: 0.2
 */
gboolean
dvt_queue_try_pop (DvtQueue  *queue,
                   GValue    *value,
                   GError   **error)
{
  Item item;
  gboolean ok;

  check_args (queue, NULL, error, FALSE);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);

  ok = pop_item (queue, FALSE, 0, NULL, &item, error);
  return value_from_item (&item, ok, value);
}

/**
 * dvt_queue_try_pop_pointer: (skip)
 * @queue: a queue
 * @error: return location for a #GError
 *
 * The pointer face of [method@Queue.try_pop]; items come as with
 * [method@Queue.pop_pointer_blocking].
 *
 * Returns: (transfer full) (nullable): the item, or %NULL with @error set,
 *   as [method@Queue.try_pop]
 *
 * Since: 0.2
 */
gpointer
dvt_queue_try_pop_pointer (DvtQueue  *queue,
                           GError   **error)
{
  Item item;

  check_args (queue, NULL, error, NULL);

  if (!pop_item (queue, FALSE, 0, NULL, &item, error))
    return NULL;
  return item_move_to_pointer (&item);
}

/* ---- the async face ------------------------------------------------------------ */

/* From the cancellable's handler: a wait that the queue has not claimed
 * yet ends cancelled. */
static void
dvt_queue_op_cancelled (DvtAsyncOp *async_op)
{
  DvtQueueOp *op = (DvtQueueOp *) async_op;
  DvtQueue *queue = (DvtQueue *) async_op->source_object;
  DvtForkGate gate;

  if (!waiter_claim (&op->waiter, WAITER_ABANDONED))
    return;
  dvt_fault_point ();

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  g_mutex_lock (&queue->lock);
  if (op->waiter.list != NULL)
    wait_list_remove (op->waiter.list, &op->waiter);
  g_mutex_unlock (&queue->lock);

  /* Delivered in an iteration of the caller's context, never from here. */
  dvt_async_op_complete (async_op);
  dvt_fork_gate_leave (gate);
}

/* What the op still holds: a push's item that was never pushed (a
 * pointer stays the caller's), a pop's item that no finish took. */
static void
dvt_queue_op_clear (DvtQueueOp *op)
{
  if (op->is_push)
    item_disown (&op->waiter.item);
  else
    item_clear (&op->waiter.item);
}

static void
dvt_queue_op_reset (DvtAsyncOp *async_op)
{
  DvtQueueOp *op = (DvtQueueOp *) async_op;

  dvt_queue_op_clear (op);
  memset (&op->waiter, 0, sizeof op->waiter);
  op->is_push = FALSE;
}

static void
dvt_queue_op_finalize (GObject *object)
{
  dvt_queue_op_clear ((DvtQueueOp *) object);

  G_OBJECT_CLASS (dvt_queue_op_parent_class)->finalize (object);
}

static void
dvt_queue_op_class_init (DvtQueueOpClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dvt_queue_op_finalize;
  klass->parent_class.cancelled = dvt_queue_op_cancelled;
  klass->parent_class.reset = dvt_queue_op_reset;
}

static void
dvt_queue_op_init (DvtQueueOp *op)
{
}

/* Does @op's push or pop where it can be done now, under the lock; the op
 * is claimed, and completed from @completions. */
static void
async_do_locked (DvtQueue    *queue,
                 DvtQueueOp  *op,
                 Waiter     **completions)
{
  if (op->is_push)
    {
      if (push_locked (queue, &op->waiter.item, completions))
        memset (&op->waiter.item, 0, sizeof op->waiter.item);
      else
        op->waiter.closed = TRUE;
    }
  else if (!pop_locked (queue, &op->waiter.item, completions))
    op->waiter.closed = TRUE;

  wake_locked (&op->waiter, completions);
}

/* The waiter's claim decides whether a cancellation ends the call: a pop
 * that was handed its item returns it even if the cancellable fires
 * meanwhile, so the item is never dropped. Every way the call ends
 * (done now, handed an item or room later, closed, cancelled) completes
 * the op once, and its callback is delivered on the caller's context. */
static void
start_async (DvtQueue            *queue,
             Item                *item,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data,
             gpointer             source_tag)
{
  Waiter *completions = NULL;
  WaitList *list;
  gboolean can;
  DvtQueueOp *op;
  DvtForkGate gate;

  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  op = dvt_async_op_new (dvt_queue_op_get_type (), queue, &queue->mailboxes, &queue->spare_op,
                         callback, user_data, source_tag);
  op->is_push = item != NULL;
  op->waiter.op = op;
  if (item != NULL)
    op->waiter.item = *item;

  if (g_cancellable_is_cancelled (cancellable))
    {
      op->waiter.state = WAITER_ABANDONED;
      dvt_async_op_complete (&op->parent_instance);
      dvt_fork_gate_leave (gate);
      return;
    }

  list = op->is_push ? &queue->pushers : &queue->poppers;

  /* No one else knows the op yet: it needs no claim. Once it is in a
   * list, or completed, it is not touched again. */
  queue_lock (&queue->lock);
  can = op->is_push ? can_push_locked (queue) : can_pop_locked (queue);
  if (can || cancellable == NULL)
    {
      if (can)
        {
          op->waiter.state = WAITER_DONE;
          async_do_locked (queue, op, &completions);
        }
      else
        wait_list_append (list, &op->waiter);
      g_mutex_unlock (&queue->lock);
      complete_async (completions);
      dvt_fork_gate_leave (gate);
      return;
    }
  g_mutex_unlock (&queue->lock);

  /* The handler may run at once, here, or on another thread as soon as it
   * is connected: from here on, the op is claimed before it is done, and
   * held while it is touched. */
  g_object_ref (op);
  dvt_async_op_connect (&op->parent_instance, cancellable);

  queue_lock (&queue->lock);
  if (waiter_get_state (&op->waiter) == WAITER_WAITING)
    {
      can = op->is_push ? can_push_locked (queue) : can_pop_locked (queue);
      if (!can)
        wait_list_append (list, &op->waiter);
      else if (waiter_claim (&op->waiter, WAITER_DONE))
        async_do_locked (queue, op, &completions);
    }
  g_mutex_unlock (&queue->lock);
  complete_async (completions);

  DVT_CALLOUT (g_object_unref (op));
  dvt_fork_gate_leave (gate);
}

/**
 * dvt_queue_push_async:
 * @queue: a queue
 * @value: the item: a copy of it is pushed
 * @priority: the item's priority in a %DVT_QUEUE_ORDER_PRIORITY queue
 *   (lower values first); ignored by the other orders
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the thread-default
 *   main context of the calling thread once the item is in the queue, or
 *   the push failed
 * @user_data: data for @callback
 *
 * Pushes a copy of @value without blocking: the main-loop twin of
 * [method@Queue.push_blocking]. While the queue is full the push waits,
 * in line with the blocking pushes. @callback always runs after this call
 * has returned; call [method@Queue.push_finish] there.
 *
 * Since: 0.2
 */
void
dvt_queue_push_async (DvtQueue            *queue,
                      const GValue        *value,
                      int                  priority,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  Item item;

  g_return_if_fail (DVT_IS_QUEUE (queue));
  g_return_if_fail (value != NULL && G_IS_VALUE (value));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  item_init_value (&item, value, priority);
  start_async (queue, &item, cancellable, callback, user_data, dvt_queue_push_async);
}

/**
 * dvt_queue_push_pointer_async: (skip)
 * @queue: a queue
 * @data: (transfer full): the item, not %NULL
 * @destroy: (nullable): frees @data if it is still in the queue when the
 *   queue is finalized
 * @priority: the item's priority in a %DVT_QUEUE_ORDER_PRIORITY queue
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the thread-default
 *   main context of the calling thread
 * @user_data: data for @callback
 *
 * The pointer face of [method@Queue.push_async]; finish it with
 * [method@Queue.push_finish]. When the push fails, @data is still the
 * caller's and @destroy is not called.
 *
 * Since: 0.2
 */
void
dvt_queue_push_pointer_async (DvtQueue            *queue,
                              gpointer             data,
                              GDestroyNotify       destroy,
                              int                  priority,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  Item item;

  g_return_if_fail (DVT_IS_QUEUE (queue));
  g_return_if_fail (data != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  item_init_pointer (&item, data, destroy, priority);
  start_async (queue, &item, cancellable, callback, user_data, dvt_queue_push_async);
}

/* The op of @result if it comes from @source_tag on @queue and was not
 * finished yet. */
static DvtQueueOp *
finish_op (DvtQueue     *queue,
           GAsyncResult *result,
           gpointer      source_tag)
{
  return dvt_async_op_finish (result, dvt_queue_op_get_type (), queue, source_tag);
}

/* How @op's wait ended: %TRUE if the queue did its push or pop. */
static gboolean
op_propagate (DvtQueueOp  *op,
              GError     **error)
{
  if (waiter_get_state (&op->waiter) != WAITER_DONE)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("The wait for the queue was cancelled"));
      return FALSE;
    }
  if (op->waiter.closed)
    {
      set_closed_error (error, op->is_push);
      return FALSE;
    }

  return TRUE;
}

/**
 * dvt_queue_push_finish:
 * @queue: a queue
 * @result: the result given to the callback of [method@Queue.push_async]
 * @error: return location for a #GError
 *
 * Finishes [method@Queue.push_async] (or, from C,
 * [method@Queue.push_pointer_async]).
 *
 * Returns: %TRUE if the item is in the queue; %FALSE with
 *   %DVT_ERROR_CLOSED or %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_queue_push_finish (DvtQueue      *queue,
                       GAsyncResult  *result,
                       GError       **error)
{
  DvtQueueOp *op;

  dvt_return_val_if_fail_error (DVT_IS_QUEUE (queue), FALSE, error);
  dvt_return_val_if_fail_error ((op = finish_op (queue, result, dvt_queue_push_async)) != NULL,
                                FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return op_propagate (op, error);
}

/**
 * dvt_queue_pop_async:
 * @queue: a queue
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called on the thread-default
 *   main context of the calling thread once an item was taken, or the pop
 *   failed
 * @user_data: data for @callback
 *
 * Takes the next item without blocking: the main-loop twin of
 * [method@Queue.pop_blocking]. While the queue is empty the pop waits, in
 * line with the blocking pops. @callback always runs after this call has
 * returned; call [method@Queue.pop_finish] (or, from C,
 * [method@Queue.pop_pointer_finish]) there.
 *
 * A pop whose item was handed to it returns the item even if @cancellable
 * is cancelled before the callback runs; a pop cancelled first leaves the
 * item in the queue. Either way no item is lost.
 *
 * Since: 0.2
 */
void
dvt_queue_pop_async (DvtQueue            *queue,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_return_if_fail (DVT_IS_QUEUE (queue));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  start_async (queue, NULL, cancellable, callback, user_data, dvt_queue_pop_async);
}

/**
 * dvt_queue_pop_finish:
 * @queue: a queue
 * @result: the result given to the callback of [method@Queue.pop_async]
 * @value: (out caller-allocates) (optional): an unset #GValue to receive
 *   the item; on failure, a %NULL %G_TYPE_POINTER value
 * @error: return location for a #GError
 *
 * Finishes [method@Queue.pop_async]. Items come as with
 * [method@Queue.pop_blocking].
 *
 * Returns: (skip): %TRUE with the item; %FALSE with %DVT_ERROR_CLOSED or
 *   %G_IO_ERROR_CANCELLED
 *
 * Since: 0.2
 */
gboolean
dvt_queue_pop_finish (DvtQueue      *queue,
                      GAsyncResult  *result,
                      GValue        *value,
                      GError       **error)
{
  DvtQueueOp *op;
  gboolean ok;

  dvt_return_val_if_fail_error (DVT_IS_QUEUE (queue), FALSE, error);
  dvt_return_val_if_fail_error ((op = finish_op (queue, result, dvt_queue_pop_async)) != NULL,
                                FALSE, error);
  dvt_return_val_if_fail_error (value == NULL || !G_IS_VALUE (value), FALSE, error);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  ok = op_propagate (op, error);
  return value_from_item (&op->waiter.item, ok, value);
}

/**
 * dvt_queue_pop_pointer_finish: (skip)
 * @queue: a queue
 * @result: the result given to the callback of [method@Queue.pop_async]
 * @error: return location for a #GError
 *
 * Finishes [method@Queue.pop_async] with the pointer face: items come as
 * with [method@Queue.pop_pointer_blocking].
 *
 * Returns: (transfer full) (nullable): the item, or %NULL with @error set
 *
 * Since: 0.2
 */
gpointer
dvt_queue_pop_pointer_finish (DvtQueue      *queue,
                              GAsyncResult  *result,
                              GError       **error)
{
  DvtQueueOp *op;

  dvt_return_val_if_fail_error (DVT_IS_QUEUE (queue), NULL, error);
  dvt_return_val_if_fail_error ((op = finish_op (queue, result, dvt_queue_pop_async)) != NULL,
                                NULL, error);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!op_propagate (op, error))
    return NULL;
  return item_move_to_pointer (&op->waiter.item);
}
