/* The commit watermark (worker/offsets): a partition's committable offset
 * never passes a message that has not finished, whatever order messages
 * finish in (case C07), gaps in the offsets do not block it, and a revoked
 * partition leaves nothing behind. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../worker/offsets.h"

#define T "stock.sync.requests"

static int64_t watermark(struct offsets *t, const char *topic, int32_t part)
{
        int64_t off = -12345;
        assert_true(offsets_committable(t, topic, part, &off));
        return off;
}

static void nothing_before_first_message(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_non_null(t);
        int64_t off = 77;
        assert_false(offsets_committable(t, T, 0, &off));
        assert_int_equal(off, 77);
        assert_int_equal(offsets_running(t, T, 0), 0);
        assert_true(offsets_cancelled(t, T, 0));

        rd_kafka_topic_partition_list_t *due = offsets_due(t, NULL, false);
        assert_non_null(due);
        assert_int_equal(due->cnt, 0);
        rd_kafka_topic_partition_list_destroy(due);
        offsets_free(t);
        offsets_free(NULL);
}

static void in_order(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        for (int64_t o = 10; o <= 12; o++)
                assert_int_equal(offsets_begin(t, T, 0, o), SS_OK);
        assert_int_equal(watermark(t, T, 0), 10);
        assert_int_equal(offsets_running(t, T, 0), 3);
        assert_false(offsets_cancelled(t, T, 0));

        assert_int_equal(offsets_done(t, T, 0, 10), SS_OK);
        assert_int_equal(watermark(t, T, 0), 11);
        assert_int_equal(offsets_done(t, T, 0, 11), SS_OK);
        assert_int_equal(watermark(t, T, 0), 12);
        assert_int_equal(offsets_done(t, T, 0, 12), SS_OK);
        assert_int_equal(watermark(t, T, 0), 13);
        assert_int_equal(offsets_running(t, T, 0), 0);
        offsets_free(t);
}

/* C07: 10, 11 and 12 in flight; 12 finishes while 11 runs. */
static void out_of_order_never_passes_unfinished(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        for (int64_t o = 10; o <= 12; o++)
                assert_int_equal(offsets_begin(t, T, 0, o), SS_OK);

        assert_int_equal(offsets_done(t, T, 0, 12), SS_OK);
        assert_int_equal(watermark(t, T, 0), 10);
        assert_int_equal(offsets_done(t, T, 0, 10), SS_OK);
        assert_int_equal(watermark(t, T, 0), 11);
        assert_int_equal(offsets_running(t, T, 0), 1);

        /* More arrive behind the slow one and finish: still 11. */
        for (int64_t o = 13; o <= 20; o++) {
                assert_int_equal(offsets_begin(t, T, 0, o), SS_OK);
                assert_int_equal(offsets_done(t, T, 0, o), SS_OK);
                assert_int_equal(watermark(t, T, 0), 11);
        }

        assert_int_equal(offsets_done(t, T, 0, 11), SS_OK);
        assert_int_equal(watermark(t, T, 0), 21);
        offsets_free(t);
}

/* Offsets that never reach the consumer (compaction, transaction markers)
 * must not hold the watermark. */
static void gaps_do_not_block(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 3, 10), SS_OK);
        assert_int_equal(offsets_begin(t, T, 3, 13), SS_OK);
        assert_int_equal(offsets_begin(t, T, 3, 20), SS_OK);

        assert_int_equal(offsets_done(t, T, 3, 13), SS_OK);
        assert_int_equal(watermark(t, T, 3), 10);
        assert_int_equal(offsets_done(t, T, 3, 10), SS_OK);
        assert_int_equal(watermark(t, T, 3), 20);
        assert_int_equal(offsets_done(t, T, 3, 20), SS_OK);
        assert_int_equal(watermark(t, T, 3), 21);
        offsets_free(t);
}

