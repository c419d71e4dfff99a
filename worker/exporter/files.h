/* The audit file store: rolling CSV files per client and UTC day under
 * <export_dir>/audit, written exactly once per Kafka offset.
 *
 * How a batch becomes durable (files_commit):
 *   1. each (client, day) group is written to .staging/, fsync'd;
 *   2. the checkpoint (next offset per partition, next batch number and
 *      the renames still to do) is written to a temporary name, fsync'd
 *      and renamed over `checkpoint`: this rename is the commit point;
 *   3. the staged files are renamed to their final names and the
 *      directories fsync'd.
 * After a crash, files_open() finishes the renames the checkpoint names
 * and deletes everything else in .staging; the consumer resumes at the
 * checkpoint's offsets. So a row is either in a final file and behind the
 * checkpoint's offset, or in neither: never lost, never twice. Kafka's
 * committed offsets only serve partitions the checkpoint does not know.
 * One process owns a directory at a time (an flock on audit/.lock). */
#ifndef SS_EXPORTER_FILES_H
#define SS_EXPORTER_FILES_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/buf.h"
#include "../../common/err.h"

/* One CSV row of a batch; its text is batch->text[off..off+len). */
struct files_row {
        long long client_id;
        int64_t day; /* UTC days since 1970-01-01 */
        int64_t occurred_us;
        long long movement_id;
        size_t off, len;
};

/* The rows read since the last commit. */
struct files_batch {
        struct files_row *rows; /* owned */
        size_t nrows, cap;
        struct buf text;
};

/* Where a partition resumes: the offset after the last one committed. */
struct files_offset {
        char *topic; /* owned */
        int32_t partition;
        int64_t next;
};

struct files_pending {
        char *tmp, *final; /* owned, relative to the audit directory */
};

struct files_store {
        char *root; /* owned: <export_dir>/audit */
        int lock_fd;
        bool bom;
        long long seq; /* number of the next batch */
        /* files_next() may run in another thread than files_commit(): the
         * lock guards offs/noffs, which only files_commit() changes. */
        pthread_mutex_t lock;
        struct files_offset *offs; /* owned */
        size_t noffs;
        struct files_pending *pending; /* owned: renames not yet done */
        size_t npending;
};

/* Appends a row whose text the caller has just appended to b->text
 * (starting at row->off). Returns SS_ERR_NOMEM, leaving b as it was. */
enum ss_err files_batch_push(struct files_batch *b,
                             const struct files_row *row) SS_MUSTCHECK;

/* Forgets every row, keeping the memory for the next batch. */
void files_batch_reset(struct files_batch *b);
void files_batch_free(struct files_batch *b);

/* Opens the store under export_dir (creating directories), waits for the
 * directory lock while *stop stays 0, reads the checkpoint and repairs
 * what a crash left. bom: start each file with a UTF-8 byte-order mark.
 * Returns SS_ERR_UNWRITABLE, SS_ERR_IO (with the path) or SS_ERR_INTERNAL
 * when stopped while waiting. Free with files_close(). */
enum ss_err files_open(struct files_store *st,
                       const char *export_dir,
                       bool bom,
                       volatile sig_atomic_t *stop,
                       struct ss_error *err) SS_MUSTCHECK;

/* The checkpoint's resume offset of topic/partition, or -1 if unknown.
 * Safe to call while another thread runs files_commit(). */
int64_t
files_next(struct files_store *st, const char *topic, int32_t partition);

/* Makes b durable as described above and records offs[0..n) (merged into
 * the checkpoint). On success b is reset; on failure nothing is
 * committed, no staged file is left and b is untouched, so the caller may
 * retry. Returns SS_ERR_DISK_FULL, SS_ERR_UNWRITABLE, SS_ERR_IO or
 * SS_ERR_NOMEM. *files is set to the number of files written. */
enum ss_err files_commit(struct files_store *st,
                         struct files_batch *b,
                         const struct files_offset *offs,
                         size_t n,
                         size_t *files,
                         struct ss_error *err) SS_MUSTCHECK;

/* Releases the lock and memory; st may be zeroed or half-open. */
void files_close(struct files_store *st);

/* Helpers shared with the on-demand export. */

/* Creates root/name unless it exists, fsyncing root when it was made. */
enum ss_err files_mkdir(const char *root,
                        const char *name,
                        struct ss_error *err) SS_MUSTCHECK;

/* fsyncs a directory so the names in it are durable. */
enum ss_err files_sync_dir(const char *path, struct ss_error *err) SS_MUSTCHECK;

/* Maps a failed file operation's errno to our code: ENOSPC/EDQUOT ->
 * SS_ERR_DISK_FULL, permission/read-only/not-a-directory ->
 * SS_ERR_UNWRITABLE, else SS_ERR_IO; the message names what and path. */
enum ss_err
files_errno(int e, const char *what, const char *path, struct ss_error *err);

/* Writes all of p[0..n) to fd, retrying on EINTR and short writes.
 * Returns 0 or the errno. */
int files_write_all(int fd, const void *p, size_t n);

#endif
