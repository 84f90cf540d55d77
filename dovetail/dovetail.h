/* dovetail.h: the single include of Dovetail
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#define DVT_INSIDE
# include "dvt-version-macros.h"
# include "dvt-types.h"
# include "dvt-enums.h"
# include "dvt-callable.h"
# include "dvt-channel.h"
# include "dvt-batcher.h"
# include "dvt-cache.h"
# include "dvt-context.h"
# include "dvt-error.h"
# include "dvt-event-scope.h"
# include "dvt-gate.h"
# include "dvt-options.h"
# include "dvt-queue.h"
# include "dvt-stats.h"
# include "dvt-task.h"
# include "dvt-task-group.h"
# include "dvt-runtime.h"
#undef DVT_INSIDE
