/* dvt-semaphore-private.h: what the semaphore lends to tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* For tests (through the static library). */
void     dvt_semaphore_set_order_hook (gpointer   semaphore,
                                       void     (*hook) (gboolean in_order,
                                                         gpointer data),
                                       gpointer   data);

G_END_DECLS
