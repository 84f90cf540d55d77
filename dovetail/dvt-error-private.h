/* dvt-error-private.h: bad arguments reported to bindings too
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-error.h"

G_BEGIN_DECLS

void dvt_error_set_bad_argument (GError     **error,
                                 const char  *function,
                                 const char  *expression);

/* g_return_val_if_fail() for a function with a GError: the same critical
 * warning (a programmer's mistake, as GLib reports it), and also
 * %DVT_ERROR_INVALID_ARGUMENT in @error, so that a language binding
 * raises an exception instead of reading a %NULL or %FALSE that looks like
 * an ordinary result. */
#define dvt_return_val_if_fail_error(expr, val, error)                       \
  G_STMT_START {                                                             \
    if (G_LIKELY (expr)) { }                                                 \
    else                                                                     \
      {                                                                      \
        g_return_if_fail_warning (G_LOG_DOMAIN, G_STRFUNC, #expr);           \
        dvt_error_set_bad_argument ((error), G_STRFUNC, #expr);              \
        return (val);                                                        \
      }                                                                      \
  } G_STMT_END

G_END_DECLS
