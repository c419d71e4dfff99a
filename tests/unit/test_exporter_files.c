/* exporter files: staging, the checkpoint commit and crash repair, on a
 * scratch directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../common/timefmt.h"
#include "../../worker/exporter/event.h"
#include "../../worker/exporter/files.h"

#define DAY_US (86400LL * 1000000)

/* files_offset owns its topic elsewhere; here a static one will do. */
static char topic_t[] = "t";

struct fixture {
        char dir[64];
        char path[512];
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        if (f == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/ss-files-XXXXXX");
        if (mkdtemp(f->dir) == NULL)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static const char *at(struct fixture *f, const char *rel)
{
        snprintf(f->path, sizeof(f->path), "%s/audit/%s", f->dir, rel);
        return f->path;
}

static char *slurp(const char *path)
{
        FILE *fp = fopen(path, "rb");
        if (fp == NULL)
                return NULL;
        struct buf b = BUF_INIT;
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
                buf_append(&b, chunk, n);
        fclose(fp);
        return buf_steal(&b);
}

static void
add_row(struct files_batch *b, long long client, int64_t us, long long id)
{
        struct files_row row = {
                client, timefmt_day(us), us, id, b->text.len, 0
        };
        buf_printf(&b->text, "%lld,row\n", id);
        row.len = b->text.len - row.off;
        assert_int_equal(files_batch_push(b, &row), SS_OK);
}

static size_t count_entries(const char *dir)
{
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
        FILE *p = popen(cmd, "r");
        size_t n = 0;
        if (p != NULL) {
                if (fscanf(p, "%zu", &n) != 1)
                        n = 999;
                pclose(p);
        }
        return n;
}

static void test_commit_groups_and_orders(void **state)
{
        struct fixture *f = *state;
        struct files_store st;
        struct ss_error err = { 0 };
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_OK);
        assert_int_equal(files_next(&st, "t", 0), -1);

        int64_t day = 19813 * DAY_US; /* 2024-03-31 */
        struct files_batch b = { 0 };
        add_row(&b, 2, day + 5, 30);
        add_row(&b, 1, day + 7, 11);
        add_row(&b, 1, day + 3, 12); /* earlier: first in the file */
        add_row(&b, 1, day - 1, 10); /* late event of the day before */
        add_row(&b, 1, day + 7, 9);  /* same time: id order */
        struct files_offset offs[] = { { topic_t, 0, 41 }, { topic_t, 3, 7 } };
        size_t files = 0;
        assert_int_equal(files_commit(&st, &b, offs, 2, &files, &err), SS_OK);
        assert_int_equal(files, 3);
        assert_int_equal(b.nrows, 0);
        assert_int_equal(files_next(&st, "t", 0), 41);
        assert_int_equal(files_next(&st, "t", 3), 7);

        char *c1 = slurp(at(f, "client-1/2024-03-31/"
                               "movements-1-2024-03-31-000000000000.csv"));
        assert_non_null(c1);
        char want[512];
        snprintf(want, sizeof(want), "%s12,row\n9,row\n11,row\n",
                 event_csv_header);
        assert_string_equal(c1, want);
        free(c1);
        char *c0 = slurp(at(f, "client-1/2024-03-30/"
                               "movements-1-2024-03-30-000000000000.csv"));
        assert_non_null(c0);
        free(c0);
        char *c2 = slurp(at(f, "client-2/2024-03-31/"
                               "movements-2-2024-03-31-000000000000.csv"));
        assert_non_null(c2);
        free(c2);
        assert_int_equal(count_entries(at(f, ".staging")), 0);

        /* A second batch gets the next number; offsets merge. */
        add_row(&b, 1, day + 100, 50);
        struct files_offset more[] = { { topic_t, 0, 42 } };
        assert_int_equal(files_commit(&st, &b, more, 1, &files, &err), SS_OK);
        assert_int_equal(access(at(f, "client-1/2024-03-31/movements-1-"
                                      "2024-03-31-000000000001.csv"),
                                F_OK),
                         0);
        files_close(&st);

        /* Reopened, the checkpoint is what it said. */
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_OK);
        assert_int_equal(files_next(&st, "t", 0), 42);
        assert_int_equal(files_next(&st, "t", 3), 7);
        assert_int_equal(st.seq, 2);
        files_close(&st);
        files_batch_free(&b);
}

static void test_bom(void **state)
{
        struct fixture *f = *state;
        struct files_store st;
        struct ss_error err = { 0 };
        assert_int_equal(files_open(&st, f->dir, true, NULL, &err), SS_OK);
        struct files_batch b = { 0 };
        add_row(&b, 1, 0, 1);
        struct files_offset offs[] = { { topic_t, 0, 1 } };
        size_t files;
        assert_int_equal(files_commit(&st, &b, offs, 1, &files, &err), SS_OK);
        char *c = slurp(at(f, "client-1/1970-01-01/"
                              "movements-1-1970-01-01-000000000000.csv"));
        assert_non_null(c);
        assert_memory_equal(c, "\xEF\xBB\xBFmovement_id,", 15);
        /* Exactly one mark, at the very start. */
        assert_null(strstr(c + 3, "\xEF\xBB\xBF"));
        free(c);
        files_close(&st);
        files_batch_free(&b);
}

