/* dvt-error.c: the DVT_ERROR domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-error-private.h"

/**
 * dvt_error_quark:
 *
 * Gets the quark of the %DVT_ERROR domain.
 *
 * Returns: the quark
 */
GQuark
dvt_error_quark (void)
{
  static gsize quark;

  /* Not G_DEFINE_QUARK: its unsynchronised first-use check is a data race. */
  if (g_once_init_enter (&quark))
    g_once_init_leave (&quark, g_quark_from_static_string ("dvt-error-quark"));

  return (GQuark) quark;
}

/* See dvt_return_val_if_fail_error(). Leaves an error already set alone
 * (that itself is the caller's mistake, reported by the check for it). */
void
dvt_error_set_bad_argument (GError     **error,
                            const char  *function,
                            const char  *expression)
{
  if (error == NULL || *error != NULL)
    return;

  /* A programmer's mistake, worded as GLib's critical: not translated. */
  g_set_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT,
               "%s: assertion '%s' failed", function, expression);
}
