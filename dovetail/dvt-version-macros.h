/* dvt-version-macros.h: symbol export macros
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <glib.h>

#ifndef _DVT_EXTERN
# define _DVT_EXTERN __attribute__((visibility ("default"))) extern
#endif

#define DVT_AVAILABLE_IN_ALL _DVT_EXTERN