static void unknown_or_repeated_done_is_refused(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 0, 5), SS_OK);
        assert_int_equal(offsets_begin(t, T, 0, 6), SS_OK);

        assert_int_equal(offsets_done(t, T, 0, 4), SS_ERR_NOT_FOUND);
        assert_int_equal(offsets_done(t, T, 0, 7), SS_ERR_NOT_FOUND);
        assert_int_equal(offsets_done(t, T, 1, 5), SS_ERR_NOT_FOUND);
        assert_int_equal(offsets_done(t, "other", 0, 5), SS_ERR_NOT_FOUND);
        assert_int_equal(watermark(t, T, 0), 5);

        assert_int_equal(offsets_done(t, T, 0, 6), SS_OK);
        assert_int_equal(offsets_done(t, T, 0, 6), SS_ERR_NOT_FOUND);
        assert_int_equal(offsets_abandon(t, T, 0, 6), SS_ERR_NOT_FOUND);
        assert_int_equal(offsets_running(t, T, 0), 1);
        assert_int_equal(watermark(t, T, 0), 5);
        offsets_free(t);
}

/* An abandoned message (shutdown or revoke before it ran) stops counting
 * as running but keeps the watermark at itself. */
static void abandoned_holds_watermark(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        for (int64_t o = 5; o <= 8; o++)
                assert_int_equal(offsets_begin(t, T, 0, o), SS_OK);

        assert_int_equal(offsets_done(t, T, 0, 5), SS_OK);
        assert_int_equal(offsets_abandon(t, T, 0, 6), SS_OK);
        assert_int_equal(offsets_abandon(t, T, 0, 8), SS_OK);
        assert_int_equal(offsets_done(t, T, 0, 7), SS_OK);
        assert_int_equal(offsets_running(t, T, 0), 0);
        assert_int_equal(watermark(t, T, 0), 6);
        assert_true(offsets_wait_idle(t, T, 0, 0));
        offsets_free(t);
}

static void partitions_are_independent(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 0, 100), SS_OK);
        assert_int_equal(offsets_begin(t, T, 1, 100), SS_OK);
        assert_int_equal(offsets_begin(t, "b", 0, 7), SS_OK);

        assert_int_equal(offsets_done(t, T, 1, 100), SS_OK);
        assert_int_equal(watermark(t, T, 0), 100);
        assert_int_equal(watermark(t, T, 1), 101);
        assert_int_equal(watermark(t, "b", 0), 7);
        assert_int_equal(offsets_running(t, T, 0), 1);
        assert_int_equal(offsets_running(t, T, 1), 0);
        offsets_free(t);
}

/* Revoke: cancel, then forget. Late completions are refused and the
 * partition is no longer offered for commit. */
static void revoke_forgets_partition(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 0, 1), SS_OK);
        assert_int_equal(offsets_begin(t, T, 0, 2), SS_OK);
        assert_int_equal(offsets_begin(t, T, 1, 9), SS_OK);

        offsets_cancel(t, T, 0);
        assert_true(offsets_cancelled(t, T, 0));
        assert_false(offsets_cancelled(t, T, 1));
        offsets_cancel(t, T, 42); /* unknown: ignored */

        assert_int_equal(offsets_done(t, T, 0, 1), SS_OK);
        offsets_forget(t, T, 0);
        assert_int_equal(offsets_done(t, T, 0, 2), SS_ERR_NOT_FOUND);
        int64_t off;
        assert_false(offsets_committable(t, T, 0, &off));
        assert_int_equal(offsets_running(t, T, 0), 0);

        rd_kafka_topic_partition_list_t *due = offsets_due(t, NULL, false);
        assert_int_equal(due->cnt, 1);
        assert_int_equal(due->elems[0].partition, 1);
        assert_int_equal(due->elems[0].offset, 9);
        rd_kafka_topic_partition_list_destroy(due);

        /* Assigned again later: a fresh start, not cancelled. */
        assert_int_equal(offsets_begin(t, T, 0, 50), SS_OK);
        assert_false(offsets_cancelled(t, T, 0));
        assert_int_equal(watermark(t, T, 0), 50);
        offsets_forget(t, T, 5); /* unknown: ignored */
        offsets_free(t);
}

