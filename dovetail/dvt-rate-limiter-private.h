/* dvt-rate-limiter-private.h: what the rate limiter lends to tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* For tests (through the static library): every admission time of a
 * rate limiter is appended (as a gint64) to @log, under its lock. */
void     dvt_rate_limiter_set_admission_log (gpointer  limiter,
                                             GArray   *log);

G_END_DECLS
