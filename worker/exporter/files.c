/* The audit file store: staging, checkpoint, renames and crash repair. */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/timefmt.h"
#include "event.h"

#define STAGING    ".staging"
#define CHECKPOINT "checkpoint"
#define CKPT_TMP   ".checkpoint.tmp"
#define CKPT_MAGIC "stocksync-exporter-checkpoint 1"
#define WRITE_BUF  (256 * 1024)

enum ss_err files_batch_push(struct files_batch *b, const struct files_row *row)
{
        if (b->text.failed)
                return SS_ERR_NOMEM;
        if (b->nrows == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 1024;
                struct files_row *r = realloc(b->rows, cap * sizeof(*r));
                if (r == NULL)
                        return SS_ERR_NOMEM;
                b->rows = r;
                b->cap = cap;
        }
        b->rows[b->nrows++] = *row;
        return SS_OK;
}

void files_batch_reset(struct files_batch *b)
{
        b->nrows = 0;
        if (b->text.failed)
                b->text = (struct buf)BUF_INIT;
        buf_reset(&b->text);
}

void files_batch_free(struct files_batch *b)
{
        free(b->rows);
        buf_free(&b->text);
        memset(b, 0, sizeof(*b));
}

enum ss_err
files_errno(int e, const char *what, const char *path, struct ss_error *err)
{
        enum ss_err code = SS_ERR_IO;
        if (e == ENOSPC || e == EDQUOT)
                code = SS_ERR_DISK_FULL;
        else if (e == EACCES || e == EPERM || e == EROFS || e == ENOTDIR ||
                 e == EEXIST || e == ENOENT)
                code = SS_ERR_UNWRITABLE;
        return ss_error_set(err, code, "%s %s: %s", what, path, strerror(e));
}

int files_write_all(int fd, const void *p, size_t n)
{
        const char *c = p;
        while (n > 0) {
                ssize_t w = write(fd, c, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return errno;
                if (w == 0)
                        return EIO;
                c += w;
                n -= (size_t)w;
        }
        return 0;
}

enum ss_err files_sync_dir(const char *path, struct ss_error *err)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return files_errno(errno, "open directory", path, err);
        int rc = fsync(fd);
        int e = errno;
        close(fd);
        if (rc != 0)
                return files_errno(e, "fsync directory", path, err);
        return SS_OK;
}

enum ss_err
files_mkdir(const char *root, const char *name, struct ss_error *err)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", root, name) >=
            (int)sizeof(path))
                return ss_error_set(err, SS_ERR_IO, "path too long: %s/%s",
                                    root, name);
        if (mkdir(path, 0755) == 0)
                return files_sync_dir(root, err);
        struct stat sb;
        if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
                return SS_OK;
        return files_errno(errno == EEXIST ? ENOTDIR : errno,
                           "create directory", path, err);
}

static bool path_join(char *out, size_t outsz, const char *a, const char *b)
{
        return snprintf(out, outsz, "%s/%s", a, b) < (int)outsz;
}

/* --- the checkpoint ------------------------------------------------ */

static void free_offsets(struct files_offset *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i].topic);
        free(v);
}

static void free_pending(struct files_pending *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].tmp);
                free(v[i].final);
        }
        free(v);
}

/* A name we generated ourselves: no spaces, no "..", not absolute. */
static bool safe_rel(const char *s)
{
        if (*s == '\0' || *s == '/' || strstr(s, "..") != NULL)
                return false;
        for (; *s; s++)
                if (*s <= ' ' || *s == 0x7f)
                        return false;
        return true;
}