static void due_offers_only_moved_watermarks(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 0, 10), SS_OK);
        assert_int_equal(offsets_begin(t, T, 1, 20), SS_OK);
        assert_int_equal(offsets_done(t, T, 0, 10), SS_OK);

        rd_kafka_topic_partition_list_t *due = offsets_due(t, NULL, false);
        assert_int_equal(due->cnt, 2);
        offsets_committed(t, due);
        rd_kafka_topic_partition_list_destroy(due);

        due = offsets_due(t, NULL, false);
        assert_int_equal(due->cnt, 0);
        rd_kafka_topic_partition_list_destroy(due);

        /* A final commit asks for everything, committed or not. */
        due = offsets_due(t, NULL, true);
        assert_int_equal(due->cnt, 2);
        rd_kafka_topic_partition_list_destroy(due);

        /* Partition 1 finishes: only it is due, at 21. */
        assert_int_equal(offsets_done(t, T, 1, 20), SS_OK);
        due = offsets_due(t, NULL, false);
        assert_int_equal(due->cnt, 1);
        assert_string_equal(due->elems[0].topic, T);
        assert_int_equal(due->elems[0].partition, 1);
        assert_int_equal(due->elems[0].offset, 21);

        /* The broker refuses it: it is offered again. */
        due->elems[0].err = RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
        offsets_committed(t, due);
        offsets_commit_failed(t, due);
        rd_kafka_topic_partition_list_destroy(due);
        due = offsets_due(t, NULL, false);
        assert_int_equal(due->cnt, 1);
        assert_int_equal(due->elems[0].offset, 21);
        rd_kafka_topic_partition_list_destroy(due);
        offsets_free(t);
}

/* A failure report for an older commit must not undo a newer success. */
static void stale_failure_keeps_newer_commit(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 0, 1), SS_OK);
        assert_int_equal(offsets_done(t, T, 0, 1), SS_OK);
        rd_kafka_topic_partition_list_t *old = offsets_due(t, NULL, false);
        offsets_committed(t, old);

        assert_int_equal(offsets_begin(t, T, 0, 2), SS_OK);
        assert_int_equal(offsets_done(t, T, 0, 2), SS_OK);
        rd_kafka_topic_partition_list_t *cur = offsets_due(t, NULL, false);
        assert_int_equal(cur->elems[0].offset, 3);
        offsets_committed(t, cur);

        old->elems[0].err = RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
        offsets_commit_failed(t, old);
        rd_kafka_topic_partition_list_t *due = offsets_due(t, NULL, false);
        assert_int_equal(due->cnt, 0);
        rd_kafka_topic_partition_list_destroy(due);
        rd_kafka_topic_partition_list_destroy(cur);
        rd_kafka_topic_partition_list_destroy(old);
        offsets_free(t);
}

static void due_filtered_by_partition_list(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        for (int32_t p = 0; p < 4; p++) {
                assert_int_equal(offsets_begin(t, T, p, 1), SS_OK);
                assert_int_equal(offsets_done(t, T, p, 1), SS_OK);
        }
        rd_kafka_topic_partition_list_t *only =
                rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(only, T, 2);
        rd_kafka_topic_partition_list_add(only, "other", 0);

        rd_kafka_topic_partition_list_t *due = offsets_due(t, only, false);
        assert_int_equal(due->cnt, 1);
        assert_int_equal(due->elems[0].partition, 2);
        assert_int_equal(due->elems[0].offset, 2);
        rd_kafka_topic_partition_list_destroy(due);
        rd_kafka_topic_partition_list_destroy(only);
        offsets_free(t);
}

