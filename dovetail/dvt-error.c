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
G_DEFINE_QUARK (dvt-error-quark, dvt_error)