static enum ss_err
ckpt_line(struct files_store *st, char *line, struct ss_error *err)
{
        char a[PATH_MAX], b[PATH_MAX];
        long long x, y;
        if (sscanf(line, "seq %lld", &x) == 1 && x >= 0) {
                st->seq = x;
                return SS_OK;
        }
        if (sscanf(line, "offset %255s %lld %lld", a, &x, &y) == 3 && x >= 0 &&
            x <= INT32_MAX && y >= 0) {
                struct files_offset *v =
                        realloc(st->offs, (st->noffs + 1) * sizeof(*v));
                if (v == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                st->offs = v;
                v[st->noffs] =
                        (struct files_offset){ strdup(a), (int32_t)x, y };
                if (v[st->noffs].topic == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                st->noffs++;
                return SS_OK;
        }
        if (sscanf(line, "pending %4095s %4095s", a, b) == 2 && safe_rel(a) &&
            safe_rel(b)) {
                struct files_pending *v =
                        realloc(st->pending, (st->npending + 1) * sizeof(*v));
                if (v == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                st->pending = v;
                v[st->npending] =
                        (struct files_pending){ strdup(a), strdup(b) };
                st->npending++;
                if (v[st->npending - 1].tmp == NULL ||
                    v[st->npending - 1].final == NULL)
                        return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                return SS_OK;
        }
        return ss_error_set(err, SS_ERR_IO, "%s/%s: unreadable line '%.60s'",
                            st->root, CHECKPOINT, line);
}

static enum ss_err ckpt_load(struct files_store *st, struct ss_error *err)
{
        char path[PATH_MAX];
        if (!path_join(path, sizeof(path), st->root, CHECKPOINT))
                return ss_error_set(err, SS_ERR_IO, "path too long");
        FILE *f = fopen(path, "re");
        if (f == NULL && errno == ENOENT)
                return SS_OK; /* a fresh directory */
        if (f == NULL)
                return files_errno(errno, "open", path, err);

        char line[2 * PATH_MAX + 16];
        enum ss_err rc = SS_OK;
        bool magic = false, end = false;
        while (rc == SS_OK && fgets(line, sizeof(line), f) != NULL) {
                line[strcspn(line, "\n")] = '\0';
                if (!magic) {
                        magic = strcmp(line, CKPT_MAGIC) == 0;
                        if (!magic)
                                rc = ss_error_set(err, SS_ERR_IO,
                                                  "%s: not a checkpoint", path);
                } else if (strcmp(line, "end") == 0) {
                        end = true;
                        break;
                } else {
                        rc = ckpt_line(st, line, err);
                }
        }
        fclose(f);
        if (rc == SS_OK && !end)
                rc = ss_error_set(err, SS_ERR_IO, "%s: cut short", path);
        return rc;
}

/* Writes the checkpoint with offs/pending to a temporary name, fsyncs it
 * and renames it into place: the commit point of a batch. */
static enum ss_err ckpt_write(const struct files_store *st,
                              long long seq,
                              const struct files_offset *offs,
                              size_t noffs,
                              const struct files_pending *pend,
                              size_t npend,
                              struct ss_error *err)
{
        struct buf b = BUF_INIT;
        buf_printf(&b, "%s\nseq %lld\n", CKPT_MAGIC, seq);
        for (size_t i = 0; i < noffs; i++)
                buf_printf(&b, "offset %s %" PRId32 " %" PRId64 "\n",
                           offs[i].topic, offs[i].partition, offs[i].next);
        for (size_t i = 0; i < npend; i++)
                buf_printf(&b, "pending %s %s\n", pend[i].tmp, pend[i].final);
        buf_puts(&b, "end\n");
        if (buf_str(&b) == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        char tmp[PATH_MAX], path[PATH_MAX];
        enum ss_err rc = SS_OK;
        if (!path_join(tmp, sizeof(tmp), st->root, CKPT_TMP) ||
            !path_join(path, sizeof(path), st->root, CHECKPOINT)) {
                rc = ss_error_set(err, SS_ERR_IO, "path too long");
                goto out;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                rc = files_errno(errno, "create", tmp, err);
                goto out;
        }
        int e = files_write_all(fd, b.data, b.len);
        if (e == 0 && fsync(fd) != 0)
                e = errno;
        close(fd);
        if (e == 0 && rename(tmp, path) != 0)
                e = errno;
        if (e != 0) {
                unlink(tmp);
                rc = files_errno(e, "write checkpoint", tmp, err);
                goto out;
        }
        rc = files_sync_dir(st->root, err);
out:
        buf_free(&b);
        return rc;
}

/* --- renames and repair -------------------------------------------- */

/* Makes the directories of a final name "client-N/DAY/file.csv". */
static enum ss_err final_dirs(const struct files_store *st,
                              const char *final,
                              char *dir,
                              size_t dirsz,
                              struct ss_error *err)
{
        const char *slash = strchr(final, '/');
        const char *last = strrchr(final, '/');
        if (slash == NULL || last == slash)
                return ss_error_set(err, SS_ERR_INTERNAL,
                                    "unexpected file name %s", final);
        char client[128];
        snprintf(client, sizeof(client), "%.*s", (int)(slash - final), final);
        enum ss_err rc = files_mkdir(st->root, client, err);
        if (rc != SS_OK)
                return rc;
        char croot[PATH_MAX];
        char day[64];
        snprintf(day, sizeof(day), "%.*s", (int)(last - slash - 1), slash + 1);
        if (!path_join(croot, sizeof(croot), st->root, client) ||
            !path_join(dir, dirsz, croot, day))
                return ss_error_set(err, SS_ERR_IO, "path too long");
        return files_mkdir(croot, day, err);
}

/* Renames every pending staged file to its final name; a file already
 * there was renamed before a crash. On success the list is emptied. */
static enum ss_err finish_pending(struct files_store *st, struct ss_error *err)
{
        char dir[PATH_MAX] = "", last_dir[PATH_MAX] = "";
        for (size_t i = 0; i < st->npending; i++) {
                const struct files_pending *p = &st->pending[i];
                char tmp[PATH_MAX], final[PATH_MAX];
                if (!path_join(tmp, sizeof(tmp), st->root, p->tmp) ||
                    !path_join(final, sizeof(final), st->root, p->final))
                        return ss_error_set(err, SS_ERR_IO, "path too long");
                enum ss_err rc =
                        final_dirs(st, p->final, dir, sizeof(dir), err);
                if (rc != SS_OK)
                        return rc;
                if (rename(tmp, final) != 0) {
                        int e = errno;
                        if (e != ENOENT)
                                return files_errno(e, "rename", tmp, err);
                        if (access(final, F_OK) != 0) {
                                /* The checkpoint promised this file. */
                                struct log_line l;
                                log_begin(&l, LOG_ERROR, "audit_file_lost");
                                log_kv(&l, "code", ss_err_name(SS_ERR_IO));
                                log_kv(&l, "file", final);
                                log_end(&l);
                        }
                }
                /* Rows of one batch mostly share few directories. */
                if (strcmp(dir, last_dir) != 0) {
                        rc = files_sync_dir(dir, err);
                        if (rc != SS_OK)
                                return rc;
                        memcpy(last_dir, dir, sizeof(dir));
                }
        }
        char staging[PATH_MAX];
        snprintf(staging, sizeof(staging), "%s/%s", st->root, STAGING);
        if (st->npending > 0) {
                enum ss_err rc = files_sync_dir(staging, err);
                if (rc != SS_OK)
                        return rc;
        }
        free_pending(st->pending, st->npending);
        st->pending = NULL;
        st->npending = 0;
        return SS_OK;
}

/* Deletes whatever a batch that never committed left in staging. */
static enum ss_err clear_staging(struct files_store *st, struct ss_error *err)
{
        char staging[PATH_MAX];
        snprintf(staging, sizeof(staging), "%s/%s", st->root, STAGING);
        DIR *d = opendir(staging);
        if (d == NULL)
                return files_errno(errno, "open directory", staging, err);
        struct dirent *e;
        size_t removed = 0;
        while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                        continue;
                char path[PATH_MAX];
                if (path_join(path, sizeof(path), staging, e->d_name) &&
                    unlink(path) == 0)
                        removed++;
        }
        closedir(d);
        if (removed > 0)
                log_msg(LOG_INFO, "audit_staging_cleared", "files=%zu",
                        removed);
        return SS_OK;
}

static enum ss_err take_lock(struct files_store *st,
                             volatile sig_atomic_t *stop,
                             struct ss_error *err)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/.lock", st->root);
        st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (st->lock_fd < 0)
                return files_errno(errno, "open", path, err);
        bool told = false;
        while (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
                if (errno != EWOULDBLOCK && errno != EINTR)
                        return files_errno(errno, "lock", path, err);
                if (!told) {
                        log_msg(LOG_WARN, "audit_dir_locked", "waiting=1");
                        told = true;
                }
                if (stop != NULL && *stop)
                        return ss_error_set(err, SS_ERR_INTERNAL,
                                            "stopped while waiting for %s",
                                            path);
                nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL);
        }
        return SS_OK;
}

enum ss_err files_open(struct files_store *st,
                       const char *export_dir,
                       bool bom,
                       volatile sig_atomic_t *stop,
                       struct ss_error *err)
{
        memset(st, 0, sizeof(*st));
        pthread_mutex_init(&st->lock, NULL);
        st->lock_fd = -1;
        st->bom = bom;
        if (mkdir(export_dir, 0755) != 0 && errno != EEXIST)
                return files_errno(errno, "create directory", export_dir, err);
        enum ss_err rc = files_mkdir(export_dir, "audit", err);
        if (rc != SS_OK)
                return rc;
        size_t n = strlen(export_dir) + sizeof("/audit");
        st->root = malloc(n);
        if (st->root == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        snprintf(st->root, n, "%s/audit", export_dir);

        rc = files_mkdir(st->root, STAGING, err);
        if (rc == SS_OK)
                rc = take_lock(st, stop, err);
        if (rc == SS_OK)
                rc = ckpt_load(st, err);
        if (rc == SS_OK)
                rc = finish_pending(st, err);
        if (rc == SS_OK)
                rc = clear_staging(st, err);
        return rc;
}

int64_t files_next(struct files_store *st, const char *topic, int32_t partition)
{
        int64_t next = -1;
        pthread_mutex_lock(&st->lock);
        for (size_t i = 0; i < st->noffs; i++)
                if (st->offs[i].partition == partition &&
                    strcmp(st->offs[i].topic, topic) == 0)
                        next = st->offs[i].next;
        pthread_mutex_unlock(&st->lock);
        return next;
}

void files_close(struct files_store *st)
{
        if (st->lock_fd >= 0)
                close(st->lock_fd);
        free(st->root);
        free_offsets(st->offs, st->noffs);
        free_pending(st->pending, st->npending);
        pthread_mutex_destroy(&st->lock);
        memset(st, 0, sizeof(*st));
        /* Closing twice, or after a failed open, stays harmless. */
        pthread_mutex_init(&st->lock, NULL);
        st->lock_fd = -1;
}

/* --- committing a batch -------------------------------------------- */

static int row_cmp(const void *a, const void *b)
{
        const struct files_row *x = a, *y = b;
        if (x->client_id != y->client_id)
                return x->client_id < y->client_id ? -1 : 1;
        if (x->day != y->day)
                return x->day < y->day ? -1 : 1;
        if (x->occurred_us != y->occurred_us)
                return x->occurred_us < y->occurred_us ? -1 : 1;
        if (x->movement_id != y->movement_id)
                return x->movement_id < y->movement_id ? -1 : 1;
        return 0;
}

/* Buffered writes of one staged file. */
struct out {
        int fd;
        size_t len;
        char *buf; /* WRITE_BUF bytes, shared by every file of a batch */
        int e;     /* first errno */
};

static void out_put(struct out *o, const char *p, size_t n)
{
        if (o->e != 0)
                return;
        if (o->len + n > WRITE_BUF) {
                o->e = files_write_all(o->fd, o->buf, o->len);
                o->len = 0;
                if (o->e == 0 && n > WRITE_BUF)
                        o->e = files_write_all(o->fd, p, n);
                if (o->e != 0 || n > WRITE_BUF)
                        return;
        }
        memcpy(o->buf + o->len, p, n);
        o->len += n;
}

/* Writes rows[0..n) (one client and day) to a staged file and fsyncs
 * it. */
static enum ss_err stage_group(const struct files_store *st,
                               const struct files_batch *b,
                               const struct files_row *rows,
                               size_t n,
                               const char *tmp,
                               char *wbuf,
                               struct ss_error *err)
{
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return files_errno(errno, "create", tmp, err);
        struct out o = { fd, 0, wbuf, 0 };
        if (st->bom)
                out_put(&o, "\xEF\xBB\xBF", 3);
        out_put(&o, event_csv_header, strlen(event_csv_header));
        for (size_t i = 0; i < n; i++)
                out_put(&o, b->text.data + rows[i].off, rows[i].len);
        if (o.e == 0 && o.len > 0)
                o.e = files_write_all(fd, o.buf, o.len);
        if (o.e == 0 && fsync(fd) != 0)
                o.e = errno;
        if (close(fd) != 0 && o.e == 0)
                o.e = errno;
        if (o.e != 0)
                return files_errno(o.e, "write", tmp, err);
        return SS_OK;
}

/* The checkpoint's offsets with offs[0..n) merged in: a new array. */
static struct files_offset *merge_offsets(const struct files_store *st,
                                          const struct files_offset *offs,
                                          size_t n,
                                          size_t *out_n)
{
        struct files_offset *v = calloc(st->noffs + n + 1, sizeof(*v));
        if (v == NULL)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < st->noffs; i++) {
                v[k] = st->offs[i];
                v[k].topic = strdup(st->offs[i].topic);
                if (v[k++].topic == NULL)
                        goto fail;
        }
        for (size_t i = 0; i < n; i++) {
                size_t j = 0;
                while (j < k && (v[j].partition != offs[i].partition ||
                                 strcmp(v[j].topic, offs[i].topic) != 0))
                        j++;
                if (j == k) {
                        v[k].topic = strdup(offs[i].topic);
                        v[k].partition = offs[i].partition;
                        if (v[k++].topic == NULL)
                                goto fail;
                }
                v[j].next = offs[i].next;
        }
        *out_n = k;
        return v;
fail:
        free_offsets(v, k);
        return NULL;
}

static void
unstage(const struct files_store *st, const struct files_pending *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                char tmp[PATH_MAX];
                if (path_join(tmp, sizeof(tmp), st->root, p[i].tmp))
                        unlink(tmp);
        }
}