/* After a seek back, the lower offset holds the watermark again. */
static void rewind_holds_watermark(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 0, 10), SS_OK);
        assert_int_equal(offsets_begin(t, T, 0, 11), SS_OK);
        assert_int_equal(offsets_begin(t, T, 0, 4), SS_OK);
        assert_int_equal(watermark(t, T, 0), 4);
        assert_int_equal(offsets_done(t, T, 0, 10), SS_OK);
        assert_int_equal(offsets_done(t, T, 0, 4), SS_OK);
        assert_int_equal(watermark(t, T, 0), 11);

        /* The same offset twice (delivered again) needs two completions. */
        assert_int_equal(offsets_begin(t, T, 0, 11), SS_OK);
        assert_int_equal(offsets_done(t, T, 0, 11), SS_OK);
        assert_int_equal(watermark(t, T, 0), 11);
        assert_int_equal(offsets_done(t, T, 0, 11), SS_OK);
        assert_int_equal(watermark(t, T, 0), 12);
        offsets_free(t);
}

/* Many messages with gaps, finished in a shuffled order: after every
 * completion the watermark equals what a brute-force model says. */
static void shuffled_against_model(void **state)
{
        (void)state;

        enum {
                N = 3000
        };

        int64_t *offs = malloc(N * sizeof(*offs));
        int64_t *order = malloc(N * sizeof(*order));
        char *done = calloc(N, 1);
        assert_non_null(offs);
        assert_non_null(order);
        assert_non_null(done);
        struct offsets *t = offsets_new();

        unsigned seed = 12345;
        int64_t o = 1000;
        for (int i = 0; i < N; i++) {
                o += 1 + (rand_r(&seed) % 3 == 0 ? rand_r(&seed) % 5 : 0);
                offs[i] = o;
                order[i] = i;
                assert_int_equal(offsets_begin(t, T, 7, o), SS_OK);
        }
        for (int i = N - 1; i > 0; i--) {
                int j = rand_r(&seed) % (i + 1);
                int64_t tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
        }

        for (int k = 0; k < N; k++) {
                int i = (int)order[k];
                assert_int_equal(offsets_done(t, T, 7, offs[i]), SS_OK);
                done[i] = 1;
                int first = 0;
                while (first < N && done[first])
                        first++;
                int64_t want = first < N ? offs[first] : offs[N - 1] + 1;
                assert_int_equal(watermark(t, T, 7), want);
                assert_int_equal(offsets_running(t, T, 7), (size_t)(N - k - 1));
        }
        offsets_free(t);
        free(done);
        free(order);
        free(offs);
}

struct finisher {
        struct offsets *t;
        int64_t off;
};

static void *finish_later(void *arg)
{
        struct finisher *f = arg;
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
        assert_int_equal(offsets_done(f->t, T, 0, f->off), SS_OK);
        return NULL;
}

/* The revoke path waits for running messages to finish. */
static void wait_idle_waits_for_completion(void **state)
{
        (void)state;
        struct offsets *t = offsets_new();
        assert_int_equal(offsets_begin(t, T, 0, 1), SS_OK);
        assert_false(offsets_wait_idle(t, T, 0, 20));

        struct finisher f = { t, 1 };
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, finish_later, &f), 0);
        assert_true(offsets_wait_idle(t, T, 0, 5000));
        pthread_join(th, NULL);
        assert_int_equal(watermark(t, T, 0), 2);
        assert_true(offsets_wait_idle(t, T, 9, 0));
        offsets_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(nothing_before_first_message),
                cmocka_unit_test(in_order),
                cmocka_unit_test(out_of_order_never_passes_unfinished),
                cmocka_unit_test(gaps_do_not_block),
                cmocka_unit_test(unknown_or_repeated_done_is_refused),
                cmocka_unit_test(abandoned_holds_watermark),
                cmocka_unit_test(partitions_are_independent),
                cmocka_unit_test(revoke_forgets_partition),
                cmocka_unit_test(due_offers_only_moved_watermarks),
                cmocka_unit_test(stale_failure_keeps_newer_commit),
                cmocka_unit_test(due_filtered_by_partition_list),
                cmocka_unit_test(rewind_holds_watermark),
                cmocka_unit_test(shuffled_against_model),
                cmocka_unit_test(wait_idle_waits_for_completion),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
