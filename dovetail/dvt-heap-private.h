/* dvt-heap-private.h: a binary heap ordered by priority, then arrival
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A heap is an array of entries of any struct type with an `int priority`
 * and a `guint64 seq` field, grown by its owner: the lowest priority value
 * comes first, and among equal priorities the lowest seq (the one that
 * came first), so that equal priorities stay FIFO. Used by the priority
 * order of DvtQueue and by the worker pool's jobs at other priorities. */

#define DVT_HEAP_BEFORE(a, b)                                                \
  ((a)->priority < (b)->priority ||                                          \
   ((a)->priority == (b)->priority && (a)->seq < (b)->seq))

/* Adds *@entry to the @n entries of @heap, which has room for one more. */
#define DVT_HEAP_PUSH(heap, n, entry)                                        \
  G_STMT_START {                                                             \
    guint _dvt_i = (n);                                                      \
                                                                             \
    while (_dvt_i > 0 && DVT_HEAP_BEFORE ((entry), &(heap)[(_dvt_i - 1) / 2])) \
      {                                                                      \
        (heap)[_dvt_i] = (heap)[(_dvt_i - 1) / 2];                           \
        _dvt_i = (_dvt_i - 1) / 2;                                           \
      }                                                                      \
    (heap)[_dvt_i] = *(entry);                                               \
  } G_STMT_END

/* Moves the first of the @n (> 0) entries of @heap into *@out; the other
 * n - 1 stay a heap. */
#define DVT_HEAP_POP(heap, n, out)                                           \
  G_STMT_START {                                                             \
    guint _dvt_n = (n) - 1;                                                  \
    guint _dvt_i = 0;                                                        \
                                                                             \
    *(out) = (heap)[0];                                                      \
    for (;;)                                                                 \
      {                                                                      \
        guint _dvt_child = 2 * _dvt_i + 1;                                   \
                                                                             \
        if (_dvt_child >= _dvt_n)                                            \
          break;                                                             \
        if (_dvt_child + 1 < _dvt_n &&                                       \
            DVT_HEAP_BEFORE (&(heap)[_dvt_child + 1], &(heap)[_dvt_child]))  \
          _dvt_child++;                                                      \
        if (!DVT_HEAP_BEFORE (&(heap)[_dvt_child], &(heap)[_dvt_n]))         \
          break;                                                             \
        (heap)[_dvt_i] = (heap)[_dvt_child];                                 \
        _dvt_i = _dvt_child;                                                 \
      }                                                                      \
    if (_dvt_n > 0)                                                          \
      (heap)[_dvt_i] = (heap)[_dvt_n];                                       \
  } G_STMT_END

G_END_DECLS
