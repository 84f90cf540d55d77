/* dvt-error.h: the DVT_ERROR domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <glib.h>

#include "dvt-version-macros.h"

G_BEGIN_DECLS

/**
 * DVT_ERROR:
 *
 * The error domain of Dovetail's own conditions. Errors of the work itself
 * reach the caller unchanged, in their own domain.
 */
#define DVT_ERROR (dvt_error_quark ())

/**
 * DvtError:
 * @DVT_ERROR_FAILED: a generic failure
 * @DVT_ERROR_CLOSED: the runtime was shut down and accepts no more work
 * @DVT_ERROR_WOULD_DEADLOCK: the call would block a thread that the work
 *   needs in order to complete (such as the runtime's own loop thread)
 * @DVT_ERROR_NOT_COMPLETED: a work function returned, or dropped its task,
 *   without completing it
 * @DVT_ERROR_INVALID_ARGUMENT: an argument or option is out of range
 * @DVT_ERROR_FULL: a call that must not wait found no room (a full queue).
 *   Since: 0.2
 * @DVT_ERROR_EMPTY: a call that must not wait found nothing to take (an
 *   empty queue). Since: 0.2
 *
 * Error codes of the %DVT_ERROR domain.
 */
typedef enum
{
  DVT_ERROR_FAILED,
  DVT_ERROR_CLOSED,
  DVT_ERROR_WOULD_DEADLOCK,
  DVT_ERROR_NOT_COMPLETED,
  DVT_ERROR_INVALID_ARGUMENT,
  DVT_ERROR_FULL,
  DVT_ERROR_EMPTY,
} DvtError;

DVT_AVAILABLE_IN_ALL
GQuark dvt_error_quark (void);

G_END_DECLS