/* Stages every (client, day) group of b; fills pend[0..*npend). */
static enum ss_err stage_all(struct files_store *st,
                             struct files_batch *b,
                             struct files_pending *pend,
                             size_t *npend,
                             struct ss_error *err)
{
        char *wbuf = malloc(WRITE_BUF);
        if (wbuf == NULL)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");
        enum ss_err rc = SS_OK;
        for (size_t i = 0; i < b->nrows && rc == SS_OK;) {
                size_t j = i + 1;
                while (j < b->nrows &&
                       b->rows[j].client_id == b->rows[i].client_id &&
                       b->rows[j].day == b->rows[i].day)
                        j++;

                char day[11], rel[PATH_MAX], fin[PATH_MAX], tmp[PATH_MAX];
                timefmt_day_str(b->rows[i].day, day);
                snprintf(rel, sizeof(rel), "%s/%012lld-%06zu.tmp", STAGING,
                         st->seq, *npend);
                snprintf(fin, sizeof(fin),
                         "client-%lld/%s/movements-%lld-%s-%012lld.csv",
                         b->rows[i].client_id, day, b->rows[i].client_id, day,
                         st->seq);
                struct files_pending *p = &pend[*npend];
                p->tmp = strdup(rel);
                p->final = strdup(fin);
                if (p->tmp == NULL || p->final == NULL) {
                        free(p->tmp);
                        free(p->final);
                        rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                        break;
                }
                (*npend)++;
                char dir[PATH_MAX];
                rc = final_dirs(st, fin, dir, sizeof(dir), err);
                if (rc == SS_OK && !path_join(tmp, sizeof(tmp), st->root, rel))
                        rc = ss_error_set(err, SS_ERR_IO, "path too long");
                if (rc == SS_OK)
                        rc = stage_group(st, b, b->rows + i, j - i, tmp, wbuf,
                                         err);
                i = j;
        }
        free(wbuf);
        if (rc == SS_OK && *npend > 0) {
                char staging[PATH_MAX];
                snprintf(staging, sizeof(staging), "%s/%s", st->root, STAGING);
                rc = files_sync_dir(staging, err);
        }
        return rc;
}

