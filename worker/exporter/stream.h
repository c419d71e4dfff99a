/* The audit stream: turns audit events into rows of the current batch,
 * sets unreadable ones aside for the dead-letter topic, and has full or
 * old batches sealed (files_commit) by a sealer thread, so reading goes
 * on while a batch is written and fsync'd. At most two batches exist:
 * the one being filled and the one being sealed. */
#ifndef SS_EXPORTER_STREAM_H
#define SS_EXPORTER_STREAM_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/config.h"
#include "files.h"

/* A batch is sealed at this much CSV text even below the row limit, so
 * memory stays bounded whatever the rows look like. */
#define STREAM_MAX_BATCH_BYTES (8 * 1024 * 1024)

/* An event that could not be read, waiting for the dead-letter topic. */
struct stream_dead {
        void *key, *payload; /* owned copies; NULL when absent */
        size_t klen, len;
        int32_t partition;
        int64_t offset;
        enum ss_err code;
        char msg[256];
        bool sent;
};

/* One batch: rows, set-aside events, and where each partition it touched
 * resumes after it. */
struct stream_job {
        struct files_batch batch;
        struct stream_dead *dead; /* owned */
        size_t ndead, deadcap;
        struct files_offset *offs; /* owned; built when handed over */
        size_t noffs;
        size_t rows;       /* rows handed over */
        int64_t opened_ms; /* when it got its first message; 0 = empty */
};

/* Per partition of the audit topic (index = partition number). */
struct stream_part {
        int64_t next;     /* offset after the last one taken; -1 unknown */
        int64_t job_next; /* the same within the filling job; -1 none */
};

enum sealer_state {
        SEALER_IDLE,   /* no job */
        SEALER_BUSY,   /* sealing jobs[1 - cur] */
        SEALER_DONE,   /* finished; result not collected yet */
        SEALER_FAILED, /* the job stays for a retry */
};

struct stream {
        const struct config *cfg;  /* borrowed */
        struct files_store *store; /* borrowed */
        rd_kafka_t *producer;      /* borrowed */
        struct stream_job jobs[2];
        int cur; /* jobs[cur] is filled, jobs[1 - cur] is the sealer's */
        struct stream_part *parts; /* owned */
        size_t nparts;
        struct buf scratch;

        pthread_t thread;
        bool thread_up;
        pthread_mutex_t mu; /* guards the fields below */
        pthread_cond_t cv;
        enum sealer_state state;
        bool quit;
        enum ss_err result;
        struct ss_error result_err;
        size_t result_files;
        long long result_ms;

        int64_t retry_at, backoff_ms;
        long long rows_total, dead_total, files_total, seals;
};

/* Prepares s and starts the sealer thread. Returns SS_ERR_INTERNAL when
 * the thread cannot start. Free with stream_free() either way. */
enum ss_err stream_init(struct stream *s,
                        const struct config *cfg,
                        struct files_store *store,
                        rd_kafka_t *producer,
                        struct ss_error *err) SS_MUSTCHECK;

/* Stops the sealer (after its current job) and frees everything; what
 * was not sealed is read again after a restart. */
void stream_free(struct stream *s);

/* The offset a partition's next message must have at least: messages
 * below it are already in files or in a batch (a redelivery) and are
 * skipped. -1 when nothing is known. */
int64_t stream_position(struct stream *s, int32_t partition);

/* Adds one audit message to the filling batch. Unreadable events are
 * counted and kept for the dead-letter topic; they never stop the stream.
 * Returns SS_ERR_NOMEM only, in which case the message was not taken. */
enum ss_err stream_add(struct stream *s,
                       const rd_kafka_message_t *msg,
                       int64_t now_ms) SS_MUSTCHECK;

/* Drives sealing: collects a finished seal (logging it, and hinting the
 * offsets to Kafka through consumer), retries a failed one after its
 * backoff, hands the filling batch to the sealer when it is full or older
 * than the flush interval, and waits for the sealer when both batches are
 * full. Never blocks otherwise. */
void stream_tick(struct stream *s, rd_kafka_t *consumer, int64_t now_ms);

/* True when the filling batch is full and should be handed over. Takes
 * no lock: only the thread that calls stream_add() may ask. */
bool stream_full(const struct stream *s);

/* True when the filling batch is full while the sealer holds a failed
 * batch: reading on would only grow memory. */
bool stream_stalled(struct stream *s);

/* Seals everything held, now, waiting for it (a revoke or a stop).
 * Returns the first failure; what failed stays held. */
enum ss_err stream_flush(struct stream *s,
                         rd_kafka_t *consumer,
                         struct ss_error *err) SS_MUSTCHECK;

/* Forgets every unsealed batch and every position: after a revoke the
 * partitions resume from the checkpoint, and the rows are read again. */
void stream_drop(struct stream *s);

#endif
