/* dvt-map-private.h: ordered parallel maps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-task-private.h"

G_BEGIN_DECLS

void          dvt_map_unref           (DvtMap    *map);
void          dvt_map_item_done       (DvtMap    *map,
                                       DvtTask   *item,
                                       DvtResult *result);
GCancellable *dvt_map_get_cancellable (DvtMap    *map);
void          dvt_map_cancel          (DvtMap    *map);
DvtMailbox   *dvt_map_get_mailbox     (DvtMap    *map);
void          dvt_map_item_released   (DvtMap    *map);
DvtMap       *dvt_map_ref             (DvtMap    *map);
DvtTask      *dvt_map_get_batch       (DvtMap    *map);
void          dvt_map_item_finalized  (DvtMap    *map,
                                       DvtTask   *item);

G_END_DECLS