enum ss_err files_commit(struct files_store *st,
                         struct files_batch *b,
                         const struct files_offset *offs,
                         size_t n,
                         size_t *files,
                         struct ss_error *err)
{
        struct files_pending *pend = NULL;
        size_t npend = 0, nmerged = 0;
        struct files_offset *merged = NULL;
        *files = 0;

        /* A previous batch committed but could not finish its renames:
         * they must be done before the checkpoint forgets them. */
        enum ss_err rc = finish_pending(st, err);
        if (rc != SS_OK)
                return rc;
        if (b->text.failed)
                return ss_error_set(err, SS_ERR_NOMEM, "out of memory");

        qsort(b->rows, b->nrows, sizeof(*b->rows), row_cmp);
        pend = calloc(b->nrows + 1, sizeof(*pend));
        merged = merge_offsets(st, offs, n, &nmerged);
        if (pend == NULL || merged == NULL) {
                rc = ss_error_set(err, SS_ERR_NOMEM, "out of memory");
                goto fail;
        }
        rc = stage_all(st, b, pend, &npend, err);
        if (rc != SS_OK)
                goto fail;
        rc = ckpt_write(st, st->seq + 1, merged, nmerged, pend, npend, err);
        if (rc != SS_OK)
                goto fail;

        /* Committed: the checkpoint now owns offsets and renames. */
        pthread_mutex_lock(&st->lock);
        free_offsets(st->offs, st->noffs);
        st->offs = merged;
        st->noffs = nmerged;
        pthread_mutex_unlock(&st->lock);
        st->pending = pend;
        st->npending = npend;
        st->seq++;
        *files = npend;
        files_batch_reset(b);

        struct ss_error later = { 0 };
        if (finish_pending(st, &later) != SS_OK) {
                /* Retried before the next batch; see files_commit(). */
                struct log_line l;
                log_begin(&l, LOG_ERROR, "audit_rename_failed");
                log_err(&l, &later);
                log_end(&l);
        }
        return SS_OK;
fail:
        unstage(st, pend, npend);
        free_pending(pend, npend);
        free_offsets(merged, nmerged);
        return rc;
}