static void write_text(const char *path, const char *text)
{
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
}

/* A crash after the checkpoint's rename but before the staged files were
 * renamed: opening finishes the renames. A crash before the checkpoint:
 * the staged files are thrown away and the offsets stay behind them. */
static void test_repair_after_crash(void **state)
{
        struct fixture *f = *state;
        struct files_store st;
        struct ss_error err = { 0 };
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_OK);
        files_close(&st);

        write_text(at(f, ".staging/000000000004-000000.tmp"), "committed\n");
        write_text(at(f, ".staging/000000000005-000000.tmp"), "uncommitted\n");
        write_text(at(f, "checkpoint"),
                   "stocksync-exporter-checkpoint 1\nseq 5\n"
                   "offset t 0 100\n"
                   "pending .staging/000000000004-000000.tmp "
                   "client-3/2024-01-02/movements-3-2024-01-02-"
                   "000000000004.csv\nend\n");
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_OK);
        char *c = slurp(at(f, "client-3/2024-01-02/movements-3-2024-01-02-"
                              "000000000004.csv"));
        assert_non_null(c);
        assert_string_equal(c, "committed\n");
        free(c);
        assert_int_equal(count_entries(at(f, ".staging")), 0);
        assert_int_equal(files_next(&st, "t", 0), 100);
        assert_int_equal(st.seq, 5);
        files_close(&st);

        /* Opening again is harmless: the file is there already. */
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_OK);
        files_close(&st);
}

static void test_bad_checkpoint(void **state)
{
        struct fixture *f = *state;
        struct files_store st;
        struct ss_error err = { 0 };
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_OK);
        files_close(&st);
        write_text(at(f, "checkpoint"),
                   "stocksync-exporter-checkpoint 1\nseq 5\n");
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_ERR_IO);
        files_close(&st);
        write_text(at(f, "checkpoint"),
                   "stocksync-exporter-checkpoint 1\npending /etc/x "
                   "../../y\nend\n");
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_ERR_IO);
        files_close(&st);
}

/* A directory that cannot be made fails the batch, leaves nothing staged,
 * keeps the rows, and the retry succeeds once the cause is gone. */
static void test_failure_keeps_batch(void **state)
{
        struct fixture *f = *state;
        struct files_store st;
        struct ss_error err = { 0 };
        assert_int_equal(files_open(&st, f->dir, false, NULL, &err), SS_OK);
        write_text(at(f, "client-7"), "a file where a directory goes\n");

        struct files_batch b = { 0 };
        add_row(&b, 6, 0, 1);
        add_row(&b, 7, 0, 2);
        struct files_offset offs[] = { { topic_t, 1, 3 } };
        size_t files = 9;
        assert_int_equal(files_commit(&st, &b, offs, 1, &files, &err),
                         SS_ERR_UNWRITABLE);
        assert_int_equal(b.nrows, 2);
        assert_int_equal(files_next(&st, "t", 1), -1);
        assert_int_equal(count_entries(at(f, ".staging")), 0);
        assert_int_not_equal(access(at(f, "client-6/1970-01-01/movements-6-"
                                          "1970-01-01-000000000000.csv"),
                                    F_OK),
                             0);

        assert_int_equal(unlink(at(f, "client-7")), 0);
        assert_int_equal(files_commit(&st, &b, offs, 1, &files, &err), SS_OK);
        assert_int_equal(files, 2);
        assert_int_equal(files_next(&st, "t", 1), 3);
        files_close(&st);
        files_batch_free(&b);
}

static void test_unwritable_root(void **state)
{
        struct fixture *f = *state;
        char blocker[128];
        snprintf(blocker, sizeof(blocker), "%s/blocked", f->dir);
        write_text(blocker, "x");
        struct files_store st;
        struct ss_error err = { 0 };
        assert_int_equal(files_open(&st, blocker, false, NULL, &err),
                         SS_ERR_UNWRITABLE);
        files_close(&st);
}

/* One process per directory: a second opener waits, and gives up when
 * told to stop. */
static void test_lock(void **state)
{
        struct fixture *f = *state;
        struct files_store a, b;
        struct ss_error err = { 0 };
        assert_int_equal(files_open(&a, f->dir, false, NULL, &err), SS_OK);
        volatile sig_atomic_t stop = 1;
        assert_int_equal(files_open(&b, f->dir, false, &stop, &err),
                         SS_ERR_INTERNAL);
        files_close(&b);
        files_close(&a);
        stop = 0;
        assert_int_equal(files_open(&b, f->dir, false, &stop, &err), SS_OK);
        files_close(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_commit_groups_and_orders,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_bom, setup, teardown),
                cmocka_unit_test_setup_teardown(test_repair_after_crash, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_bad_checkpoint, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_failure_keeps_batch, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unwritable_root, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
