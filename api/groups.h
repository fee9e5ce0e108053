/* groups.h - the /v1/groups endpoints: the jobs one sweep created, and their results per setting.
 *
 *   GET  /v1/groups                 groups newest first (?owner=, ?before=, ?limit=)
 *   GET  /v1/groups/{id}            the group, its jobs, and per setting (the swept values) the
 *                                   mean and sample standard deviation over seeds of every
 *                                   evaluation's test accuracy and of the headline gain; "best"
 *                                   names the setting with the highest mean of the ranking
 *                                   figure (the headline accuracy when every finished job has
 *                                   one, else the first evaluation's accuracy)
 *   POST /v1/groups/{id}/cancel     cancels every queued or running job of the group
 *
 * Reading follows the jobs' read rule; cancelling needs the group's owner or an admin token.
 * Submitting a sweep is POST /v1/jobs (routes.c, workers/sweep.h).
 */
#ifndef SSLD_API_GROUPS_H
#define SSLD_API_GROUPS_H

#include "internal.h"

/* path is what follows /v1 ("/groups", "/groups/3", "/groups/3/cancel"). */
enum MHD_Result groups_route(Req *r, const char *path);

#endif
