/* dvt-context-private.h: installing a context around work
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-context.h"

G_BEGIN_DECLS

/* What dvt_context_enter() returns when no context was current but one
 * was made current. */
#define DVT_CONTEXT_NONE ((gpointer) 1)

gpointer dvt_context_enter (DvtContext *context);
void     dvt_context_leave (gpointer    saved);

G_END_DECLS
