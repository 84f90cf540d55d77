/* dvt-fault-private.h: fault injection at the library's hand-offs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* With DVT_FAULT_INJECT=1 in the environment, every hand-off between
 * threads (a task released to its waiter, a cancellation, a mail
 * delivered, a task retired) may yield the CPU or sleep a few
 * microseconds at random, so that the tests meet the orderings a loaded
 * machine produces now and then in every run. Off, a point costs one
 * load and a predictable branch. DVT_FAULT_INJECT=N sleeps up to N µs
 * (1 means the default, 50). For tests only. */

extern int dvt_fault_max_usec;

void dvt_fault_init   (void);
void dvt_fault_inject (void);

static inline void
dvt_fault_point (void)
{
  if (G_UNLIKELY (dvt_fault_max_usec != 0))
    dvt_fault_inject ();
}

G_END_DECLS
