/* dvt-map-private.h: ordered parallel maps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-task-private.h"

G_BEGIN_DECLS

typedef struct _DvtMap DvtMap;

G_END_DECLS
