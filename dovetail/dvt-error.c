/* dvt-error.c: the DVT_ERROR domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-error.h"

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
