/* datasets.h - /v1/datasets: datasets uploaded as archives, kept per owner under the shared dir
 * (the state dir on a box alone; a directory every node mounts when several share a database).
 *
 *   POST   /v1/datasets?name=NAME      body: tar, tar.gz or zip -> 201 the dataset
 *   GET    /v1/datasets[?owner=]       the list
 *   GET    /v1/datasets/{owner}/{name} format, files per class and split, bytes
 *   GET    /v1/datasets/{owner}/{name}/grid.png   sample images, a row per class
 *   DELETE /v1/datasets/{owner}/{name} the owner or an admin; 409 while a queued or running job
 *                                      names it
 *
 * The upload's body goes straight to a file in SHARED/uploads/.tmp (server.c hands each piece to
 * datasets_upload_chunk; nothing of it is kept in memory) and is unpacked beside it
 * (../workers/unpack.h) on a thread of its own while the connection waits suspended, so a large
 * archive never holds an HTTP thread; its row is written, then one rename makes it
 * SHARED/uploads/OWNER/NAME.
 * datasets_recover, at start-up, removes what a crash left: the temp dirs, and rows whose
 * directory never arrived. A job names a dataset as "dataset:OWNER/NAME[/FILE]" in any path of
 * its spec (workers/jobspec.c resolves it beneath SHARED/uploads).
 */
#ifndef SSLD_API_DATASETS_H
#define SSLD_API_DATASETS_H

#include "internal.h"

enum MHD_Result datasets_route(Req *r, const char *path);   /* path after "/v1" */

/* server.c, first call of a request: 1 if it is an upload (POST /v1/datasets), whose body then
 * goes to datasets_upload_chunk instead of r->body; 0 otherwise; -1 out of memory. */
int datasets_upload_begin(Req *r, const char *method, const char *url);
/* One piece of the body: 0, or -1 to drop the connection. Past --max-upload-bytes, or when the
 * request will be refused anyway, the bytes are read and dropped so the client sees the answer. */
int datasets_upload_chunk(Req *r, const char *data, size_t n);
/* server.c, when a suspended upload comes back: the archive was unpacked on a thread of its own
 * (never on an HTTP thread: a large one takes seconds to minutes); answers with its outcome. */
enum MHD_Result datasets_upload_resumed(Req *r);
/* server.c, when the request ends (answered, failed or disconnected): removes the temp files. */
void datasets_upload_end(Req *r);

/* Start-up: makes SHARED/uploads (SHARED: the shared dir, the state dir on a box alone), removes
 * its temp dirs and dataset dirs that have no row. */
int datasets_recover(const char *shared_dir, Store *st, char *err, size_t errlen);

#endif
